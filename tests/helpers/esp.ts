/**
 * Stand-ins for the ESP side of smarthost feedback, on loopback only:
 * - an HTTPS server on 127.0.0.1 playing `sns.<region>.amazonaws.com`: it serves the signing certificate
 *   (self-signed, from tests/helpers/tls.ts) and records SubscribeURL confirmations;
 * - SNS envelopes signed with that certificate's key (SignatureVersion 1 or 2), built from the AWS
 *   documentation independently of src/esp/sns-signature.ts;
 * - SES notification bodies and Mailgun webhook bodies with valid signatures.
 */
import { createHmac, createSign, randomUUID } from 'node:crypto';
import { createServer, get } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { HttpGet } from '../../src/esp/sns-signature.js';
import { selfSignedCert } from './tls.js';

export const TEST_TOPIC = 'arn:aws:sns:eu-west-1:123456789012:kurir-ses-feedback';
export const CERT_PATH = '/SimpleNotificationService-test.pem';

export interface SnsServer {
  /** https://127.0.0.1:<port> */
  base: string;
  certUrl: string;
  /** PEM certificate and key (the same pair signs SNS messages and serves TLS). */
  cert: string;
  key: string;
  /** GETs trusting only this server's certificate (what the gateway is given as `espHttpGet`). */
  httpGet: HttpGet;
  /** Paths requested so far (certificate downloads and confirmations). */
  hits: string[];
  close(): Promise<void>;
}

