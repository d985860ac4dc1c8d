import { isLoopbackHost } from './mode.js';
import type { Config } from './schema.js';

type Delivery = Config['delivery'];
type Smarthost = NonNullable<Delivery['smarthost']>;

/** How Kurir protects the connection to the smarthost, after defaults are applied. */
export interface SmarthostTls {
  /** Implicit TLS (smtps, usually port 465). */
  secure: boolean;
  /** STARTTLS must succeed; the session is never continued in clear. */
  requireTls: boolean;
  /** The certificate must chain to a trusted CA and name `host`. */
  verifyTls: boolean;
}

/**
 * The effective TLS settings of the smarthost. With credentials (`user`) TLS is required and verified unless
 * the config says otherwise in so many words; without credentials the old defaults hold (STARTTLS when offered,
 * certificate checked as `delivery.verifyTls` says), so a local test relay such as Mailpit keeps working.
 */
export function smarthostTls(smarthost: Smarthost, delivery: Pick<Delivery, 'verifyTls'>): SmarthostTls {
  const credentials = smarthost.user !== undefined;
  return {
    secure: smarthost.secure,
    requireTls: smarthost.requireTls ?? credentials,
    verifyTls: smarthost.verifyTls ?? (credentials ? true : delivery.verifyTls),
  };
}

/**
 * Start-up check of the smarthost credentials: refuses a config that would send the ESP password over a
 * connection that may be in clear (STARTTLS optional, so an attacker can strip it) or whose certificate is
 * not verified (anyone in the path can present one), to a host that is not loopback — unless
 * `delivery.smarthost.allowInsecureAuth: true` is written. Each problem names the key and the fix.
 */
export function smarthostCredentialProblems(config: Pick<Config, 'delivery'>): string[] {
  const s = config.delivery.smarthost;
  if (!s) return [];
  const problems: string[] = [];
  if (s.pass !== undefined && s.user === undefined) {
    problems.push('delivery.smarthost.pass is set without delivery.smarthost.user: set both (AUTH) or neither');
  }
  if (s.user !== undefined && !s.pass) {
    problems.push(
      'delivery.smarthost.user is set without delivery.smarthost.pass: set the password (KURIR_DELIVERY__SMARTHOST__PASS), or remove user to relay without AUTH',
    );
  }
  if (s.user === undefined || s.allowInsecureAuth || isLoopbackHost(s.host)) return problems;
  const tls = smarthostTls(s, config.delivery);
  const optOut = 'or write delivery.smarthost.allowInsecureAuth: true to accept the risk';
  if (!tls.secure && !tls.requireTls) {
    problems.push(
      `delivery.smarthost.requireTls = false: the smarthost password for ${s.host} would be sent in clear if STARTTLS is stripped; ` +
        `remove the key (TLS is then required), or use secure: true (port 465), ${optOut}`,
    );
  }
  if (!tls.verifyTls) {
    problems.push(
      `delivery.smarthost.verifyTls = false: the smarthost password for ${s.host} would go to whoever presents a certificate; ` +
        `remove the key (the certificate is then verified against ${s.host}) ${optOut}`,
    );
  }
  return problems;
}
