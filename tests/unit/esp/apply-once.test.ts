/**
 * An ESP notification is marked as handled only once it was applied (src/esp/apply-once.ts), against a real
 * Redis under a unique prefix. The ingest behind SesFeedback and MailgunFeedback is a stand-in that records
 * what it is asked to apply, and can hang (the process is killed while applying) or fail. Until 1 Dec 2026
 * the long-lived marker was written first: after a crash, or a Redis failure that also kept the marker from
 * being taken back, every redelivery of the bounce was answered `duplicate` (Mailgun: `replayed`) and it was
 * never applied.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLAIM_SECONDS } from '../../../src/esp/apply-once.js';
import { MailgunFeedback } from '../../../src/esp/mailgun.js';
import { SesFeedback } from '../../../src/esp/ses.js';
import { createCertFetcher } from '../../../src/esp/sns-signature.js';
import { loadBounceRules, rulesClassifier } from '../../../src/feedback/classify/rules.js';
import type { EspResult, IgnoreReason, IngestOutcome, ProviderReport } from '../../../src/feedback/ingest/ingest-types.js';
import { answer } from '../../../src/http/esp-routes.js';
import { KurirError } from '../../../src/lib/errors.js';
import { createLogger } from '../../../src/lib/logger.js';
import { createMetrics } from '../../../src/metrics/metrics.js';
import { createKeys } from '../../../src/store/keys.js';
import { createRedis } from '../../../src/store/redis.js';
import { MAILGUN_KEY, TEST_TOPIC, mailgunFailed, mailgunWebhook, sesBounce, snsNotification, startSnsServer, type SnsServer } from '../../helpers/esp.js';
import { dropPrefix, testConfig } from '../../helpers/test-gateway.js';

const prefix = `kurir-test-esp-once-${Math.random().toString(36).slice(2, 10)}`;
const keys = createKeys(prefix);
const dataDir = mkdtempSync(join(tmpdir(), 'kurir-test-'));
const config = testConfig(dataDir, {
  feedback: {
    ses: { topicArns: [TEST_TOPIC], certHostPattern: '^127\\.0\\.0\\.1$' },
    mailgun: { signingKey: MAILGUN_KEY },
  },
});
const classify = rulesClassifier(loadBounceRules());
const APPLIED: IngestOutcome = {
  result: 'applied',
  kind: 'bounce',
  messageId: 'x',
  bounced: ['alice@dest.test'],
  delayed: [],
  complained: [],
  suppressed: [],
  senderSide: [],
};
let sns: SnsServer;
let admin: Redis;

beforeAll(async () => {
  sns = await startSnsServer();
  admin = new Redis('redis://127.0.0.1:6379');
});

afterAll(async () => {
  await sns?.close();
  await admin?.quit();
  await dropPrefix(prefix);
  rmSync(dataDir, { recursive: true, force: true });
});

/** A "process": its own Redis connection (as the gateway's command connection) and an ingest doing `apply`. */
async function processWith(apply: (r: ProviderReport) => Promise<IngestOutcome>) {
  const redis = createRedis('redis://127.0.0.1:6379', 'command');
  if (redis.status !== 'ready') await new Promise((ready) => redis.once('ready', ready));
  const applied: ProviderReport[] = [];
  const deps = {
    config,
    ingest: {
      ingestParsed: (r: ProviderReport) => {
        applied.push(r);
        return apply(r);
      },
      ignore: (_ctx: unknown, reason: IgnoreReason, detail: string): IngestOutcome => ({ result: 'ignored', reason, detail }),
    },
    classify,
    metrics: createMetrics({ defaultMetrics: false }),
    logger: createLogger({ level: 'silent' }),
    clock: { now: () => Date.now() },
    redis,
    keys,
  };
  const ses = new SesFeedback({ ...deps, httpGet: sns.httpGet, fetchCert: createCertFetcher(sns.httpGet) });
  return { ses, mailgun: new MailgunFeedback(deps), applied, redis };
}

