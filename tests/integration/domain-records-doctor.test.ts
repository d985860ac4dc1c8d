/**
 * The records Kurir prints for a new domain pass Kurir's own doctor: MTA-STS (the `_mta-sts` TXT and the policy
 * file) and TLS-RPT are published exactly as `POST /v1/domains` answered them, in the loopback DNS and on the
 * test HTTPS policy server, and the doctor's mta-sts and tls-rpt checks pass, as does every other record check
 * (SPF of the sender and of the bounce domain, DMARC, bounce MX, DKIM). A domain whose mail is received
 * elsewhere warns until its own mx: lines are set (PATCH mtaStsMx) and the new policy is published.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DnsServer } from '../helpers/dns-server.js';
import type { PolicyServer } from '../helpers/policy-server.js';
import { ADMIN_KEY, adminRequest, type TestGateway } from '../helpers/test-gateway.js';
import { BOUNCE, doctorGatewayForFile, HOST } from '../helpers/doctor-gateway.js';

const D = 'records.test';

let dns: DnsServer;
let web: PolicyServer;
let t: TestGateway;

/** Publishes a domain view exactly as printed: every TXT and MX record, and the MTA-STS policy file. */
function publishView(view: any): void {
  for (const r of view.records) {
    if (r.type === 'TXT') dns.set(r.name, 'TXT', [r.strings]);
    else {
      const [priority, exchange] = r.value.split(' ');
      dns.set(r.name, 'MX', [{ exchange, priority: Number(priority) }]);
    }
  }
  for (const f of view.files) web.set(new URL(f.url).hostname.replace(/^mta-sts\./, ''), f.contents);
}

const doctor = async (): Promise<any> => (await adminRequest(t.url, 'GET', `/v1/domains/${D}/doctor`)).body;
const checkOf = (report: any, id: string): any => report.checks.find((c: any) => c.id === id);

doctorGatewayForFile({ masterKey: 'e', blocklists: ['bl.test'] }, (d) => {
  ({ dns, web, t } = d);
  // Where the policy is hosted (the web host of mta-sts.<domain>) and where the domain's mail is received: Kurir's MX.
  dns.set(`mta-sts.${D}`, 'A', ['127.0.0.1']);
  dns.set(D, 'MX', [{ exchange: HOST, priority: 10 }]);
});

