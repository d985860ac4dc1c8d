/**
 * An HTTPS server on 127.0.0.1 serving MTA-STS policies (RFC 8461) at /.well-known/mta-sts.txt for any number of
 * domains: the certificate for `mta-sts.<domain>` is signed by the test CA (tls.ts) and chosen by SNI.
 */
import { createServer } from 'node:https';
import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { httpsPolicyFetcher, type PolicyFetcher } from '../../src/delivery/mta-sts-fetch.js';
import { createResolver } from '../../src/delivery/resolver.js';
import { caSignedCert, selfSignedCert, testCa } from './tls.js';

/** What the server answers for a domain; a string is a 200 text/plain policy. */
export type PolicyAnswer = string | { status: number; body?: string; contentType?: string; location?: string };

export interface PolicyServer {
  host: '127.0.0.1';
  port: number;
  /** Host headers of every request, in order (e.g. `mta-sts.example.test`). */
  requests: string[];
  /** Sets the answer for `domain` (unknown domains get 404). */
  set(domain: string, answer: PolicyAnswer): void;
  /** Present a self-signed certificate (not from the test CA) for `mta-sts.<domain>`. */
  untrusted(domain: string): void;
  close(): Promise<void>;
}

/** Builds a policy text, e.g. `policy('enforce', ['mx.example.test'])`. */
export function policy(mode: 'enforce' | 'testing' | 'none', mx: string[], maxAge = 86400): string {
  return ['version: STSv1', `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`, ''].join('\r\n');
}

/** Starts the policy server on an ephemeral port of 127.0.0.1. */
export async function startPolicyServer(): Promise<PolicyServer> {
  const answers = new Map<string, PolicyAnswer>();
  const selfSigned = new Set<string>();
  const requests: string[] = [];
  const fallback = await caSignedCert('mta-sts.invalid');
  const server = createServer(
    {
      key: fallback.key,
      cert: fallback.cert,
      SNICallback: (name, cb) => {
        const lower = name.toLowerCase();
        const cert = selfSigned.has(lower) ? selfSignedCert(lower) : caSignedCert(lower);
        cert.then(
          (c) => cb(null, createSecureContext(c)),
          (err: Error) => cb(err),
        );
      },
    },
    (req, res) => {
      const host = String(req.headers.host ?? '').toLowerCase();
      requests.push(host);
      const answer = req.url === '/.well-known/mta-sts.txt' ? answers.get(host.replace(/^mta-sts\./, '')) : undefined;
      if (answer === undefined) return void res.writeHead(404).end('not found');
      const a = typeof answer === 'string' ? { status: 200, body: answer } : answer;
      res.writeHead(a.status, { 'content-type': a.contentType ?? 'text/plain', ...(a.location ? { location: a.location } : {}) });
      res.end(a.body ?? '');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    requests,
    set: (domain, answer) => void answers.set(domain.toLowerCase(), answer),
    untrusted: (domain) => void selfSigned.add(`mta-sts.${domain.toLowerCase()}`),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Gateway options for a doctor that fetches MTA-STS policies from `web` (names resolved by `dnsAddress`), trusting
 * the test CA that signs the policy server's certificates.
 */
export async function policyGatewayOptions(dnsAddress: string, web: PolicyServer): Promise<{ trustedCa: string[]; mtaStsFetch: PolicyFetcher }> {
  const ca = await testCa();
  const resolver = createResolver({ servers: [dnsAddress], timeoutSeconds: 1, tries: 1 });
  return { trustedCa: [ca.cert], mtaStsFetch: httpsPolicyFetcher({ resolver, timeoutMs: 2000, port: web.port, trustedCa: [ca.cert] }) };
}
