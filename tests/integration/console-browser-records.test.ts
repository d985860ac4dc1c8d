/**
 * The support screen in Chromium over records written straight into the message store, the way intake
 * and delivery write them: hostile text in every attacker-influenced field (subject, sender, reference,
 * remote replies, DSN text) stays text; a recipient left out at intake (suppressed between RCPT TO and the
 * end of DATA) is told as such, not as "not among the recipients"; a timeline of 1,000 events renders whole;
 * a crafted `done` notice code shows nothing. Skipped, with a message, when /usr/bin/chromium is not installed.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newMessageId } from '../../src/lib/ids.js';
import type { MessageRecord, TimelineEvent } from '../../src/store/types.js';
import { ADMIN_KEY, adminRequest, startTestGateway, type TestGateway } from '../helpers/test-gateway.js';

const CHROMIUM = '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`console-browser-records.test.ts skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

const EVIL = `<img src=x onerror="document.title='pwned'"><b id="injected">x</b>`;

let t: TestGateway;
let browser: Browser;
let page: Page;

function record(to: string[], extra: Partial<MessageRecord> = {}): MessageRecord {
  const now = Date.now();
  const id = newMessageId(now);
  return {
    id,
    owner: 'booking-dev',
    interface: 'smtp',
    mailFrom: 'noreply@example.test',
    fromDomain: 'example.test',
    recipients: to,
    priority: 'verification',
    createdAt: now,
    expiresAt: now + 3_600_000,
    size: 10,
    messageId: `<${id}@example.test>`,
    dkim: [],
    ...extra,
  };
}

async function search(q: string): Promise<void> {
  await page.goto(`${t.url}/console?q=${encodeURIComponent(q)}`);
}

describe.skipIf(!haveChromium)('support screen over stored records, in Chromium', () => {
  beforeAll(async () => {
    t = await startTestGateway({ overrides: { roles: ['api'] } });
    const created = await adminRequest(t.url, 'POST', '/v1/credentials', { kind: 'api-key', name: 'records-support', role: 'support' });
    expect(created.status).toBe(201);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage();
    await page.goto(`${t.url}/console/login`);
    await page.getByLabel('API key (role support or admin)').fill(created.body.secret);
    await Promise.all([page.waitForURL(`${t.url}/console`), page.getByRole('button', { name: 'Log in' }).click()]);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('shows hostile subject, sender, reference and replies as text', async () => {
    const r = record(['victim@dest.test'], { subject: EVIL, mailFrom: `"${EVIL}"@example.test`, reference: `REF${EVIL}` });
    const at = r.createdAt + 1000;
    const events: TimelineEvent[] = [
      { type: 'attempt', at, recipients: r.recipients, host: `mx${EVIL}`, reply: `451 ${EVIL}` },
      { type: 'bounced', at: at + 1, recipients: r.recipients, reply: `550 5.1.1 ${EVIL}`, category: EVIL, async: true },
    ];
    expect(await t.gateway.messages.create(r, Buffer.from('x'), events)).toBe(true);
    await search(r.id);
    const card = page.locator('section.card', { hasText: r.id });
    expect(await card.count()).toBe(1);
    expect(await page.locator('#injected').count()).toBe(0);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.title()).not.toBe('pwned');
    expect(await card.locator('h2').textContent()).toContain(EVIL);
    expect(await card.locator('tbody').textContent()).toContain(`550 5.1.1 ${EVIL}`);
  });

  it('tells a recipient left out at intake (suppressed meanwhile) as such, with the reason', async () => {
    const r = record(['stays@dest.test'], { subject: 'Left out', leftOut: [{ address: 'Left@elsewhere.test', reason: 'hard-bounce' }] });
    const events: TimelineEvent[] = [{ type: 'suppressed', at: r.createdAt, recipients: ['Left@elsewhere.test'], reason: 'hard-bounce', source: 'intake' }];
    expect(await t.gateway.messages.create(r, Buffer.from('x'), events)).toBe(true);
    await search('left@elsewhere.test');
    const card = page.locator('section.card', { hasText: 'Left out' });
    expect(await card.count()).toBe(1);
    const facts = (await card.locator('.facts').textContent()) ?? '';
    expect(facts).not.toContain('not among the recipients');
    expect(facts).toMatch(/^Kurir left Left@elsewhere\.test out of this message when accepting it: .*suppressed meanwhile \(hard-bounce\)/);
    // The timeline's suppressed event of source intake is that leaving out, not a suppression this message caused.
    const timeline = (await card.locator('tbody').textContent()) ?? '';
    expect(timeline).toContain('left out of this message (already suppressed: hard-bounce)');
    expect(timeline).not.toContain('address suppressed: hard-bounce');
  });

  it('searched by id, a message to several recipients tells each recipient, not "this address is not among the recipients"', async () => {
    const r = record(['one@dest.test', 'two@other.test'], { subject: 'Two recipients' });
    expect(await t.gateway.messages.create(r, Buffer.from('x'))).toBe(true);
    await search(r.id);
    const card = page.locator('section.card', { hasText: 'Two recipients' });
    const facts = await card.locator('.facts').allTextContents();
    expect(facts.join(' ')).not.toContain('not among the recipients');
    expect(facts).toEqual([
      expect.stringMatching(/^one@dest\.test: Waiting to be sent \(since .* UTC\)\.$/),
      expect.stringMatching(/^two@other\.test: Waiting to be sent/),
    ]);
  });

  it('reads a superseded outcome as a late one, and a bad search as an error page naming the field', async () => {
    const r = record(['late@dest.test'], { subject: 'Late outcome' });
    const events: TimelineEvent[] = [
      { type: 'delivered', at: r.createdAt + 1, recipients: r.recipients, host: 'mx.dest.test', reply: '250 ok' },
      { type: 'bounced', at: r.createdAt + 2, recipients: r.recipients, reply: '550 5.7.1 dup', category: 'policy', superseded: true },
    ];
    expect(await t.gateway.messages.create(r, Buffer.from('x'), events)).toBe(true);
    await search(r.id);
    const rows = await page.locator('section.card', { hasText: 'Late outcome' }).locator('tbody tr').allTextContents();
    expect(rows.at(-1)).toMatch(/bounced \(policy\): 550 5\.7\.1 dup — a late outcome, after the recipient was settled .*it changed nothing$/);
    const res = await page.goto(`${t.url}/console?q=${encodeURIComponent('no body@@dest')}`);
    expect(res?.status()).toBe(400);
    const error = (await page.locator('main p.error').textContent()) ?? '';
    expect(error).toMatch(/^q: /);
    expect(error).not.toContain('[object Object]');
  });

  it('renders a timeline of 1,000 events whole', async () => {
    const r = record(['busy@dest.test'], { subject: 'Busy' });
    const events: TimelineEvent[] = Array.from({ length: 999 }, (_, i) => ({
      type: 'deferred' as const,
      at: r.createdAt + i + 1,
      recipients: r.recipients,
      reply: `451 4.7.1 try again ${i}`,
      category: 'rate-limited',
      nextAttemptAt: r.createdAt + 60_000,
    }));
    expect(await t.gateway.messages.create(r, Buffer.from('x'), events)).toBe(true);
    await search(r.id);
    const card = page.locator('section.card', { hasText: 'Busy' });
    expect(await card.locator('tbody tr').count()).toBe(1000);
    expect(await card.locator('tbody tr').last().textContent()).toContain('try again 998');
  });

  it('shows no notice for a done code that is not one of its own (constructor, toString)', async () => {
    for (const code of ['constructor', 'toString', '__proto__']) {
      await page.goto(`${t.url}/console?q=nobody%40dest.test&done=${code}`);
      expect(await page.locator('h2', { hasText: 'message(s)' }).count()).toBe(1);
      expect(await page.locator('p.notice[role=status]').count()).toBe(0);
      expect(await page.locator('main').textContent()).not.toContain('native code');
    }
    const admin = await browser.newPage();
    await admin.goto(`${t.url}/console/login`);
    await admin.getByLabel('API key (role support or admin)').fill(ADMIN_KEY);
    await Promise.all([admin.waitForURL(`${t.url}/console`), admin.getByRole('button', { name: 'Log in' }).click()]);
    for (const path of ['/console/incidents?done=constructor', '/console/credentials?done=toString']) {
      const res = await admin.goto(`${t.url}${path}`);
      expect(res?.status()).toBe(200);
      expect(await admin.locator('p.notice[role=status]').count()).toBe(0);
      expect(await admin.locator('main').textContent()).not.toContain('native code');
    }
    await admin.close();
  });
});
