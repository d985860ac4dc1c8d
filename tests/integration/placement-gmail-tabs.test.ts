/**
 * Gmail's inbox tabs in the placement checker: the real mailbox search (src/placement/mailbox-search.ts, imapflow)
 * against a loopback test double of Gmail's IMAP server (tests/helpers/gmail-imap.ts) that speaks X-GM-EXT-1
 * (X-GM-LABELS, X-GM-RAW) and files mail into INBOX with a category, or into [Gmail]/Spam, as Gmail does.
 * It is a double, not Gmail: what it models and from which documentation is in its header. The last part runs the
 * placement service end to end: probes leave a real test gateway, reach a loopback MX that files each one into the
 * double like Gmail would (a tab, spam, or nowhere), and the results are read from GET /v1/placement and /metrics.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { placementSchema, type SeedConfig } from '../../src/config/placement-schema.js';
import { searchSeed, type SearchOptions } from '../../src/placement/mailbox-search.js';
import { newProbeToken } from '../../src/placement/probe-message.js';
import { getPlacement, waitPlacement } from '../helpers/dovecot-seeds.js';
import { startGmailImap, type GmailCategory, type GmailImap } from '../helpers/gmail-imap.js';
import { ADMIN_KEY, type TestGateway } from '../helpers/test-gateway.js';
import { gmailSeedStackForSuite } from '../helpers/gmail-seed-gateway.js';

const USER = 'kurir.seed1@gmail.test';
const PASS = 'app-password-1';
const defaults = placementSchema.parse({});

let gmail: GmailImap;

const seed = (): SeedConfig => ({
  name: 'gmail-1',
  provider: 'gmail',
  address: USER,
  imap: { host: '127.0.0.1', port: gmail.port, tls: false, verifyTls: true },
  auth: { method: 'app-password', passwordEnv: 'SEED_GMAIL_1_PASSWORD', tokenCacheSeconds: 600 },
  intervalSeconds: 600,
});

function probe(token: string): string {
  return [
    'Authentication-Results: mx.google.com;',
    '       dkim=pass header.i=@example.test;',
    '       spf=pass smtp.mailfrom=bounce.example.test;',
    '       dmarc=pass header.from=example.test',
    'From: verify@example.test',
    `To: ${USER}`,
    'Subject: Your verification code: 123456',
    `X-Kurir-Probe: ${token}`,
    '',
    `Your verification code is 123456. Reference: ${token}`,
    '',
  ].join('\r\n');
}

function search(tokens: string[], extra: Partial<SearchOptions> = {}): ReturnType<typeof searchSeed> {
  return searchSeed({
    seed: seed(),
    login: { user: USER, pass: PASS },
    tokens,
    junkNames: defaults.junkNames,
    skipNames: defaults.skipNames,
    deleteUnknownBefore: Date.now() - 86_400_000,
    timeoutMs: 5000,
    ...extra,
  });
}

/** The tokens of the messages still shown in `path`. */
function tokensIn(path: string): string[] {
  const folder = gmail.store.folder(path)!;
  return gmail.store.view(folder).map((e) => /X-Kurir-Probe: (\S+)/.exec(e.msg.raw.toString())![1]);
}

