/**
 * What the doctor tests (tests/integration/doctor*.test.ts, domain-records-doctor.test.ts) run against: DNS on
 * loopback, the MTA-STS policy server (policy-server.ts) and a test gateway whose doctor fetches policies from it,
 * with HELO name {@link HOST}, bounce domain {@link BOUNCE}, one sending IP ({@link IP}) and a master key for
 * runtime-managed domains. {@link publishGoodRecords} publishes every record of a correctly configured domain.
 */
import { afterAll, beforeAll } from 'vitest';
import { closeAll } from './close-all.js';
import { startDnsServer, type DnsServer } from './dns-server.js';
import { policy, policyGatewayOptions, startPolicyServer, type PolicyServer } from './policy-server.js';
import { startTestGateway, type TestGateway } from './test-gateway.js';

/** The gateway's sending IP (`domainKeys.sendingIps`), from TEST-NET-1 so that its PTR is asked of the loopback DNS. */
export const IP = '192.0.2.10';
/** The PTR name of {@link IP}. */
export const PTR = '10.2.0.192.in-addr.arpa';
/** The gateway's HELO name (`hostname`), also the bounce domain's MX. */
export const HOST = 'mail.kurir.test';
/** The bounce (envelope sender) domain. */
export const BOUNCE = 'bounce.kurir.test';

/**
 * Registers the beforeAll that starts DNS, the policy server and the gateway and hands them to `use` (which may
 * publish records), and the afterAll that closes them. `masterKey` is one hex digit, repeated to a 64-digit key;
 * `blocklists` are the doctor's DNS blocklists.
 */
export function doctorGatewayForFile(opts: { masterKey: string; blocklists: string[] }, use: (d: DoctorGateway) => void): void {
  let dns: DnsServer | undefined;
  let web: PolicyServer | undefined;
  let t: TestGateway | undefined;
  beforeAll(async () => {
    dns = await startDnsServer({});
    web = await startPolicyServer();
    t = await startTestGateway({
      dns,
      overrides: {
        hostname: HOST,
        bounce: { domain: BOUNCE },
        domainKeys: { masterKey: opts.masterKey.repeat(64), sendingIps: [IP], refreshSeconds: 0.2 },
        doctor: { blocklists: opts.blocklists },
      },
      gatewayOptions: await policyGatewayOptions(dns.address, web),
    });
    use({ dns, web, t });
  }, 30_000);
  afterAll(() => closeAll(t, web, dns));
}

/**
 * Publishes every record of a correctly configured `domain` (one the gateway signs for): SPF of it and of the
 * bounce domain, MX, DMARC with a mailto: rua, the PTR and A of the sending IP, MTA-STS (record, host and an
 * enforce policy naming `mx.<domain>`), TLS-RPT and the gateway's DKIM keys; and takes back what the tests
 * change: a blocklist entry for the IP, the other PTR name's A record, a SERVFAIL on the rsa DKIM name.
 */
export function publishGoodRecords({ dns, web, t }: DoctorGateway, domain: string): void {
  dns.set(domain, 'TXT', [`v=spf1 ip4:${IP} -all`]);
  dns.set(domain, 'MX', [{ exchange: `mx.${domain}`, priority: 10 }]);
  dns.set(`mx.${domain}`, 'A', ['127.0.0.1']);
  dns.set(BOUNCE, 'TXT', [`v=spf1 ip4:${IP} -all`]);
  dns.set(BOUNCE, 'MX', [{ exchange: HOST, priority: 10 }]);
  dns.set(`_dmarc.${domain}`, 'TXT', [`v=DMARC1; p=quarantine; rua=mailto:dmarc@${BOUNCE}`]);
  dns.set(PTR, 'PTR', [HOST]);
  dns.set(HOST, 'A', [IP]);
  dns.set(`_mta-sts.${domain}`, 'TXT', ['v=STSv1; id=20261129T0800']);
  dns.set(`mta-sts.${domain}`, 'A', ['127.0.0.1']);
  web.set(domain, policy('enforce', [`mx.${domain}`]));
  dns.set(`_smtp._tls.${domain}`, 'TXT', [`v=TLSRPTv1; rua=mailto:tls@${BOUNCE}`]);
  dns.remove('10.2.0.192.bl.test');
  dns.remove('ptr.kurir.test');
  dns.servfail(`kurir1._domainkey.${domain}`, false);
  t.publishDkim(dns);
}

/** What {@link doctorGatewayForFile} starts. */
export interface DoctorGateway {
  dns: DnsServer;
  web: PolicyServer;
  t: TestGateway;
}
