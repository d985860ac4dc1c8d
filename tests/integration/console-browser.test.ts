/**
 * The web console in a real browser: Debian's Chromium driven by playwright-core (no browser download),
 * against a real gateway on loopback that delivers to a test receiver. A support login finds a delivered
 * message by its recipient, reads the receiver's reply in words and the seed placement, and removes the
 * address's suppression; an admin opens the incident, domain and provider pages, verifies and rotates a
 * DKIM key, reads the doctor's findings, pauses and resumes a provider, follows Grafana links, rotates the
 * support key, and creates and revokes a key. Support also finds messages by booking reference and reads
 * the resend outlook. A screenshot of each page is kept in test-results/console/ (gitignored).
 * Skipped, with a message, when /usr/bin/chromium is not installed (`apt-get install chromium`).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { Redis } from 'ioredis';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/store/keys.js';
import { PlacementStore } from '../../src/store/placement-store.js';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Receiver } from '../helpers/receiver.js';
import { ADMIN_KEY, adminRequest, startTestGateway, submitDelivered, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = 'test-results/console';
const haveChromium = existsSync(CHROMIUM);
if (!haveChromium) console.warn(`console-browser.test.ts skipped: ${CHROMIUM} is not installed (apt-get install chromium)`);

const APPLICANT = 'applicant@gmail.com';
const LIMITED = 'limited@gmail.com';
const REFERENCE = 'BK-2026-4711';
const GRAFANA = 'http://127.0.0.1:9/grafana';

let receiver: Receiver;
let dns: DnsServer;
let t: TestGateway;
let browser: Browser;
let supportKey = '';
let messageId = '';

function api(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  return adminRequest(t.url, method, path, body);
}

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

/** Logs in with the keyboard only: Tab to the key field, type, Enter. */
async function login(page: Page, key: string): Promise<void> {
  await page.goto(`${t.url}/console`);
  expect(page.url()).toBe(`${t.url}/console/login`);
  await page.keyboard.press('Tab');
  expect(await page.evaluate(() => document.activeElement?.id)).toBe('key');
  await page.keyboard.type(key);
  await Promise.all([page.waitForURL(`${t.url}/console`), page.keyboard.press('Enter')]);
}