describe('placement on Gmail: inbox tabs over X-GM-EXT-1 (loopback Gmail IMAP double)', () => {
  beforeEach(async () => {
    gmail = await startGmailImap({ user: USER, pass: PASS });
  });
  afterEach(async () => {
    await gmail.close();
  });

  it('tells Primary from the other tabs, spam and missing in one search, and removes what it found from INBOX and Spam', async () => {
    const [primary, promo, updates, spam, missing] = [1, 2, 3, 4, 5].map(() => newProbeToken());
    gmail.deliver(probe(primary), { category: 'primary', labels: ['\\Important'] });
    gmail.deliver(probe(promo), { category: 'promotions' });
    gmail.deliver(probe(updates), { category: 'updates', labels: ['Receipts'] });
    gmail.deliver(probe(spam), { folder: '[Gmail]/Spam', category: 'promotions' });

    const out = await search([primary, promo, updates, spam, missing]);
    if (!out.ok) throw new Error(`search failed: ${out.reason} ${out.error}`);
    const byToken = new Map(out.found.map((f) => [f.token, f]));

    expect(byToken.get(primary)).toMatchObject({ folder: 'inbox', mailbox: 'INBOX', labels: ['\\Important'] });
    expect(byToken.get(primary)!.auth).toMatchObject({ dkim: 'pass', spf: 'pass', dmarc: 'pass', authservId: 'mx.google.com' });
    expect(byToken.get(promo)).toMatchObject({ folder: 'other', mailbox: 'INBOX (Gmail tab)', labels: [] });
    expect(byToken.get(updates)).toMatchObject({ folder: 'other', mailbox: 'INBOX (Gmail tab)', labels: ['Receipts'] });
    expect(byToken.get(spam)).toMatchObject({ folder: 'spam', mailbox: '[Gmail]/Spam', labels: [] });
    expect(byToken.has(missing)).toBe(false);
    expect(out.found).toHaveLength(4);

    // Found probes leave INBOX and Spam. With Gmail's default expunge behaviour (archive) the inbox ones stay in
    // All Mail, where nothing counts them again: their tokens are no longer in flight.
    expect([tokensIn('INBOX'), tokensIn('[Gmail]/Spam')]).toEqual([[], []]);
    expect(tokensIn('[Gmail]/All Mail').sort()).toEqual([primary, promo, updates].sort());

    // The dialogue is what Kurir sends Gmail: one X-GM-RAW search over the INBOX finds, by UID.
    const raw = gmail.dialogue.filter((l) => /X-GM-RAW/.test(l));
    expect(raw).toEqual([expect.stringMatching(/^C: \S+ UID SEARCH UID \d+,\d+,\d+ X-GM-RAW "?category:primary"?$/)]);
    const verbs = new Set(gmail.dialogue.flatMap((l) => /^C: \S+ ((?:UID )?[A-Z]+)/.exec(l)?.[1] ?? []));
    console.log(`Gmail double: one search is ${gmail.dialogue.length} lines; imapflow sent ${[...verbs].join(', ')}`);
  });

  it('a later search does not find the archived probes again, and a probe that arrives late is still placed', async () => {
    const [first, second] = [newProbeToken(), newProbeToken()];
    gmail.deliver(probe(first), { category: 'promotions' });
    const one = await search([first, second]);
    expect(one.ok && one.found.map((f) => [f.token, f.folder])).toEqual([[first, 'other']]);

    gmail.deliver(probe(second), { category: 'primary' });
    const two = await search([second]);
    expect(two.ok && two.found.map((f) => [f.token, f.folder, f.mailbox])).toEqual([[second, 'inbox', 'INBOX']]);
  });

  it('a probe that reaches INBOX after INBOX was searched is found in All Mail and still counted as inbox, with its tab', async () => {
    const [early, late, latePromo] = [newProbeToken(), newProbeToken(), newProbeToken()];
    gmail.deliver(probe(early), { category: 'primary' });
    // Gmail delivers while the checker is between folders: the new mail is in INBOX and in All Mail.
    gmail.onCommand = (cmd, args) => {
      if (cmd === 'SELECT' && args[0] === '[Gmail]/Spam' && !gmail.store.all().some((m) => m.raw.includes(late))) {
        gmail.deliver(probe(late), { category: 'primary' });
        gmail.deliver(probe(latePromo), { category: 'social' });
      }
    };
    const out = await search([early, late, latePromo]);
    if (!out.ok) throw new Error(`search failed: ${out.reason} ${out.error}`);
    const byToken = new Map(out.found.map((f) => [f.token, f]));
    expect(byToken.get(early)).toMatchObject({ folder: 'inbox', mailbox: 'INBOX' });
    expect(byToken.get(late)).toMatchObject({ folder: 'inbox', mailbox: 'INBOX', labels: ['\\Inbox'] });
    expect(byToken.get(latePromo)).toMatchObject({ folder: 'other', mailbox: 'INBOX (Gmail tab)', labels: ['\\Inbox'] });
  });

  it('on an account set to delete forever on expunge, found probes leave All Mail too', async () => {
    await gmail.close();
    gmail = await startGmailImap({ user: USER, pass: PASS, expungeBehavior: 'deleteForever' });
    const [inbox, promo, spam] = [newProbeToken(), newProbeToken(), newProbeToken()];
    gmail.deliver(probe(inbox), { category: 'primary' });
    gmail.deliver(probe(promo), { category: 'promotions' });
    gmail.deliver(probe(spam), { folder: '[Gmail]/Spam' });
    const out = await search([inbox, promo, spam]);
    expect(out.ok && out.found.map((f) => f.folder).sort()).toEqual(['inbox', 'other', 'spam']);
    expect(gmail.store.all()).toEqual([]);
  });

  it('answers auth for a wrong app password, like any seed', async () => {
    const out = await search([newProbeToken()], { login: { user: USER, pass: 'wrong' } });
    expect(out).toMatchObject({ ok: false, reason: 'auth' });
  });
});

