/**
 * The configuration files of the benchmark's Postfix + OpenDKIM instance (bench/postfix-instance.ts):
 * main.cf, master.cf and opendkim.conf, all paths under the instance's temp folder.
 */
import { join } from 'node:path';
import { postfixBaseMainCf, postfixServices } from '../tests/helpers/postfix-mx.js';

/** What the instance is started with. */
export interface PostfixOptions {
  sinkPort: number;
  /** Signing domain (the From domain) and selector; the caller publishes the key. */
  domain: string;
  selector: string;
  /** PEM of the RSA private key OpenDKIM signs with. */
  privateKeyPem: string;
  /** SASL login accepted by smtpd. */
  user: string;
  pass: string;
  /** Parallel deliveries to the sink (Postfix's destination concurrency limit). */
  deliveryConcurrency: number;
  /**
   * Keep SMTP connections to the sink open for reuse (`smtp_connection_cache_destinations`, the usual tuning
   * for a relayhost). Off, Postfix caches only "on demand", when a backlog builds up, and otherwise opens a
   * connection (TCP, EHLO, STARTTLS) per message.
   */
  connectionCache: boolean;
  /** Parent of the temp folder (default os.tmpdir(); it should be on the same disk as Redis's AOF for fsync parity). */
  parent?: string;
}

/** main.cf: loopback only, every route to the sink, STARTTLS + SASL for submission, OpenDKIM as milter. */
export function mainCf(dir: string, o: PostfixOptions, milterPort: number): string {
  const sink = `[127.0.0.1]:${o.sinkPort}`;
  const p: Record<string, string | number> = {
    // Nothing is delivered locally, and every route leads to the sink: no message can leave the machine.
    ...postfixBaseMainCf(dir, 'pf.bench.test'),
    mydomain: 'bench.test',
    myorigin: '$myhostname',
    local_transport: 'error:local delivery disabled',
    virtual_transport: 'error:virtual delivery disabled',
    relayhost: sink,
    default_transport: `smtp:${sink}`,
    relay_transport: `smtp:${sink}`,
    fallback_relay: '',
    smtp_fallback_relay: '',
    transport_maps: '',
    smtp_dns_support_level: 'disabled',
    notify_classes: '',
    biff: 'no',
    append_dot_mydomain: 'no',
    // Submission: STARTTLS, then AUTH (Cyrus SASL, sasldb of this instance); relaying needs the login.
    smtpd_tls_cert_file: join(dir, 'tls', 'smtpd.crt'),
    smtpd_tls_key_file: join(dir, 'tls', 'smtpd.key'),
    smtpd_tls_security_level: 'may',
    smtpd_tls_auth_only: 'yes',
    smtpd_sasl_auth_enable: 'yes',
    smtpd_sasl_type: 'cyrus',
    smtpd_sasl_path: 'smtpd',
    // Debian's Postfix reads <config dir>/sasl/smtpd.conf whatever cyrus_sasl_config_path says.
    cyrus_sasl_config_path: join(dir, 'conf', 'sasl'),
    smtpd_sasl_local_domain: '$myhostname',
    smtpd_sasl_security_options: 'noanonymous',
    smtpd_relay_restrictions: 'permit_sasl_authenticated, reject_unauth_destination',
    smtpd_recipient_restrictions: '',
    smtpd_client_connection_count_limit: 0,
    // Delivery to the sink: opportunistic STARTTLS, as Kurir's, and the same number of parallel deliveries.
    smtp_tls_security_level: 'may',
    // Debian's default main.cf has both TLS session caches.
    smtp_tls_session_cache_database: `btree:${join(dir, 'data', 'smtp_scache')}`,
    smtpd_tls_session_cache_database: `btree:${join(dir, 'data', 'smtpd_scache')}`,
    smtp_connection_cache_destinations: o.connectionCache ? sink : '',
    // Without this, Postfix never reuses a connection it has encrypted (it then goes through tlsproxy).
    smtp_tls_connection_reuse: o.connectionCache ? 'yes' : 'no',
    default_destination_concurrency_limit: o.deliveryConcurrency,
    smtp_destination_concurrency_limit: o.deliveryConcurrency,
    // OpenDKIM signs in smtpd, before the queue file is written; a milter failure refuses the message.
    smtpd_milters: `inet:127.0.0.1:${milterPort}`,
    non_smtpd_milters: '$smtpd_milters',
    milter_default_action: 'tempfail',
    milter_protocol: 6,
  };
  return `${Object.entries(p)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n')}\n`;
}

/** Debian's services, none chrooted (the chroot would need copies of the SASL and TLS files). */
export function masterCf(port: number): string {
  const relaying = [
    'proxywrite unix - - n - 1 proxymap',
    'smtp unix - - n - - smtp',
    'relay unix - - n - - smtp',
    'showq unix n - n - - showq',
    'tlsproxy unix - - n - 0 tlsproxy',
  ];
  return `127.0.0.1:${port} inet n - n - - smtpd\n${postfixServices(relaying)}`;
}

/** OpenDKIM signing `domain` with `selector`, relaxed/relaxed rsa-sha256, for mail from 127.0.0.1. */
export function opendkimConf(dir: string, port: number, o: PostfixOptions): string {
  return `Syslog no
Mode s
Domain ${o.domain}
Selector ${o.selector}
KeyFile ${join(dir, 'dkim', 'signing.key')}
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
InternalHosts 127.0.0.1
Socket inet:${port}@127.0.0.1
PidFile ${join(dir, 'opendkim.pid')}
RequireSafeKeys no
`;
}