export async function startSnsServer(): Promise<SnsServer> {
  const { key, cert } = await selfSignedCert('127.0.0.1');
  const hits: string[] = [];
  const server = createServer({ key, cert }, (req, res) => {
    hits.push(req.url ?? '');
    if (req.url === CERT_PATH) {
      res.writeHead(200, { 'content-type': 'application/x-x509-ca-cert' }).end(cert);
    } else if (req.url?.startsWith('/?Action=ConfirmSubscription')) {
      res.writeHead(200, { 'content-type': 'text/xml' }).end('<ConfirmSubscriptionResponse/>');
    } else {
      res.writeHead(404).end('not found');
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const httpGet: HttpGet = (url) =>
    new Promise((resolve, reject) => {
      get(url, { ca: cert, timeout: 5000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      }).on('error', reject);
    });
  return {
    base,
    certUrl: `${base}${CERT_PATH}`,
    cert,
    key,
    httpGet,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export type SnsFields = Record<string, string>;

/** The string SNS signs (AWS docs: "Verifying the signatures of Amazon SNS messages"). */
export function snsStringToSign(m: SnsFields): string {
  const names =
    m.Type === 'Notification'
      ? ['Message', 'MessageId', 'Subject', 'Timestamp', 'TopicArn', 'Type']
      : ['Message', 'MessageId', 'SubscribeURL', 'Timestamp', 'Token', 'TopicArn', 'Type'];
  return names
    .filter((n) => m[n] !== undefined)
    .map((n) => `${n}\n${m[n]}\n`)
    .join('');
}

/** Signs an SNS envelope (fields without Signature) the way SNS does. */
export function signSns(fields: SnsFields, key: string, version: '1' | '2' = '2'): SnsFields {
  const m = { ...fields, SignatureVersion: version };
  const signature = createSign(version === '1' ? 'RSA-SHA1' : 'RSA-SHA256')
    .update(snsStringToSign(m), 'utf8')
    .sign(key, 'base64');
  return { ...m, Signature: signature };
}

/** A signed SNS Notification carrying `message` (an object is JSON-encoded, as SES does). */
export function snsNotification(
  sns: Pick<SnsServer, 'certUrl' | 'key'>,
  message: unknown,
  opts: { topic?: string; version?: '1' | '2'; timestamp?: Date; subject?: string; certUrl?: string } = {},
): SnsFields {
  const fields: SnsFields = {
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: opts.topic ?? TEST_TOPIC,
    Message: typeof message === 'string' ? message : JSON.stringify(message),
    Timestamp: (opts.timestamp ?? new Date()).toISOString(),
    SigningCertURL: opts.certUrl ?? sns.certUrl,
    UnsubscribeURL: `https://127.0.0.1/?Action=Unsubscribe&SubscriptionArn=${TEST_TOPIC}:x`,
  };
  if (opts.subject !== undefined) fields.Subject = opts.subject;
  return signSns(fields, sns.key, opts.version ?? '2');
}

/** A signed SubscriptionConfirmation whose SubscribeURL points at the SNS stand-in. */
export function snsSubscriptionConfirmation(
  sns: Pick<SnsServer, 'certUrl' | 'key' | 'base'>,
  opts: { topic?: string; subscribeBase?: string } = {},
): SnsFields {
  const topic = opts.topic ?? TEST_TOPIC;
  const token = 'tok'.padEnd(64, '0');
  return signSns(
    {
      Type: 'SubscriptionConfirmation',
      MessageId: randomUUID(),
      Token: token,
      TopicArn: topic,
      Message: `You have chosen to subscribe to the topic ${topic}.\nTo confirm the subscription, visit the SubscribeURL included in this message.`,
      SubscribeURL: `${opts.subscribeBase ?? sns.base}/?Action=ConfirmSubscription&TopicArn=${topic}&Token=${token}`,
      Timestamp: new Date().toISOString(),
      SigningCertURL: sns.certUrl,
    },
    sns.key,
    '1',
  );
}

interface SesMail {
  /** MAIL FROM as SES reports it (our VERP). */
  source: string;
  /** Message-ID header, without brackets. */
  messageId?: string;
  to: string;
}

function mailObject(m: SesMail): Record<string, unknown> {
  return {
    timestamp: new Date().toISOString(),
    messageId: '0100018f-ses-internal-id-000000000000',
    source: m.source,
    sourceArn: 'arn:aws:ses:eu-west-1:123456789012:identity/example.test',
    sendingAccountId: '123456789012',
    destination: [m.to],
    headersTruncated: false,
    headers: [
      { name: 'From', value: 'Passport office <noreply@example.test>' },
      { name: 'To', value: m.to },
      ...(m.messageId ? [{ name: 'Message-ID', value: `<${m.messageId}>` }] : []),
    ],
    commonHeaders: { from: ['noreply@example.test'], to: [m.to], ...(m.messageId ? { messageId: `<${m.messageId}>` } : {}), subject: 'Your booking' },
  };
}

/** SES's Bounce notification (the SNS Message). */
export function sesBounce(
  mail: SesMail,
  bounce: { type: 'Permanent' | 'Transient' | 'Undetermined'; subType: string; recipient: string; status?: string; diagnosticCode?: string },
): Record<string, unknown> {
  return {
    notificationType: 'Bounce',
    bounce: {
      bounceType: bounce.type,
      bounceSubType: bounce.subType,
      bouncedRecipients: [
        {
          emailAddress: bounce.recipient,
          action: 'failed',
          ...(bounce.status ? { status: bounce.status } : {}),
          ...(bounce.diagnosticCode ? { diagnosticCode: bounce.diagnosticCode } : {}),
        },
      ],
      timestamp: new Date().toISOString(),
      feedbackId: '0100018f-feedback-0000',
      remoteMtaIp: '127.0.0.1',
      reportingMTA: 'dsn; a1-2.smtp-out.eu-west-1.amazonses.com',
    },
    mail: mailObject(mail),
  };
}

/** SES's Complaint notification. */
export function sesComplaint(mail: SesMail, recipient: string, feedbackType = 'abuse'): Record<string, unknown> {
  return {
    notificationType: 'Complaint',
    complaint: {
      complainedRecipients: [{ emailAddress: recipient }],
      timestamp: new Date().toISOString(),
      feedbackId: '0100018f-feedback-0001',
      userAgent: 'Yahoo!-Mail-Feedback/2.0',
      complaintFeedbackType: feedbackType,
      arrivalDate: new Date().toISOString(),
    },
    mail: mailObject(mail),
  };
}

export const MAILGUN_KEY = 'key-test-mailgun-signing-0001';

/** A Mailgun webhook body signed with `signingKey` (timestamp in seconds, a fresh random token unless given). */
export function mailgunWebhook(
  eventData: Record<string, unknown>,
  opts: { signingKey?: string; timestamp?: number; token?: string } = {},
): Record<string, unknown> {
  const timestamp = String(opts.timestamp ?? Math.floor(Date.now() / 1000));
  const token = opts.token ?? randomUUID().replace(/-/g, '').concat(randomUUID().replace(/-/g, '')).slice(0, 50);
  const signature = createHmac('sha256', opts.signingKey ?? MAILGUN_KEY)
    .update(timestamp + token)
    .digest('hex');
  return { signature: { timestamp, token, signature }, 'event-data': eventData };
}

/** Mailgun's `failed` event-data. */
export function mailgunFailed(m: {
  recipient: string;
  sender: string;
  messageId?: string;
  severity: 'permanent' | 'temporary';
  reason?: string;
  code?: number;
  message?: string;
  description?: string;
}): Record<string, unknown> {
  return {
    id: randomUUID(),
    timestamp: Date.now() / 1000,
    event: 'failed',
    severity: m.severity,
    reason: m.reason ?? (m.severity === 'permanent' ? 'bounce' : 'generic'),
    recipient: m.recipient,
    'recipient-domain': m.recipient.split('@')[1],
    envelope: { sender: m.sender, transport: 'smtp', targets: m.recipient },
    message: {
      headers: { to: m.recipient, 'message-id': m.messageId ?? 'unknown@example.test', from: 'noreply@example.test', subject: 'Your booking' },
      size: 1234,
    },
    'delivery-status': {
      code: m.code ?? 550,
      message: m.message ?? '5.1.1 The email account that you tried to reach does not exist',
      description: m.description ?? '',
      'attempt-no': 1,
      'mx-host': 'mx.dest.test',
      tls: true,
    },
    flags: { 'is-routed': false, 'is-authenticated': true, 'is-system-test': false, 'is-test-mode': false },
  };
}

/** Mailgun's `complained` event-data. */
export function mailgunComplained(m: { recipient: string; sender: string; messageId?: string }): Record<string, unknown> {
  return {
    id: randomUUID(),
    timestamp: Date.now() / 1000,
    event: 'complained',
    recipient: m.recipient,
    envelope: { sender: m.sender },
    message: { headers: { to: m.recipient, 'message-id': m.messageId ?? 'unknown@example.test', from: 'noreply@example.test', subject: 'Your booking' } },
  };
}
