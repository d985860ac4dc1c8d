/**
 * The registered-source check for reports without a signed VERP (src/feedback/ingest/trust.ts): the
 * connecting address against `feedback.fblSources.ips`, and a DKIM signature over the whole report by one of
 * `feedback.fblSources.dkimDomains`, its key served by the loopback DNS server.
 */
import { generateKeyPairSync } from 'node:crypto';
import { dkimSignOnce } from '../../helpers/mailauth-sign.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema } from '../../../src/config/schema.js';
import { createResolver } from '../../../src/delivery/resolver.js';
import { createSourceVerifier } from '../../../src/feedback/ingest/trust.js';
import { startDnsServer, type DnsServer } from '../../helpers/dns-server.js';

const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const privateKey = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicKey = keys.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
const REPORT = 'From: feedback@fbl.example.net\r\nTo: fbl@bounce.example.test\r\nSubject: complaint\r\n\r\nFeedback-Type: abuse\r\n';

let dns: DnsServer;
beforeAll(async () => {
  dns = await startDnsServer({ 's1._domainkey.mail.fbl.example.net': { TXT: [`v=DKIM1; k=rsa; p=${publicKey}`] } });
});
afterAll(async () => dns?.close());

const config = (fblSources: Record<string, unknown>) => configSchema.parse({ feedback: { fblSources } });
const verifier = (fblSources: Record<string, unknown>) => {
  // Generous: under a loaded CI machine a loopback answer can take over a second.
  const resolver = createResolver({ servers: [dns.address], timeoutSeconds: 5, tries: 2 });
  return createSourceVerifier({ config: config(fblSources), resolver: (name, type) => resolver.resolve(name, type) });
};
const sign = async (raw: string, opts: { maxBodyLength?: number } = {}): Promise<string> => {
  const r = await dkimSignOnce(raw, {
    signatureData: [
      { signingDomain: 'mail.fbl.example.net', selector: 's1', privateKey, algorithm: 'rsa-sha256', canonicalization: 'relaxed/relaxed', ...opts },
    ],
  });
  return r.signatures + raw;
};

describe('registered feedback-loop sources', () => {
  it('trusts the listed addresses and ranges, IPv4-mapped peers included, and nothing else', async () => {
    const check = verifier({ ips: ['198.51.100.7', '203.0.113.0/24', '2001:db8::/32'] });
    const raw = Buffer.from(REPORT);
    expect(await check(raw, '198.51.100.7')).toMatchObject({ trusted: true, by: 'ip' });
    expect(await check(raw, '::ffff:203.0.113.200')).toMatchObject({ trusted: true, by: 'ip' });
    expect(await check(raw, '2001:db8:1::5')).toMatchObject({ trusted: true, by: 'ip' });
    expect(await check(raw, '198.51.100.8')).toMatchObject({ trusted: false });
    expect(await check(raw, undefined)).toMatchObject({ trusted: false });
  });

  it('trusts a DKIM signature that passes for a registered domain or its subdomain, over the whole body', async () => {
    const check = verifier({ dkimDomains: ['fbl.example.net'] });
    expect(await check(Buffer.from(await sign(REPORT)), '192.0.2.9')).toMatchObject({ trusted: true, by: 'dkim', detail: 'DKIM pass d=mail.fbl.example.net' });
    expect(await check(Buffer.from(REPORT), '192.0.2.9')).toMatchObject({ trusted: false, detail: expect.stringContaining('no signature') });
    // Altered after signing.
    expect(await check(Buffer.from((await sign(REPORT)).replace('abuse', 'fraud')), '192.0.2.9')).toMatchObject({ trusted: false });
    // l= covering only part of the body, with more appended after it.
    const partial = `${await sign(REPORT, { maxBodyLength: 10 })}Original-Rcpt-To: victim@other.test\r\n`;
    expect(await check(Buffer.from(partial), '192.0.2.9')).toMatchObject({ trusted: false });
    // A domain that merely ends in the same letters is not a subdomain.
    expect(await verifier({ dkimDomains: ['example.net'] })(Buffer.from(await sign(REPORT)), undefined)).toMatchObject({ trusted: true });
    expect(await verifier({ dkimDomains: ['l.example.net'] })(Buffer.from(await sign(REPORT)), undefined)).toMatchObject({ trusted: false });
  });

  it('trusts nothing when no source is registered', async () => {
    expect(await verifier({})(Buffer.from(await sign(REPORT)), '127.0.0.1')).toMatchObject({
      trusted: false,
      detail: expect.stringContaining('no DKIM domains registered'),
    });
  });

  it('refuses a malformed address or range in the config, naming the field', () => {
    for (const bad of ['198.51.100', '203.0.113.0/33', '2001:db8::/129', 'mx.example.net', '10.0.0.0/8/1']) {
      const r = configSchema.safeParse({ feedback: { fblSources: { ips: [bad] } } });
      expect(r.success, bad).toBe(false);
      if (!r.success)
        expect(r.error.issues[0]).toMatchObject({ path: ['feedback', 'fblSources', 'ips', 0], message: 'an IP address or CIDR range such as 192.0.2.0/24' });
    }
    expect(configSchema.safeParse({ feedback: { fblSources: { dkimDomains: ['not a domain'] } } }).success).toBe(false);
  });
});
