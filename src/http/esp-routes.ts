/**
 * ESP notification endpoints for smarthost mode (role `api`): `POST /v1/feedback/ses` (Amazon SES via
 * SNS) and `POST /v1/feedback/mailgun` (Mailgun event webhooks). No Bearer key: each request proves
 * itself by the provider's signature (src/esp/ses.ts, src/esp/mailgun.ts). A route is
 * only registered when its provider is configured, so an unconfigured one answers 404.
 *
 * Answers: 200 once the notification is applied, ignored (not about a failure, unknown message, …),
 * a duplicate, or a subscription step — the provider must not retry those; 403 when it does not verify
 * (signature, topic, timestamp, replayed token); 400 when it is not the provider's format; 503 when
 * Kurir cannot check or store it now (signing certificate unreachable, Redis down) or another request is
 * applying the same notification, so it is retried.
 */
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import type { MailgunFeedback } from '../esp/mailgun.js';
import type { SesFeedback } from '../esp/ses.js';
import type { EspRejectReason, EspResult } from '../feedback/ingest/ingest-types.js';
import { KurirError, type ErrorCode } from '../lib/errors.js';
import { readsOwnJson } from './json-body.js';
import { errorSchema } from './schemas.js';

export interface EspRoutesOptions {
  ses?: SesFeedback;
  mailgun?: MailgunFeedback;
}

/** Largest body accepted (SNS messages are at most 256 KiB; Mailgun events are small). */
export const ESP_BODY_LIMIT = 1024 * 1024;

const resultSchema = {
  type: 'object',
  properties: {
    result: { type: 'string', enum: ['applied', 'ignored', 'duplicate', 'confirmed', 'logged'] },
    kind: { type: 'string', enum: ['bounce', 'complaint'], description: 'applied: what the notification reported.' },
    messageId: { type: 'string', description: 'The Kurir message it was matched to, when it was.' },
    reason: { type: 'string', description: 'ignored: why nothing changed, e.g. unknown-message, no-failure.' },
    detail: { type: 'string' },
  },
} as const;

const responses = {
  200: resultSchema,
  400: { ...errorSchema(400), description: 'Not the provider’s format (or the SNS message type header does not match).' },
  403: { ...errorSchema(403), description: 'Does not verify: signature, SNS topic, signing certificate URL, timestamp, or a replayed token.' },
  413: errorSchema(413),
  503: {
    ...errorSchema(503),
    description: 'The signing certificate could not be fetched, Redis is unavailable, or the same notification is being applied right now: retry later.',
  },
} as const;

const FORBIDDEN_REASONS: ReadonlySet<EspRejectReason> = new Set([
  'unknown-topic',
  'unsupported-version',
  'bad-cert-url',
  'cert-expired',
  'bad-signature',
  'stale',
  'replayed',
]);

function statusOf(reason: EspRejectReason): ErrorCode {
  if (reason === 'cert-unavailable' || reason === 'in-progress') return 'UNAVAILABLE';
  return FORBIDDEN_REASONS.has(reason) ? 'FORBIDDEN' : 'VALIDATION';
}

const MESSAGES: Record<EspRejectReason, string> = {
  malformed: 'Not a notification in the provider’s format',
  'unknown-topic': 'SNS topic not allowed (feedback.ses.topicArns)',
  'unsupported-version': 'Unsupported SNS SignatureVersion',
  'bad-cert-url': 'SigningCertURL is not an allowed https URL',
  'cert-unavailable': 'The signing certificate could not be fetched; try again later',
  'cert-expired': 'The signing certificate is not valid now',
  'bad-signature': 'Signature does not verify',
  stale: 'Timestamp outside the accepted window',
  replayed: 'Signature token already used',
  'in-progress': 'The same notification is being applied right now; try again later',
};

/** The HTTP answer for a handled notification: a body for 200, or a KurirError to throw. */
export function answer(r: EspResult): Record<string, string> {
  switch (r.result) {
    case 'rejected':
      throw new KurirError(statusOf(r.reason), `${MESSAGES[r.reason]}: ${r.detail}`, { details: { reason: r.reason } });
    case 'applied':
    case 'ignored': {
      const o = r.outcome;
      if (o.result === 'applied') return { result: 'applied', kind: o.kind, messageId: o.messageId };
      return { result: 'ignored', reason: o.reason, detail: o.detail, ...(o.messageId ? { messageId: o.messageId } : {}) };
    }
    case 'duplicate':
      return { result: 'duplicate' };
    default:
      return { result: r.result, detail: r.detail };
  }
}

/** Registers the configured ESP endpoints. */
export const espRoutes: FastifyPluginAsync<EspRoutesOptions> = async (app: FastifyInstance, opts) => {
  // SNS posts JSON as text/plain; Mailgun as application/json. Both are read as text and parsed by the
  // handlers, so a malformed body is counted and answered like any other refusal.
  app.removeAllContentTypeParsers();
  readsOwnJson(app);
  app.addContentTypeParser(['application/json', 'text/plain'], { parseAs: 'string', bodyLimit: ESP_BODY_LIMIT }, (_req, body, done) => done(null, body));

  const common = { tags: ['feedback'], consumes: ['text/plain', 'application/json'] };
  const ses = opts.ses;
  if (ses?.enabled) {
    app.post(
      '/v1/feedback/ses',
      {
        bodyLimit: ESP_BODY_LIMIT,
        schema: {
          ...common,
          summary: 'Amazon SES bounce and complaint notifications via an SNS HTTPS subscription (signature-verified)',
          headers: {
            type: 'object',
            properties: { 'x-amz-sns-message-type': { type: 'string', enum: ['Notification', 'SubscriptionConfirmation', 'UnsubscribeConfirmation'] } },
            required: ['x-amz-sns-message-type'],
          },
          response: responses,
        },
      },
      async (request) => {
        const type = request.headers['x-amz-sns-message-type'];
        const raw = typeof request.body === 'string' ? request.body : '';
        return answer(await ses.handle(typeof type === 'string' ? type : undefined, raw, { remoteAddress: request.ip }));
      },
    );
  }
  const mailgun = opts.mailgun;
  if (mailgun?.enabled) {
    app.post(
      '/v1/feedback/mailgun',
      {
        bodyLimit: ESP_BODY_LIMIT,
        schema: {
          ...common,
          summary: 'Mailgun event webhook (failed, complained), verified by its HMAC signature, timestamp and one-time token',
          response: responses,
        },
      },
      async (request) => {
        const raw = typeof request.body === 'string' ? request.body : '';
        return answer(await mailgun.handle(raw, { remoteAddress: request.ip }));
      },
    );
  }
};
