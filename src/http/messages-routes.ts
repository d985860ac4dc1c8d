/**
 * `POST /v1/messages` (JSON or `message/rfc822`) and `GET /v1/messages/:id` (two plugins: two scopes). Routes only translate
 * HTTP into a Submission and back; every policy decision (scope, validation, suppression, idempotency,
 * durability) is the IntakeService's, so SMTP and HTTP refuse the same things the same way.
 */
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Config, Priority } from '../config/schema.js';
import { BASE64_TEXT_ABOVE_CHARS, composeMessage, type StructuredMessage } from '../intake/compose.js';
import type { Admission } from '../lib/admission.js';
import { presentMessage } from '../admin/message-view.js';
import { roleOf } from '../intake/credentials.js';
import { leadingHeaders, priorityOf, ttlOf } from '../intake/headers.js';
import type { IntakeService } from '../intake/intake-service.js';
import { requestHash, ttlSeconds, type Submission } from '../intake/submission.js';
import { KurirError, toKurirError } from '../lib/errors.js';
import { MESSAGE_ID_PATTERN } from '../lib/ids.js';
import type { MessageStore } from '../store/message-store.js';
import { credentialOf } from './auth.js';
import {
  MAX_ATTACHMENT_BYTES,
  acceptedSchema,
  addressListBound,
  bearerSecurity,
  errorResponses,
  messageBodySchema,
  messageIdParamsSchema,
  rawBodySchema,
  submitHeadersSchema,
  submitForbiddenSchema,
  submitQuerySchema,
} from './schemas.js';
import { messageViewSchema } from './message-view-schema.js';
import { header, rawEnvelope, refuseRawOnlyParameters } from './submit-envelope.js';
import { mediaTypeOf, refuseContentCoding } from './json-body.js';

export interface MessagesRoutesOptions {
  config: Config;
  intake: IntakeService;
  messages: MessageStore;
  /** Bytes in flight across intake (shared with SMTP); a submission over the bound gets 503 BUSY before its body is read. */
  admission?: Admission;
  /** The confirmToken of a message id, returned in the 202 answer (src/placement/confirmations.ts), when given. */
  confirmToken?: (id: string) => string;
}

/**
 * An onRequest hook that reserves the request's Content-Length (the size limit when it has none) in the
 * intake admission until the reply is sent or the client goes away; refuses with 503 BUSY before the
 * body is read when too much is in flight. A client already gone reserves nothing.
 */
export function admit(admission: Admission, maxBytes: number, retryAfterSeconds: number) {
  return async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    // The hook runs after authentication, which may have waited for Redis: a client that hung up meanwhile
    // fired its 'close' events already, so bytes reserved now would never be released (found 1 Dec 2026).
    const socket = request.raw.socket as Socket | undefined;
    if (reply.raw.destroyed || socket?.destroyed) return;
    const declared = Number(request.headers['content-length']);
    const bytes = Number.isFinite(declared) && declared >= 0 ? Math.min(declared, maxBytes) : maxBytes;
    if (!admission.tryReserve(bytes)) {
      throw new KurirError('BUSY', `too much mail being received right now (${admission.maxBytes} bytes in flight); try again shortly`, {
        retryAfterSeconds,
      });
    }
    let held = true;
    const release = (): void => {
      if (!held) return;
      held = false;
      admission.release(bytes);
      socket?.off('close', release);
    };
    reply.raw.once('close', release);
    // A pipelined request's response waiting behind an earlier one is not closed with the socket; the socket is.
    socket?.once('close', release);
  };
}

/** A JSON submission as the body schema admits it. */
export interface MessageBody extends StructuredMessage {
  tags?: string[];
  metadata?: Record<string, string>;
  priority?: Priority;
  ttl?: number;
}

