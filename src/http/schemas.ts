/**
 * JSON schemas of the HTTP API. Fastify validates requests with them (ajv, no type coercion, unknown
 * properties refused) and serializes responses with them; @fastify/swagger turns them into the OpenAPI
 * document at `/docs/json`. Limits that come from config are parameters of the schema builders.
 */
import { PRIORITIES } from '../config/schema.js';

/** Decoded bytes all attachments of one JSON submission may carry together (larger is 413). */
export const MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024;
export const MAX_TAGS = 10;
export const MAX_TAG_LENGTH = 64;
export const MAX_METADATA_KEYS = 20;

/** Printable ASCII, 1..255 characters. */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x20-\\x7e]{1,255}$';

const PRINTABLE_RULE = 'must be printable characters (no line breaks or other control characters)';

/**
 * What each `pattern` of a header or query parameter means, in the words of its 400 (src/http/errors.ts), by
 * validation context and lower-case name; a pattern without an entry is answered with ajv's "must match pattern".
 */
export const PATTERN_RULES: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  headers: { 'idempotency-key': 'must be 1 to 255 printable ASCII characters' },
  // cursor: the audit log's and the message search's (their patterns differ; the rule does not).
  querystring: { cursor: 'must be the nextCursor of a previous page' },
  // Suppression reason and messageId (PUT /v1/suppressions/{address}).
  body: { reason: PRINTABLE_RULE, messageId: PRINTABLE_RULE },
};

const address = { type: 'string', minLength: 3, maxLength: 998, description: 'An e-mail address; IDN domains are encoded with punycode.' } as const;
const addressList = (max: number, description: string) => ({ type: 'array', maxItems: max, items: address, description }) as const;

/**
 * How many entries one of `to`, `cc`, `bcc` may hold: a bound against huge arrays, far above the recipient limit.
 * The limit itself (smtp.maxRecipients different recipients in all three) is intake's, answered TOO_MANY_RECIPIENTS;
 * a list over this bound gets the same answer from the route, before the schema would say "must NOT have more".
 */
export function addressListBound(maxRecipients: number): number {
  return Math.max(1000, 2 * maxRecipients);
}

/** Body of `POST /v1/messages` as JSON; `maxTtlSeconds` is delivery.maxTtlSeconds, above which intake refuses a TTL. */
export function messageBodySchema(maxRecipients: number, maxTtlSeconds: number) {
  const bound = addressListBound(maxRecipients);
  const recipientsRule = `to, cc and bcc together at most ${maxRecipients} different recipients (smtp.maxRecipients); more is 400 TOO_MANY_RECIPIENTS.`;
  return {
    type: 'object',
    additionalProperties: false,
    required: ['from', 'to'],
    properties: {
      from: { ...address, description: 'Header From, e.g. `Passport office <noreply@example.test>`; its domain must be allowed for the key.' },
      to: { ...addressList(bound, recipientsRule), minItems: 1 },
      cc: addressList(bound, recipientsRule),
      bcc: addressList(bound, recipientsRule),
      replyTo: address,
      subject: { type: 'string', maxLength: 998 },
      text: { type: 'string' },
      html: { type: 'string' },
      headers: {
        type: 'object',
        maxProperties: 50,
        additionalProperties: { type: 'string', maxLength: 998 },
        description: 'Extra headers: X-*, List-Unsubscribe, List-Unsubscribe-Post, List-Id, In-Reply-To, References, Auto-Submitted, Feedback-ID.',
      },
      attachments: {
        type: 'array',
        maxItems: 20,
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['filename', 'content'],
          properties: {
            filename: { type: 'string', minLength: 1, maxLength: 255 },
            content: { type: 'string', description: 'Base64; all attachments together at most 5 MB decoded.' },
            contentType: {
              type: 'string',
              maxLength: 255,
              description:
                'A MIME type, type/subtype with optional ; parameters (RFC 2045). Not multipart/* (an attachment is one part); of message/*, only message/rfc822 and message/global.',
            },
          },
        },
      },
      tags: { type: 'array', maxItems: MAX_TAGS, items: { type: 'string', minLength: 1, maxLength: MAX_TAG_LENGTH } },
      metadata: {
        type: 'object',
        maxProperties: MAX_METADATA_KEYS,
        propertyNames: { maxLength: 64 },
        additionalProperties: { type: 'string', maxLength: 1024 },
      },
      priority: { type: 'string', enum: [...PRIORITIES] },
      ttl: {
        type: 'integer',
        minimum: 1,
        maximum: maxTtlSeconds,
        description: `Seconds until an undelivered message expires: 1 to ${maxTtlSeconds} (delivery.maxTtlSeconds).`,
      },
    },
  } as const;
}