describe('MTA-STS and TLS-RPT in the records of a new domain', () => {
  let added: any;

  it('POST /v1/domains answers the _mta-sts and _smtp._tls records and the policy file (mode testing, mx: hostname)', async () => {
    const res = await adminRequest(t.url, 'POST', '/v1/domains', { name: D });
    expect(res.status).toBe(201);
    added = res.body;
    const sts = added.records.find((r: any) => r.purpose === 'mta-sts');
    expect(sts).toMatchObject({ name: `_mta-sts.${D}`, type: 'TXT', required: false });
    expect(sts.value).toMatch(/^v=STSv1; id=[0-9a-f]{20}$/);
    expect(sts.zone).toBe(`_mta-sts.${D}. IN TXT "${sts.value}"`);
    expect(added.records.find((r: any) => r.purpose === 'tls-rpt')).toMatchObject({
      name: `_smtp._tls.${D}`,
      value: `v=TLSRPTv1; rua=mailto:tls-reports@${BOUNCE}`,
      zone: `_smtp._tls.${D}. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@${BOUNCE}"`,
    });
    expect(added.files).toEqual([
      {
        purpose: 'mta-sts-policy',
        url: `https://mta-sts.${D}/.well-known/mta-sts.txt`,
        contentType: 'text/plain',
        contents: `version: STSv1\nmode: testing\nmx: ${HOST}\nmax_age: 604800\n`,
        note: expect.stringContaining(`certificate for mta-sts.${D}`),
      },
    ]);
  });

  it("publishing exactly what add printed passes the doctor's mta-sts and tls-rpt checks (and DKIM once verified)", async () => {
    const before = await doctor();
    expect(checkOf(before, 'mta-sts')).toMatchObject({
      status: 'warn',
      fix: expect.stringContaining(added.records.find((r: any) => r.purpose === 'mta-sts').zone),
    });
    expect(checkOf(before, 'tls-rpt')).toMatchObject({ status: 'warn', fix: `publish _smtp._tls.${D}. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@${BOUNCE}"` });

    publishView(added);
    expect((await adminRequest(t.url, 'POST', `/v1/domains/${D}/verify`)).body.state).toBe('active');
    const report = await doctor();
    expect(checkOf(report, 'mta-sts')).toMatchObject({
      status: 'pass',
      summary: `MTA-STS policy ${added.records.find((r: any) => r.purpose === 'mta-sts').value.slice('v=STSv1; id='.length)}: mode testing, mx ${HOST}`,
    });
    expect(checkOf(report, 'tls-rpt')).toMatchObject({ status: 'pass', summary: `TLS reports go to mailto:tls-reports@${BOUNCE}` });
    expect(checkOf(report, `dkim:${added.keys[0].selector}`).status).toBe('pass');
    expect(checkOf(report, 'bounce-mx').status).toBe('pass');
    expect(checkOf(report, 'dmarc').status).toBe('pass');
  });

  it("the records printed include the bounce domain's SPF, and with them every record check of the doctor passes", async () => {
    const bounceSpf = added.records.find((r: any) => r.purpose === 'bounce-spf');
    expect(bounceSpf).toMatchObject({ name: BOUNCE, type: 'TXT', value: 'v=spf1 ip4:192.0.2.10 -all', zone: `${BOUNCE}. IN TXT "v=spf1 ip4:192.0.2.10 -all"` });
    const report = await doctor();
    // PTR (rdns:) and HELO belong to whoever owns the sending IP, not to the records Kurir prints.
    const failing = report.checks.filter((c: any) => c.status !== 'pass' && !/^(rdns|helo)/.test(c.id));
    expect(failing).toEqual([]);
    for (const id of ['spf', 'spf-ips', `spf:${BOUNCE}`, `spf-ips:${BOUNCE}`, 'dmarc', 'dmarc-alignment', 'bounce-mx', 'mta-sts', 'tls-rpt'])
      expect(checkOf(report, id)?.status, id).toBe('pass');
  });

  it('mail received elsewhere: warns until mtaStsMx is set and the new policy (new id) is published', async () => {
    dns.set(D, 'MX', [{ exchange: 'mx1.other.test', priority: 10 }]);
    const warned = checkOf(await doctor(), 'mta-sts');
    expect(warned).toMatchObject({ status: 'warn', fix: `add mx: mx1.other.test to the policy and publish a new id in _mta-sts.${D}` });

    const bad = await adminRequest(t.url, 'PATCH', `/v1/domains/${D}`, { mtaStsMx: ['not a host'] });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ field: 'mtaStsMx' });
    // A host given twice, or in two cases, is one mx: line (until 2 Dec 2026 it was kept and listed twice).
    const patched = await adminRequest(t.url, 'PATCH', `/v1/domains/${D}`, { mtaStsMx: ['*.other.test', '*.OTHER.test', '*.other.test'] });
    expect(patched.status).toBe(200);
    expect(patched.body.mtaStsMx).toEqual(['*.other.test']);
    expect(patched.body.files[0].contents).toBe('version: STSv1\nmode: testing\nmx: *.other.test\nmax_age: 604800\n');
    const oldId = added.records.find((r: any) => r.purpose === 'mta-sts').value;
    expect(patched.body.records.find((r: any) => r.purpose === 'mta-sts').value).not.toBe(oldId);
    publishView(patched.body);
    expect(checkOf(await doctor(), 'mta-sts')).toMatchObject({ status: 'pass', summary: expect.stringContaining('mx *.other.test') });
  });

  it('kurir domains show prints the zone lines and the policy file to serve', async () => {
    const out = await new Promise<string>((done, fail) => {
      execFile(
        resolve('node_modules/.bin/tsx'),
        [resolve('src/cli/bin.ts'), 'domains', 'show', D],
        { env: { PATH: process.env.PATH ?? '', KURIR_URL: t.url, KURIR_ADMIN_KEY: ADMIN_KEY } },
        (err, stdout) => (err ? fail(err) : done(stdout)),
      );
    });
    const lines = out.split('\n');
    expect(lines).toContain(
      `_smtp._tls.${D}. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@${BOUNCE}"  ; SMTP TLS reports (RFC 8460) about mail delivered to this domain`,
    );
    expect(lines.some((l) => l.startsWith(`_mta-sts.${D}. IN TXT "v=STSv1; id=`))).toBe(true);
    expect(lines).toContain(`; file to serve at https://mta-sts.${D}/.well-known/mta-sts.txt (text/plain): ${added.files[0].note}`);
    expect(lines.filter((l) => l.startsWith(';   ') && !/^; {3}\d{4}-/.test(l))).toEqual([
      ';   version: STSv1',
      ';   mode: testing',
      ';   mx: *.other.test',
      ';   max_age: 604800',
    ]);
    expect(out).toMatch(/scheduled rotation: every 90 days \(config\), next \d{4}-/);
  }, 30_000);
});
