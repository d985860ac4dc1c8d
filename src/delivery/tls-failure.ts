import type { TLSSocket } from 'node:tls';
import type SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import type { TlsResultType } from '../metrics/labels.js';

/** The TLS negotiation failures of RFC 8460 section 4.3.1 (the policy failures come from src/delivery/mta-sts.ts). */
export type TlsFailureType = Extract<
  TlsResultType,
  'starttls-not-supported' | 'certificate-host-mismatch' | 'certificate-expired' | 'certificate-not-trusted' | 'validation-failure'
>;

const EXPIRED = new Set(['CERT_HAS_EXPIRED', 'CERT_NOT_YET_VALID', 'ERR_TLS_CERT_EXPIRED']);
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
]);

/** Maps a Node certificate verification code (TLSSocket#authorizationError) to its RFC 8460 result type. */
export function certificateFailureType(code: string): TlsFailureType {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return 'certificate-host-mismatch';
  if (EXPIRED.has(code)) return 'certificate-expired';
  if (UNTRUSTED.has(code)) return 'certificate-not-trusted';
  return 'validation-failure';
}

/** The socket below an SMTPConnection: the TLS socket once TLS is up (or was being negotiated). Not public API. */
function socketOf(conn: SMTPConnection): Partial<TLSSocket> | undefined {
  return (conn as unknown as { _socket?: Partial<TLSSocket> })._socket;
}

/** Sessions opened in clear after their opportunistic STARTTLS failed (smtp-client.ts `openSession`), with why it failed. */
const fallbacks = new WeakMap<SMTPConnection, TlsFailureType>();

/** Marks `conn` as opened in clear because STARTTLS failed with `failure`, which {@link sessionTlsIssue} then reports. */
export function markTlsFallback(conn: SMTPConnection, failure: TlsFailureType): void {
  fallbacks.set(conn, failure);
}

/**
 * What a verifying sender would object to in an established session: no TLS at all (or the failure that made it go
 * on in clear), or a certificate that did not verify (Node checks chain and host name even when it is told not to
 * reject). Undefined when TLS is up with a certificate that verified.
 */
export function sessionTlsIssue(conn: SMTPConnection): TlsFailureType | undefined {
  if (!conn.secure) return fallbacks.get(conn) ?? 'starttls-not-supported';
  const socket = socketOf(conn);
  if (socket?.authorized !== false) return undefined;
  return certificateFailureType(String(socket.authorizationError ?? ''));
}

/**
 * Why opening a session failed, when it failed on TLS: STARTTLS refused (or not offered while required), a
 * certificate that did not verify, or another handshake failure. Null for failures that are not about TLS
 * (connection refused, timeouts, 4xx/5xx greetings). Read before the connection is closed.
 */
export function sessionTlsFailure(conn: SMTPConnection, err: Error & { code?: string; command?: string; response?: string }): TlsFailureType | null {
  const socket = socketOf(conn);
  if (socket?.authorized === false && socket.authorizationError) return certificateFailureType(String(socket.authorizationError));
  if (err.code === 'ETLS' && err.command === 'STARTTLS' && err.response) return 'starttls-not-supported';
  if (/does not match certificate's altnames/i.test(err.message)) return 'certificate-host-mismatch';
  if (/certificate (has expired|is not yet valid)/i.test(err.message)) return 'certificate-expired';
  if (/self[- ]signed certificate|unable to (verify|get (local )?issuer)/i.test(err.message)) return 'certificate-not-trusted';
  if (err.code === 'ETLS' || (conn as unknown as { upgrading?: boolean }).upgrading) return 'validation-failure';
  return null;
}

/** The reply text recorded for a session refused on TLS: says what failed and that nothing was sent in clear. */
export function tlsFailureReply(type: TlsFailureType, label: string, detail: string, requiredBy?: string): string {
  const why =
    type === 'starttls-not-supported'
      ? `${label} does not offer STARTTLS`
      : type === 'validation-failure'
        ? `TLS with ${label} failed`
        : `the TLS certificate of ${label} was refused (${type})`;
  return `TLS required${requiredBy ? ` (${requiredBy})` : ''}: ${why}; the message was not sent (${detail.trim()})`;
}
