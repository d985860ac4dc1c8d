/**
 * The JSON schema of a message as `GET /v1/messages/:id` answers it: envelope, state per recipient and every kind
 * of timeline event with its fields. Its descriptions are the reference of the timeline in the OpenAPI document.
 */
import { PRIORITIES } from '../config/schema.js';

const isoTime = { type: 'string', format: 'date-time' } as const;

/** `200` answer of `GET /v1/messages/:id`. */
export const messageViewSchema = {
  description: 'Envelope, state per recipient and the timeline.',
  type: 'object',
  properties: {
    id: { type: 'string' },
    status: { type: 'string', enum: ['queued', 'deferred', 'delivered', 'bounced', 'expired', 'partially-delivered'] },
    from: { type: 'string' },
    to: { type: 'array', items: { type: 'string' } },
    priority: { type: 'string', enum: [...PRIORITIES] },
    interface: { type: 'string', enum: ['smtp', 'http'] },
    createdAt: isoTime,
    expiresAt: isoTime,
    messageId: { type: 'string' },
    subject: { type: 'string' },
    size: { type: 'integer' },
    dkim: {
      type: 'array',
      items: { type: 'object', properties: { domain: { type: 'string' }, selector: { type: 'string' }, algorithm: { type: 'string' } } },
    },
    tags: { type: 'array', items: { type: 'string' } },
    metadata: { type: 'object', additionalProperties: { type: 'string' } },
    leftOut: {
      type: 'array',
      description: 'SMTP: recipients suppressed between RCPT TO and the end of DATA, left out of the message (never sent).',
      items: { type: 'object', properties: { address: { type: 'string' }, reason: { type: 'string' } } },
    },
    recipients: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        properties: {
          status: { type: 'string' },
          attempts: { type: 'integer' },
          reply: { type: 'string' },
          category: { type: 'string', description: 'Category of the last reply (config/bounce-rules.yaml), e.g. `invalid-recipient`.' },
          remoteHost: { type: 'string' },
          updatedAt: isoTime,
          nextAttemptAt: isoTime,
        },
      },
    },
    events: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          type: {
            type: 'string',
            enum: [
              'queued',
              'attempt',
              'deferred',
              'delivered',
              'bounced',
              'delayed',
              'complained',
              'suppressed',
              'expired',
              'placement',
              'confirmed',
              'scored',
            ],
          },
          at: isoTime,
          recipients: { type: 'array', items: { type: 'string' } },
          host: { type: 'string' },
          reply: { type: 'string' },
          category: { type: 'string', description: 'deferred and bounced events: the reply category, e.g. `mailbox-full`, `auth-failure`, `policy`.' },
          cause: {
            type: 'string',
            description:
              'deferred, bounced and delayed events with category `auth-failure`: the check that failed (ptr, spf, dkim, dmarc, alignment, tls, unauthenticated).',
          },
          tls: { type: 'boolean' },
          sourceIp: { type: 'string', description: 'attempt events: the local address the attempt went out from (a source-IP pool, delivery.ipPools).' },
          helo: { type: 'string', description: 'attempt events from a source-IP pool: the HELO/EHLO name sent.' },
          nextAttemptAt: isoTime,
          async: { type: 'boolean', description: 'bounced events: true when reported after delivery (a DSN at the bounce MX, or an ESP notification).' },
          superseded: {
            type: 'boolean',
            description:
              "deferred, bounced and expired events: a late outcome that changed no recipient state and was not sent to webhooks: of a delivery run that had lost its job's lease to another run, or for a recipient that was cancelled or delivered by another run while this attempt was sending.",
          },
          duplicate: {
            type: 'boolean',
            description:
              "delivered events: a second delivery of recipients already delivered (two runs of one delivery job both sent it); their state stays the first delivery's, and no webhook is sent for it.",
          },
          bounceType: { type: 'string', enum: ['hard', 'soft'] },
          status: { type: 'string', description: 'bounced and delayed events from a DSN: the RFC 3463 status, e.g. `5.1.1`.' },
          remoteMta: { type: 'string' },
          format: {
            type: 'string',
            description: 'DSN layout: rfc3464, postfix, exim, exchange, gmail, yahoo, generic; or the ESP that reported it: ses, mailgun.',
          },
          feedbackType: { type: 'string', description: 'complained events: the ARF Feedback-Type (abuse, fraud, virus, other).' },
          userAgent: { type: 'string' },
          reason: { type: 'string', description: 'suppressed events: why, e.g. `invalid-recipient` or `complaint`.' },
          source: {
            type: 'string',
            description: 'suppressed events: smtp, dsn, arf, ses or mailgun; intake: an SMTP recipient left out because it was suppressed after its RCPT TO.',
          },
          seed: { type: 'string', description: 'placement events: the seed mailbox.' },
          provider: { type: 'string', description: 'placement and confirmed events: the provider label.' },
          result: {
            type: 'string',
            enum: ['inbox', 'spam', 'other', 'missing', 'seed-unreachable', 'not-delivered'],
            description: 'placement events: where the probe was found.',
          },
          mailbox: { type: 'string', description: 'placement events: the IMAP folder it was in.' },
          arrivalSeconds: { type: 'number', description: 'placement events: submission to arrival in the seed mailbox.' },
          authResults: {
            type: 'object',
            description: "placement events: the receiver's Authentication-Results verdicts.",
            properties: { authservId: { type: 'string' }, dkim: { type: 'string' }, spf: { type: 'string' }, dmarc: { type: 'string' } },
          },
          error: {
            type: 'string',
            description: "placement events with result seed-unreachable: why; with result not-delivered: the probe's recipient state and last reply.",
          },
          via: { type: 'string', enum: ['id', 'token'], description: 'confirmed events: confirmed by message id or by confirmToken.' },
          secondsAfterDelivery: { type: 'number', description: 'confirmed events: delivery to confirmation.' },
          counted: {
            type: 'boolean',
            description: 'confirmed events: false when the message is outside the confirmation rate (not a delivered, non-probe verification message).',
          },
          scanner: { type: 'string', enum: ['rspamd'], description: 'scored events: the pre-send scanner.' },
          score: { type: 'number', description: "scored events: rspamd's score of the signed message." },
          requiredScore: { type: 'number', description: "scored events: rspamd's reject threshold." },
          action: { type: 'string', description: "scored events: rspamd's action, e.g. `no action`, `add header`, `reject`." },
          symbols: {
            type: 'array',
            description: 'scored events: the highest-scoring rspamd symbols, highest first.',
            items: { type: 'object', properties: { name: { type: 'string' }, score: { type: 'number' } } },
          },
          sample: { type: 'string', enum: ['nth', 'probe'], description: 'scored events: sampled as every Nth message or as a placement probe.' },
        },
      },
    },
  },
} as const;