/**
 * Body of `POST /v1/messages` as a raw message. To the validator it is a Buffer, so the schema has no
 * type; the OpenAPI document gets `type: string, format: binary` (see buildApp's transformObject).
 */
export const rawBodySchema = { description: 'A complete RFC 5322 message; envelope in the query or X-Kurir-* headers.' } as const;

const stringOrList = { anyOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] } as const;

/** The description of a raw-only parameter: a JSON submission carrying one is 400. */
const rawOnly = (instead: string, what: string): string => `Raw (message/rfc822) only: a JSON submission with it is 400 (it uses ${instead}). ${what}`;

/** Query of `POST /v1/messages`: the envelope of a `message/rfc822` submission. */
export const submitQuerySchema = {
  type: 'object',
  properties: {
    to: { ...stringOrList, description: rawOnly('the body fields to, cc, bcc', 'Recipient(s): repeat `to=` or separate with commas.') },
    from: { type: 'string', description: rawOnly('the body field from', "Envelope sender (default: the message's From header).") },
    priority: { type: 'string', enum: [...PRIORITIES], description: rawOnly('the body field priority', 'Takes precedence over the X-Kurir-Priority header.') },
    ttl: {
      type: 'string',
      description: rawOnly('the body field ttl', 'Seconds until an undelivered message expires: a whole number from 1 to delivery.maxTtlSeconds.'),
    },
  },
} as const;

/** Headers of `POST /v1/messages`. */
export const submitHeadersSchema = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      pattern: IDEMPOTENCY_KEY_PATTERN,
      description: 'Same key and body within 24 h returns the first answer; a different body is 409.',
    },
    'x-kurir-to': { type: 'string', description: rawOnly('the body fields to, cc, bcc', 'Comma-separated recipients, when there is no ?to=.') },
    'x-kurir-from': { type: 'string', description: rawOnly('the body field from', 'Envelope sender, when there is no ?from=.') },
    'x-kurir-priority': { type: 'string', enum: [...PRIORITIES], description: rawOnly('the body field priority', 'Priority, when there is no ?priority=.') },
    'x-kurir-ttl': {
      type: 'string',
      description: rawOnly(
        'the body field ttl',
        'Seconds until an undelivered message expires (a whole number from 1 to delivery.maxTtlSeconds), when there is no ?ttl=.',
      ),
    },
    'x-kurir-override-suppression': {
      type: 'string',
      enum: ['true', 'false'],
      description: 'Admin keys only (others: 403): `true` sends even to suppressed recipients.',
    },
  },
} as const;

export const messageIdParamsSchema = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64 } },
} as const;