/** JSON with object keys sorted at every level, so equal bodies hash equally whatever their key order. */
export function stableStringify(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableStringify).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.keys(value as object)
      .sort()
      .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableStringify((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/**
 * Refuses a `to`, `cc` or `bcc` list longer than the schema's bound with TOO_MANY_RECIPIENTS, the answer intake gives
 * every list over the recipient limit: until 2 Dec 2026 the schema's maxItems was the limit itself, and 51 addresses
 * in `to` were "to: must NOT have more than 50 items" while 30 + 11 + 10 were TOO_MANY_RECIPIENTS.
 */
function refuseOverlongLists(body: Record<string, unknown>, maxRecipients: number): void {
  const bound = addressListBound(maxRecipients);
  for (const field of ['to', 'cc', 'bcc']) {
    const list = body[field];
    if (Array.isArray(list) && list.length > bound) {
      throw new KurirError('TOO_MANY_RECIPIENTS', `${field}: at most ${maxRecipients} recipients per message (to, cc and bcc together)`, { field });
    }
  }
}

/** What a request body hashes to for its Idempotency-Key: made only when the request has one. */
type HashParts = () => Array<string | Buffer>;

/** Turns a JSON body into the parts of a Submission, composing the RFC 5322 message. */
export async function jsonSubmission(body: MessageBody, maxMessageBytes: number): Promise<Omit<Submission, 'credential' | 'iface'> & { hashParts: HashParts }> {
  let attachmentBytes = 0;
  for (const a of body.attachments ?? []) attachmentBytes += Buffer.byteLength(a.content, 'base64');
  if (attachmentBytes > MAX_ATTACHMENT_BYTES) {
    throw new KurirError('TOO_LARGE', `attachments: at most ${MAX_ATTACHMENT_BYTES} bytes in total (decoded)`, {
      field: 'attachments',
      details: { limitBytes: MAX_ATTACHMENT_BYTES, sizeBytes: attachmentBytes },
    });
  }
  const composed = await composeMessage(body);
  if (composed.raw.length > maxMessageBytes) {
    // Text and HTML parts above BASE64_TEXT_ABOVE_CHARS are base64-encoded (a third larger): say so.
    throw new KurirError(
      'TOO_LARGE',
      `message: the composed message is ${composed.raw.length} bytes, over the limit of ${maxMessageBytes} (text and html parts over ${BASE64_TEXT_ABOVE_CHARS} characters are base64-encoded, which adds a third)`,
      { field: 'body', details: { limitBytes: maxMessageBytes, sizeBytes: composed.raw.length } },
    );
  }
  return {
    recipients: composed.recipients,
    recipientFields: composed.recipientFields,
    raw: composed.raw,
    priority: body.priority,
    ttlSeconds: body.ttl,
    tags: body.tags,
    metadata: body.metadata,
    hashParts: () => ['application/json', stableStringify(body)],
  };
}

/** Registers `POST /v1/messages`; register it in the send scope (src/http/auth.ts). */
export const messagesRoutes: FastifyPluginAsync<MessagesRoutesOptions> = async (app: FastifyInstance, opts) => {
  const { config, intake } = opts;
  const maxBytes = config.http.maxMessageBytes;
  // A route-level hook, so it runs after the scope's authentication: an unauthenticated flood cannot
  // take the room of real submissions.
  const onSubmit = opts.admission ? admit(opts.admission, maxBytes, config.intake.busyRetryAfterSeconds) : undefined;
  // Only JSON (the API's parser) and raw messages: anything else is 415 (text/plain too: buildApp removes its parser).
  // Its Content-Encoding is refused by the route's preParsing hook, before the body is read (no 100 Continue for a 415).
  app.addContentTypeParser('message/rfc822', { parseAs: 'buffer', bodyLimit: maxBytes }, (_req, body, done) => done(null, body));

  app.post(
    '/v1/messages',
    {
      ...(onSubmit ? { onRequest: onSubmit } : {}),
      // A raw message in a content coding is refused from its headers, as the API's JSON (src/http/json-body.ts).
      preParsing: async (request, _reply, payload) => {
        if (mediaTypeOf(request) === 'message/rfc822') refuseContentCoding(request);
        return payload;
      },
      // Before the schemas are applied: a JSON body with a raw-only parameter, too many recipients or a bad ttl is
      // refused for that, whatever else is wrong.
      preValidation: async (request) => {
        const body = request.body;
        if (body === null || typeof body !== 'object' || Buffer.isBuffer(body)) return;
        refuseRawOnlyParameters(request);
        refuseOverlongLists(body as Record<string, unknown>, config.smtp.maxRecipients);
        // The TTL's one wording (ttlSeconds), not the schema's "must be <= 604800". A JSON ttl is a number, not digits in a string.
        const { ttl } = body as { ttl?: unknown };
        if (ttl !== undefined) ttlSeconds(typeof ttl === 'number' ? ttl : Number.NaN, 'ttl', config.delivery.maxTtlSeconds);
      },
      schema: {
        tags: ['messages'],
        summary: 'Submit a message (JSON or raw RFC 5322); 202 only once it is durable in Redis',
        security: bearerSecurity,
        body: {
          content: {
            'application/json': { schema: messageBodySchema(config.smtp.maxRecipients, config.delivery.maxTtlSeconds) },
            'message/rfc822': { schema: rawBodySchema },
          },
        },
        querystring: submitQuerySchema,
        headers: submitHeadersSchema,
        response: { 202: acceptedSchema, 403: submitForbiddenSchema, ...errorResponses(400, 401, 409, 413, 415, 422, 429, 503) },
      },
    },
    async (request, reply) => {
      const credential = credentialOf(request);
      const body = request.body as unknown;
      let parts: Omit<Submission, 'credential' | 'iface'> & { hashParts: HashParts };
      if (Buffer.isBuffer(body)) {
        if (!body.length) throw new KurirError('BAD_MESSAGE', 'body: the message is empty', { field: 'body' });
        // The recipients' fields apart from the envelope: not hashed for the Idempotency-Key.
        const { envelope: env, recipientFields } = rawEnvelope(request, config.delivery.maxTtlSeconds);
        // Without ?priority= / ?ttl= or their X-Kurir-* request headers, the message's own X-Kurir-Priority and
        // X-Kurir-Ttl headers, as SMTP reads them (until 2 Dec 2026 HTTP ignored them). Not hashed apart: they are in the body.
        const own = env.priority === undefined || env.ttlSeconds === undefined ? leadingHeaders(body) : [];
        const priority = env.priority ?? priorityOf(own);
        const ttlSeconds = env.ttlSeconds ?? ttlOf(own, config.delivery.maxTtlSeconds);
        parts = { ...env, recipientFields, priority, ttlSeconds, raw: body, hashParts: () => ['message/rfc822', body, stableStringify(env)] };
      } else if (body && typeof body === 'object' && !Array.isArray(body)) {
        parts = await jsonSubmission(body as MessageBody, maxBytes);
      } else {
        throw new KurirError('VALIDATION', 'body: a JSON object or a message/rfc822 body is required', { field: 'body' });
      }
      const key = header(request, 'idempotency-key');
      const overrideSuppression = header(request, 'x-kurir-override-suppression') === 'true';
      if (overrideSuppression && !credential.admin) {
        throw new KurirError('FORBIDDEN', 'X-Kurir-Override-Suppression: only admin keys may override the suppression list', {
          field: 'X-Kurir-Override-Suppression',
        });
      }
      const { hashParts, ...rest } = parts;
      const accepted = await intake.accept({
        ...rest,
        credential,
        iface: 'http',
        idempotency: key !== undefined ? { key, requestHash: requestHash(hashParts()) } : undefined,
        overrideSuppression,
      });
      if (accepted.duplicate) reply.header('Idempotent-Replayed', 'true');
      return reply.code(202).send({ id: accepted.id, status: 'queued', ...(opts.confirmToken ? { confirmToken: opts.confirmToken(accepted.id) } : {}) });
    },
  );
};

/** `GET /v1/messages/:id`; register it in the read scope (src/http/auth.ts): send keys see their own messages, support and admin keys all. */
export const messageReadRoutes: FastifyPluginAsync<{ messages: MessageStore }> = async (app: FastifyInstance, opts) => {
  const { messages } = opts;
  app.get<{ Params: { id: string } }>(
    '/v1/messages/:id',
    {
      // Recipients, subject and timeline: audited for support and admin keys (the message id is the target).
      config: { auditRead: 'view' },
      schema: {
        tags: ['messages'],
        summary: 'Status and timeline of a message sent with this key (support and admin keys see all; their reads are audited)',
        security: bearerSecurity,
        params: messageIdParamsSchema,
        response: { 200: messageViewSchema, ...errorResponses(401, 403, 404, 503) },
      },
    },
    async (request) => {
      const credential = credentialOf(request);
      const { id } = request.params;
      const notFound = new KurirError('NOT_FOUND', `message ${id} not found`, { field: 'id' });
      if (!MESSAGE_ID_PATTERN.test(id)) throw notFound;
      const view = await messages.get(id).catch((err: unknown) => {
        throw toKurirError(err);
      });
      // Someone else's message is indistinguishable from a missing one: ids leak nothing.
      if (!view || (roleOf(credential) === 'send' && view.record.owner !== credential.name)) throw notFound;
      return presentMessage(view);
    },
  );
};