describe.skipIf(!haveChromium)('web console in Chromium', () => {
  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    receiver = await startReceiver({ hostname: 'mx.dest.test' });
    dns = await startDnsServer({ 'gmail.com': { MX: [{ exchange: 'mx.dest.test', priority: 10 }] }, 'mx.dest.test': { A: ['127.0.0.1'] } });
    t = await startTestGateway({
      dns,
      overrides: {
        roles: ['intake', 'api', 'worker'],
        delivery: { mxPort: receiver.port },
        authLimits: { delayStepMs: 0 },
        limits: { recipient: { max: 2, windowSeconds: 600, priorities: ['verification'] } },
        console: { grafanaUrl: GRAFANA },
        domainKeys: { masterKey: 'c0ffee00112233445566778899aabbccddeeff00112233445566778899aabbcc' },
      },
    });
    t.publishDkim(dns);
    const created = await api('POST', '/v1/credentials', { kind: 'api-key', name: 'office-support', role: 'support' });
    expect(created.status).toBe(201);
    supportKey = created.body.secret;
    const sent = await submitDelivered(
      t,
      receiver,
      { from: 'Passport office <noreply@example.test>', subject: 'Your verification code', text: 'Code: 123456', metadata: { reference: REFERENCE } },
      APPLICANT,
    );
    messageId = sent.id;
    // Two verification messages use up LIMITED's per-recipient budget (2 per 600 s).
    for (let i = 0; i < 2; i++) {
      const r = await t.submit({ from: 'noreply@example.test', to: [LIMITED], subject: `Code ${i}`, text: 'Code', priority: 'verification' });
      expect(r.status).toBe(202);
      await t.waitForStatus(r.body.id, (x) => x.status === 'delivered');
    }
    expect((await api('PUT', `/v1/suppressions/${encodeURIComponent(APPLICANT)}`, { reason: 'complaint (test)' })).status).toBe(201);
    // A seed-mailbox result for gmail, recorded the way the placement role records one.
    const redis = new Redis('redis://127.0.0.1:6379');
    const store = new PlacementStore(redis, createKeys(t.config.redis.prefix), 50);
    const now = Date.now();
    await store.addProbe({
      token: 'p1',
      seed: 'gmail-seed',
      provider: 'gmail',
      messageId: 'probe',
      submittedAt: now - 60_000,
      deadline: now + 600_000,
      trigger: 'schedule',
    });
    expect(
      await store.finish({
        token: 'p1',
        seed: 'gmail-seed',
        provider: 'gmail',
        messageId: 'probe',
        result: 'inbox',
        submittedAt: now - 60_000,
        at: now - 30_000,
        mailbox: 'INBOX',
      }),
    ).toBe(true);
    await redis.quit();
    expect((await api('POST', '/v1/domains', { name: 'bookings.example.net' })).status).toBe(201);
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  }, 60_000);

  afterAll(() => closeAll(browser, t, receiver, dns));

  it('support: finds the message by recipient and by booking reference, reads the facts, timeline and resend outlook, removes the suppression', async () => {
    const page = await browser.newPage();
    await page.goto(`${t.url}/console/login`);
    await shot(page, '01-login');
    await login(page, supportKey);
    await page.getByLabel('Recipient address, message id or booking reference').fill(APPLICANT);
    await Promise.all([page.waitForURL(/\/console\?q=/), page.getByRole('button', { name: 'Search' }).click()]);
    const card = page.locator('section.card', { hasText: 'Your verification code' });
    await expect.poll(() => card.count()).toBe(1);
    const facts = await card.locator('.facts').textContent();
    expect(facts).toMatch(/^gmail \(mx\.dest\.test\) accepted it at \d{4}-\d\d-\d\d \d\d:\d\d UTC\. Its answer: “250/);
    const timeline = await card.locator('tbody').textContent();
    expect(timeline).toContain('accepted by Kurir and queued');
    expect(timeline).toMatch(/delivered to mx\.dest\.test\[127\.0\.0\.1\]:\d+: 250/);
    expect(await card.textContent()).toContain(messageId);
    expect(await page.locator('p.facts', { hasText: 'seed test' }).textContent()).toMatch(
      /^Our last seed test at gmail \(.+ UTC\) found the test message in the inbox\.$/,
    );
    expect(await page.getByRole('heading', { name: 'Suppressed' }).count()).toBe(1);
    const resend = page.locator('section.card', { has: page.getByRole('heading', { name: 'May the booking system send another message?' }) });
    expect(await resend.locator('.facts').textContent()).toBe(
      `no No: ${APPLICANT} is suppressed, so Kurir will refuse a new message to it until the suppression is removed.`,
    );
    await shot(page, '02-support-search');

    // Removal cannot be undone, so it asks first: the link opens a confirmation page and removes nothing.
    await Promise.all([
      page.waitForURL(/\/console\/suppressions\/remove\?address=/),
      page.getByRole('link', { name: `Remove suppression of ${APPLICANT}…` }).click(),
    ]);
    expect(await page.locator('main p.error').textContent()).toMatch(
      /^Remove applicant@gmail\.com from the suppression list\? It was suppressed .* UTC: complaint \(test\) \(by api:admin-dev\)\. .*This cannot be undone/,
    );
    expect((await api('GET', `/v1/suppressions/${encodeURIComponent(APPLICANT)}`)).status).toBe(200);
    await shot(page, '02b-support-remove-confirm');
    await Promise.all([page.waitForURL(/done=removed/), page.getByRole('button', { name: `Remove suppression of ${APPLICANT} now` }).click()]);
    expect(await page.getByRole('status').textContent()).toContain('The suppression was removed');
    expect(await page.textContent('main')).toContain(`${APPLICANT} is not suppressed`);
    expect((await api('GET', `/v1/suppressions/${encodeURIComponent(APPLICANT)}`)).status).toBe(404);
    expect(await resend.locator('.facts').textContent()).toMatch(
      /^yes Yes: a new message is accepted now \(0 of the 2 verification messages allowed per 10 minutes to this address used/,
    );
    await shot(page, '03-support-suppression-removed');

    // By booking reference, typed into the same box (not an address, not a message id).
    await page.getByLabel('Recipient address, message id or booking reference').fill(REFERENCE.toLowerCase());
    await Promise.all([page.waitForURL(/q=bk-2026-4711/), page.getByLabel('Recipient address, message id or booking reference').press('Enter')]);
    expect(await page.getByRole('heading', { level: 2, name: /message\(s\) with the booking reference/ }).textContent()).toBe(
      '1 message(s) with the booking reference bk-2026-4711',
    );
    const byRef = page.locator('section.card', { hasText: 'Your verification code' });
    expect(await byRef.locator('dl.meta').textContent()).toContain(`Reference${REFERENCE}`);
    expect(await page.getByRole('heading', { name: `About ${APPLICANT}` }).count()).toBe(1);
    await shot(page, '03b-support-by-reference');

    // The recipient limit is used up for LIMITED: not yet, with the time of the next allowed message.
    await page.goto(`${t.url}/console?q=${encodeURIComponent(LIMITED)}`);
    const limited = await resend.locator('.facts').textContent();
    expect(limited).toMatch(
      /^not yet Not yet: 2 of the 2 verification messages allowed per 10 minutes to this address were sent in the current window\. The next is allowed at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in about 10 minutes\)/,
    );
    await shot(page, '03c-support-resend-not-yet');

    // By message id too.
    await page.goto(`${t.url}/console?q=${messageId}`);
    expect(await page.locator('section.card', { hasText: messageId }).count()).toBe(1);
    expect(await page.locator('section.card', { hasText: 'Code 0' }).count()).toBe(0);

    // Admin pages are not for support.
    const refused = await page.goto(`${t.url}/console/incidents`);
    expect(refused?.status()).toBe(403);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Not allowed');
    await shot(page, '04-support-refused-admin');

    // On a phone: the same page, one column.
    await page.setViewportSize({ width: 375, height: 740 });
    await page.goto(`${t.url}/console?q=${encodeURIComponent(APPLICANT)}`);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot(page, '05-support-phone');
    await page.close();
  }, 60_000);

  it('admin: incidents and Grafana links, domains (verify, rotate, doctor), providers (pause, resume), credentials (rotate, create, revoke)', async () => {
    const page = await browser.newPage();
    await login(page, ADMIN_KEY);
    await page.getByRole('link', { name: 'Incidents' }).click();
    await page.waitForURL(`${t.url}/console/incidents`);
    const gmail = page.locator('section.card', { hasText: 'gmail' });
    expect(await gmail.textContent()).toMatch(/Last hour: 3 delivered, 0 deferred, 0 bounced, 0 expired/);
    expect(await gmail.getByRole('link', { name: 'Delivery dashboard for gmail' }).getAttribute('href')).toBe(
      `${GRAFANA}/d/kurir-delivery?from=now-6h&to=now&var-provider=gmail`,
    );
    expect(await page.getByRole('link', { name: 'Admin dashboard', exact: true }).getAttribute('href')).toBe(`${GRAFANA}/d/kurir-admin?from=now-6h&to=now`);
    await shot(page, '06-admin-incidents');

    await page.getByRole('link', { name: 'Domains' }).click();
    await page.waitForURL(`${t.url}/console/domains`);
    const domain = page.locator('section.card', { hasText: 'bookings.example.net' });
    expect(await domain.locator('tbody').textContent()).toContain('_domainkey.bookings.example.net');
    const verify = page.getByRole('button', { name: 'Verify DNS of bookings.example.net' });
    await Promise.all([page.waitForURL(/done=verified/), verify.click()]);
    expect(await page.locator('section.card', { hasText: 'bookings.example.net' }).textContent()).toMatch(/Last DNS check .+ UTC: (?!all records found)/);
    // Publish the records the page lists (the DKIM TXT records) in the loopback DNS, then verify again.
    const listed = await api('GET', '/v1/domains/bookings.example.net');
    for (const r of listed.body.records.filter((x: any) => x.purpose === 'dkim')) dns.set(r.name, 'TXT', [r.value]);
    await Promise.all([page.waitForURL(/done=verified/), verify.click()]);
    const card = page.locator('section.card', { hasText: 'bookings.example.net' });
    expect(await card.textContent()).toContain('all records found');
    expect(await card.getByRole('heading').textContent()).toContain('active');
    const keysBefore = await card.locator('p', { hasText: 'Keys:' }).textContent();
    await Promise.all([page.waitForURL(/done=rotated/), page.getByRole('button', { name: 'Rotate DKIM key of bookings.example.net' }).click()]);
    expect(await page.getByRole('status').textContent()).toContain('A new DKIM key was created');
    const keysAfter = await card.locator('p', { hasText: 'Keys:' }).textContent();
    expect(keysAfter!.split(',').length).toBeGreaterThan(keysBefore!.split(',').length);
    expect(keysAfter).toContain('pending');
    await shot(page, '07-admin-domains');

    // The doctor's findings for the domain: every check with its result, and the fix of each failure.
    await Promise.all([page.waitForURL(/\/console\/domains\/doctor\?domain=/), page.getByRole('link', { name: 'Doctor for bookings.example.net' }).click()]);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Doctor: bookings.example.net');
    const report = await api('GET', '/v1/domains/bookings.example.net/doctor');
    const rows = page.locator('tr.check');
    expect(await rows.count()).toBe(report.body.checks.length);
    const failed = report.body.checks.find((c: any) => c.status === 'fail');
    expect(failed).toBeDefined();
    const failedRow = page.locator('tr.check', { has: page.locator('td', { hasText: new RegExp(`^${failed.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) }) });
    expect(await failedRow.locator('td[data-label="Result"]').textContent()).toBe('fail');
    expect(await failedRow.locator('td[data-label="Fix"]').textContent()).toBe(failed.fix);
    expect(await page.locator('tr.check.pass').count()).toBe(report.body.checks.filter((c: any) => c.status === 'pass').length);
    await shot(page, '07b-admin-doctor');
    // Back with the keyboard: focus the link, Enter.
    await page.getByRole('link', { name: 'Back to the domains' }).focus();
    await Promise.all([page.waitForURL(`${t.url}/console/domains`), page.keyboard.press('Enter')]);
    expect(await page.getByRole('link', { name: 'Doctor for example.test' }).count()).toBe(1);

    await page.getByRole('link', { name: 'Providers' }).click();
    await page.waitForURL(`${t.url}/console/providers`);
    expect(await page.getByRole('link', { name: 'Delivery dashboard for gmail' }).getAttribute('href')).toContain('var-provider=gmail');
    await Promise.all([page.waitForURL(/done=paused/), page.getByRole('button', { name: 'Pause gmail' }).click()]);
    const state = await api('GET', '/v1/shaping');
    expect(state.body.providers.find((p: any) => p.provider === 'gmail')).toMatchObject({ adminPaused: 'indefinitely', pausedBy: 'admin-dev' });
    await shot(page, '08-admin-providers-paused');
    await Promise.all([page.waitForURL(/done=resumed/), page.getByRole('button', { name: 'Resume gmail' }).click()]);
    expect((await api('GET', '/v1/shaping')).body.providers.find((p: any) => p.provider === 'gmail').adminPaused).toBeNull();

    // Rotate the support key with no overlap: the new secret is shown once and works, the old one stops.
    await page.getByRole('link', { name: 'Credentials' }).click();
    await page.waitForURL(`${t.url}/console/credentials`);
    const row = page.locator('tr', { hasText: 'office-support' });
    await page.getByLabel('Seconds the old secret of office-support keeps working').fill('0');
    await Promise.all([page.waitForLoadState('load'), row.getByRole('button', { name: 'Rotate office-support' }).click()]);
    const secret = await page.getByLabel('New secret').inputValue();
    expect(secret).toMatch(/^kurir_[A-Za-z0-9_-]{43}$/);
    expect(page.url()).not.toContain(secret);
    await shot(page, '09-admin-credentials-rotated');
    const search = (key: string) => fetch(`${t.url}/v1/messages?to=${encodeURIComponent(APPLICANT)}`, { headers: { authorization: `Bearer ${key}` } });
    expect((await search(secret)).status).toBe(200);
    expect((await search(supportKey)).status).toBe(401);

    // Create a key, then revoke it through the confirmation page.
    await page.goto(`${t.url}/console/credentials`);
    await page.getByLabel('Kind').selectOption('api-key');
    await page.getByLabel('Name', { exact: true }).fill('night-desk');
    await page.getByLabel('Role').selectOption('support');
    await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Create credential' }).click()]);
    const created = await page.getByLabel('New secret').inputValue();
    expect(created).toMatch(/^kurir_[A-Za-z0-9_-]{43}$/);
    expect(await page.getByRole('status').textContent()).toContain('Secret of the new api-key of night-desk, shown this once');
    expect((await search(created)).status).toBe(200);
    await shot(page, '10-admin-credential-created');
    await Promise.all([page.waitForURL(/\/console\/credentials\/revoke\?id=/), page.getByRole('link', { name: 'Revoke night-desk…' }).click()]);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Revoke night-desk?');
    await shot(page, '11-admin-credential-revoke-confirm');
    await Promise.all([page.waitForURL(/done=revoked/), page.getByRole('button', { name: 'Revoke night-desk now' }).click()]);
    expect(await page.getByRole('status').textContent()).toContain('The credential is revoked');
    expect(await page.locator('tr', { hasText: 'night-desk' }).count()).toBe(0);
    expect((await search(created)).status).toBe(401);
    await shot(page, '12-admin-credential-revoked');

    // On a phone: the credentials and doctor pages stay one column.
    await page.setViewportSize({ width: 375, height: 740 });
    for (const path of ['/console/credentials', '/console/domains/doctor?domain=bookings.example.net']) {
      await page.goto(`${t.url}${path}`);
      const wide = await page.evaluate(() =>
        [...document.querySelectorAll('body *')]
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
          .map((e) => `${e.tagName}.${e.className}#${e.id}:${Math.round(e.getBoundingClientRect().right)}`)
          .slice(0, 8),
      );
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect({ path, wide, overflow }).toEqual({ path, wide: [], overflow: 0 });
    }
    await shot(page, '13-admin-doctor-phone');
    await page.close();
  }, 60_000);
});