/** `202` answer of `POST /v1/messages`. */
export const acceptedSchema = {
  description: 'Stored durably in Redis and queued (also the answer to an idempotent replay).',
  type: 'object',
  required: ['id', 'status'],
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['queued'] },
    confirmToken: {
      type: 'string',
      description:
        'For POST /v1/confirmations/:token, for booking systems that keep only this (report a confirmation only when the applicant acts, never on a link fetch).',
    },
  },
} as const;

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid request; `field` names the failing field, e.g. `to[1]`.',
  401: 'No API key (AUTH_REQUIRED) or an unknown one (AUTH_FAILED).',
  403: 'Not allowed for this key: a route outside its role (FORBIDDEN), or a sender domain it may not use (SENDER_NOT_ALLOWED).',
  404: 'Unknown message, or one sent with another key.',
  409: 'Idempotency-Key reused with a different request.',
  410: 'The message can no longer be confirmed: its lifetime plus placement.confirm.marginSeconds has passed (CONFIRM_TOO_LATE).',
  413: 'Message or attachments too large.',
  415: 'Content-Type is not one this route reads (application/json; POST /v1/messages also message/rfc822; the CSV import text/csv; the message names them), JSON is declared in a charset other than UTF-8, or the body has a Content-Encoding (none is decoded).',
  422: 'Recipient suppressed, or sender domain without a DKIM key.',
  429: 'Rate limited (RATE_LIMITED, RECIPIENT_RATE_LIMITED), or this client IP is blocked after repeated unknown API keys (AUTH_BLOCKED); see Retry-After.',
  503: 'Try again after Retry-After: Redis unavailable (UNAVAILABLE) or too much mail in flight (BUSY). Nothing is queued; see docs/reliability.md for the rare case of a Redis failure in the middle of the write.',
};

/** The error body every route answers with: `{ error: { code, message, field?, details? } }`. */
export function errorSchema(status: number) {
  return {
    description: ERROR_DESCRIPTIONS[status] ?? 'Error',
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string' },
          message: { type: 'string' },
          field: { type: 'string' },
          details: { type: 'object', additionalProperties: true },
        },
      },
    },
  } as const;
}

/** The 403 of `POST /v1/messages`: what a key may not send. */
export const submitForbiddenSchema = {
  ...errorSchema(403),
  description:
    'SENDER_NOT_ALLOWED: the From or envelope sender domain is not one this key may use. FORBIDDEN: X-Kurir-Override-Suppression with a key that is not admin, or a priority the key may not use.',
};

/** Response schemas for a list of error statuses; a route that authenticates (401) can also answer 429 AUTH_BLOCKED. */
export function errorResponses(...statuses: number[]): Record<number, ReturnType<typeof errorSchema>> {
  const all = statuses.includes(401) && !statuses.includes(429) ? [...statuses, 429] : statuses;
  return Object.fromEntries(all.map((s) => [s, errorSchema(s)]));
}

/** `GET /readyz` answer (200 and 503). */
export const readySchema = {
  type: 'object',
  properties: {
    status: { type: 'string', enum: ['ready', 'unavailable'] },
    redis: { type: 'boolean' },
    worker: { type: 'boolean', nullable: true, description: 'null when this process runs no worker.' },
    fsync: {
      type: 'boolean',
      description: 'With redis.durability fsync only: false while intake refuses because Redis does not fsync every write (not ready).',
    },
    degraded: {
      type: 'array',
      items: { type: 'string' },
      description:
        'Present when a part is down that does not make the process unready: a Redis shard (redis.shards) whose sender domains are refused meanwhile.',
    },
  },
} as const;

/** `GET /healthz` answer. */
export const healthSchema = { type: 'object', properties: { status: { type: 'string', enum: ['ok'] } } } as const;

/**
 * Body of a POST that takes no fields (verify, rotate, revoke, resume, retry, cancel): none, `null` or `{}`. A field
 * is 400 naming it ("is not a known field"), as on the routes that have fields; until 2 Dec 2026 these routes ignored
 * whatever body they got. Nullable, so the OpenAPI document marks the body optional (see buildApp's transformObject).
 */
export const noFieldsBody = {
  type: ['object', 'null'],
  additionalProperties: false,
  properties: {},
  description: 'No fields: send no body, `null` or `{}`; any field is 400 naming it.',
} as const;

/** OpenAPI security requirement of the authenticated routes. */
export const bearerSecurity = [{ bearerAuth: [] as string[] }];
