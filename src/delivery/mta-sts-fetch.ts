import { request } from 'node:https';
import { rootCertificates } from 'node:tls';
import type { TlsResultType } from '../metrics/labels.js';
import { isDnsNotFound, type DnsResolver } from './resolver.js';
import { certificateFailureType } from './tls-failure.js';

/** An RFC 8460 policy failure type: what went wrong getting a domain's MTA-STS policy. */
export type PolicyFailureType = Extract<TlsResultType, 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid'>;

/** A policy that could not be fetched or read, with its RFC 8460 result type. */
export class PolicyFetchError extends Error {
  constructor(
    message: string,
    readonly resultType: PolicyFailureType,
  ) {
    super(message);
    this.name = 'PolicyFetchError';
  }
}

/** Fetches the policy text of `domain` from https://mta-sts.<domain>/.well-known/mta-sts.txt; throws {@link PolicyFetchError}. */
export type PolicyFetcher = (domain: string) => Promise<string>;

export interface HttpsPolicyFetcherOptions {
  /** The one DNS door: `mta-sts.<domain>` is resolved through it, like every other name. */
  resolver: DnsResolver;
  /** Bound of the whole fetch (DNS excluded). */
  timeoutMs: number;
  /** 443 in production; tests serve the policy on an ephemeral loopback port. */
  port?: number;
  /** PEM certificates trusted in addition to the system's roots (tests inject their CA). */
  trustedCa?: readonly string[];
}

/** RFC 8461 leaves the size open; a policy is a few lines, so anything larger is not one. */
const MAX_POLICY_BYTES = 64 * 1024;

async function addressOf(resolver: DnsResolver, host: string): Promise<string> {
  for (const lookup of [resolver.resolve4, resolver.resolve6]) {
    try {
      const addresses = await lookup.call(resolver, host);
      if (addresses.length) return addresses[0];
    } catch (err) {
      if (!isDnsNotFound(err))
        throw new PolicyFetchError(`${host}: address lookup failed (${(err as { code?: string }).code ?? 'error'})`, 'sts-policy-fetch-error');
    }
  }
  throw new PolicyFetchError(`${host} has no address`, 'sts-policy-fetch-error');
}

/**
 * The policy fetch of RFC 8461 section 3.3: HTTPS GET with the certificate verified against `mta-sts.<domain>`
 * (WebPKI), 200 only (redirects are not followed), `text/plain`, at most 64 KiB, within the timeout.
 */
export function httpsPolicyFetcher(opts: HttpsPolicyFetcherOptions): PolicyFetcher {
  const ca = opts.trustedCa?.length ? [...rootCertificates, ...opts.trustedCa] : undefined;
  return async (domain) => {
    const host = `mta-sts.${domain}`;
    const address = await addressOf(opts.resolver, host);
    return new Promise<string>((resolve, reject) => {
      const fail = (message: string, type: PolicyFailureType): void => {
        clearTimeout(timer);
        req.destroy();
        reject(new PolicyFetchError(`https://${host}/.well-known/mta-sts.txt: ${message}`, type));
      };
      const req = request(
        {
          host: address,
          port: opts.port ?? 443,
          path: '/.well-known/mta-sts.txt',
          method: 'GET',
          servername: host,
          headers: { host, accept: 'text/plain' },
          rejectUnauthorized: true,
          minVersion: 'TLSv1.2',
          ...(ca ? { ca } : {}),
          agent: false,
        },
        (res) => {
          if (res.statusCode !== 200)
            return fail(`HTTP ${res.statusCode ?? '?'}${res.headers.location ? ' (redirects are not followed)' : ''}`, 'sts-policy-fetch-error');
          const type = String(res.headers['content-type'] ?? 'text/plain');
          if (!/^text\/plain\b/i.test(type)) return fail(`Content-Type ${type}, not text/plain`, 'sts-policy-invalid');
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_POLICY_BYTES) return fail(`policy larger than ${MAX_POLICY_BYTES} bytes`, 'sts-policy-invalid');
            chunks.push(chunk);
          });
          res.on('error', (err) => fail(err.message, 'sts-policy-fetch-error'));
          res.on('end', () => {
            clearTimeout(timer);
            resolve(Buffer.concat(chunks).toString('utf8'));
          });
        },
      );
      const timer = setTimeout(() => fail(`no complete answer within ${opts.timeoutMs} ms`, 'sts-policy-fetch-error'), opts.timeoutMs);
      req.on('error', (err: Error & { code?: string }) => {
        const certificate = err.code !== undefined && certificateFailureType(err.code) !== 'validation-failure';
        fail(err.message, certificate ? 'sts-webpki-invalid' : 'sts-policy-fetch-error');
      });
      req.end();
    });
  };
}