const hangs = (): Promise<IngestOutcome> => new Promise(() => undefined);
const succeeds = async (): Promise<IngestOutcome> => APPLIED;
const bounce = () =>
  snsNotification(
    sns,
    sesBounce(
      { source: 'b+x.y@bounce.example.test', to: 'alice@dest.test' },
      { type: 'Permanent', subType: 'General', recipient: 'alice@dest.test', status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' },
    ),
  );
const inProgress = { result: 'rejected', reason: 'in-progress' };

/** What a claim left behind looks like once CLAIM_SECONDS have passed: checked to be a short claim, then expired. */
async function claimExpires(key: string): Promise<void> {
  const ttl = await admin.ttl(key);
  expect(ttl).toBeGreaterThan(0);
  expect(ttl).toBeLessThanOrEqual(CLAIM_SECONDS);
  await admin.pexpire(key, 1);
  await new Promise((r) => setTimeout(r, 20));
}

describe('SES notifications are marked as handled only once applied', () => {
  it('a redelivery after the process died while applying is answered 503 while the claim lasts, then applied', async () => {
    const m = bounce();
    const first = await processWith(hangs);
    void first.ses.handle('Notification', JSON.stringify(m));
    await new Promise((r) => setTimeout(r, 200));
    expect(first.applied).toHaveLength(1);
    first.redis.disconnect(); // killed mid-apply

    const second = await processWith(succeeds);
    const early = await second.ses.handle('Notification', JSON.stringify(m));
    expect(early).toMatchObject(inProgress);
    expect(() => answer(early)).toThrow(expect.objectContaining({ httpStatus: 503 }));
    await claimExpires(keys.espSeen('ses', m.MessageId));
    expect(await second.ses.handle('Notification', JSON.stringify(m))).toEqual({ result: 'applied', outcome: APPLIED });
    expect(second.applied).toHaveLength(1);
    // Applied now: remembered for the accepted age, and a further redelivery is a duplicate.
    expect(await admin.ttl(keys.espSeen('ses', m.MessageId))).toBeGreaterThan(86_400);
    expect(await second.ses.handle('Notification', JSON.stringify(m))).toEqual({ result: 'duplicate' });
    expect(second.applied).toHaveLength(1);
    second.redis.disconnect();
  });

  it('a redelivery after Redis went away while applying (the claim could not be given back) is applied once the claim expired', async () => {
    const m = bounce();
    const first = await processWith(async () => {
      first.redis.disconnect();
      throw new Error('Connection is closed.');
    });
    await expect(first.ses.handle('Notification', JSON.stringify(m))).rejects.toThrow(/closed/);

    const second = await processWith(succeeds);
    expect(await second.ses.handle('Notification', JSON.stringify(m))).toMatchObject(inProgress);
    await claimExpires(keys.espSeen('ses', m.MessageId));
    expect(await second.ses.handle('Notification', JSON.stringify(m))).toMatchObject({ result: 'applied' });
    expect(second.applied).toHaveLength(1);
    second.redis.disconnect();
  });

  it('a failed apply gives its claim back at once; a redelivery during an apply is answered 503 and not applied twice', async () => {
    const m = bounce();
    let fail = true;
    let finish: (o: IngestOutcome) => void = () => undefined;
    const p = await processWith(() => {
      if (fail) {
        fail = false;
        return Promise.reject(new Error('Command timed out'));
      }
      return new Promise((resolve) => {
        finish = resolve;
      });
    });
    await expect(p.ses.handle('Notification', JSON.stringify(m))).rejects.toThrow(/timed out/);
    const slow = p.ses.handle('Notification', JSON.stringify(m));
    await new Promise((r) => setTimeout(r, 100));
    expect(await p.ses.handle('Notification', JSON.stringify(m))).toMatchObject(inProgress);
    finish(APPLIED);
    expect(await slow).toMatchObject({ result: 'applied' });
    expect(await p.ses.handle('Notification', JSON.stringify(m))).toEqual({ result: 'duplicate' });
    expect(p.applied).toHaveLength(2); // the failed attempt and the one that applied it
    p.redis.disconnect();
  });
});

describe('Mailgun signature tokens are used up only once the event was applied', () => {
  it('the same signed event after the process died while applying is applied once the claim expired, then refused as replayed', async () => {
    const body = JSON.stringify(mailgunWebhook(mailgunFailed({ recipient: 'alice@dest.test', sender: 'b+x.y@bounce.example.test', severity: 'permanent' })));
    const token = (JSON.parse(body) as { signature: { token: string } }).signature.token;
    const first = await processWith(hangs);
    void first.mailgun.handle(body);
    await new Promise((r) => setTimeout(r, 200));
    expect(first.applied).toHaveLength(1);
    first.redis.disconnect();

    const second = await processWith(succeeds);
    expect(await second.mailgun.handle(body)).toMatchObject(inProgress);
    await claimExpires(keys.espSeen('mailgun', token));
    expect(await second.mailgun.handle(body)).toEqual({ result: 'applied', outcome: APPLIED });
    const replay: EspResult = await second.mailgun.handle(body);
    expect(replay).toMatchObject({ result: 'rejected', reason: 'replayed' });
    expect(() => answer(replay)).toThrow(KurirError);
    expect(second.applied).toHaveLength(1);
    second.redis.disconnect();
  });
});