describe('placement on Gmail end to end: gateway → MX → Gmail IMAP double → GET /v1/placement', () => {
  const DEADLINE_SECONDS = 6;
  /** What the "Gmail" MX does with each next probe, in order. */
  const plan: Array<GmailCategory | 'spam' | 'drop'> = ['primary', 'promotions', 'spam', 'drop'];
  let t: TestGateway;
  const results = async (): Promise<any[]> => (await getPlacement(t.url)).providers.find((x: any) => x.provider === 'gmail')?.results ?? [];
  const metric = async (re: RegExp): Promise<number> => {
    const line = (await (await fetch(`${t.url}/metrics`)).text()).split('\n').find((l) => re.test(l));
    return line ? Number(line.split(' ').pop()) : Number.NaN;
  };

  gmailSeedStackForSuite(
    {
      user: USER,
      pass: PASS,
      mxScript: (imap) => (ctx) => {
        if (ctx.stage !== 'data' || !ctx.raw) return undefined;
        const what = plan.shift() ?? 'primary';
        if (what === 'spam') imap.deliver(ctx.raw, { folder: '[Gmail]/Spam' });
        else if (what !== 'drop') imap.deliver(ctx.raw, { category: what });
        return undefined;
      },
      deadlineSeconds: DEADLINE_SECONDS,
    },
    (s) => {
      ({ gmail, t } = s);
    },
  );

  it('records inbox, other (Gmail tab), spam and missing, counts each once, and leaves INBOX and Spam empty', async () => {
    const request = async (): Promise<void> => {
      const res = await fetch(`${t.url}/v1/placement/probes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ seed: 'gmail-1' }),
      });
      expect(res.status).toBe(202);
    };
    // The scheduler sends the first probe as the gateway starts; each next one is requested once the last settled.
    for (let n = 1; n <= 4; n++) {
      if (n > 1) await request();
      await waitPlacement(t.url, (p) => (p.providers.find((x: any) => x.provider === 'gmail')?.results.length ?? 0) >= n, 20_000);
    }
    const r = (await results()).reverse();
    expect(r.map((x) => [x.result, x.mailbox])).toEqual([
      ['inbox', 'INBOX'],
      ['other', 'INBOX (Gmail tab)'],
      ['spam', '[Gmail]/Spam'],
      ['missing', undefined],
    ]);
    expect(r[1].labels).toEqual([]);
    for (const [folder, n] of Object.entries({ inbox: 1, other: 1, spam: 1, missing: 1 }))
      expect(await metric(new RegExp(`^kurir_placement_results_total\\{provider="gmail",folder="${folder}"\\}`))).toBe(n);
    expect([tokensIn('INBOX'), tokensIn('[Gmail]/Spam')]).toEqual([[], []]);
    // The two inbox probes (Primary and Promotions) were archived by the delete, as Gmail does by default.
    expect(tokensIn('[Gmail]/All Mail')).toHaveLength(2);
  }, 60_000);
});
