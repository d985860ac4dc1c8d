/**
 * The MAIL FROM and RCPT TO parameters Kurir's SMTP intake accepts: those of the extensions its EHLO offers, and no
 * others. smtp-server parses every `KEY=value` after the path into `args` and hands on the ones it does not know
 * (and the DSN, SMTPUTF8 and REQUIRETLS ones even while Kurir hides those extensions), so without this check
 * `MAIL FROM:<a@b> FOO=bar` or `RCPT TO:<x@y> NOTIFY=NEVER` were answered 250 and the parameter silently ignored: a
 * client asking for DSN or REQUIRETLS believed it had it. RFC 5321 §4.1.1.11 and §4.5.3: a parameter the server
 * does not recognise or does not offer is answered `555 5.5.4`.
 */
import { KurirError } from '../lib/errors.js';

/**
 * MAIL FROM parameters of the extensions Kurir's EHLO offers: SIZE (RFC 1870), BODY (8BITMIME, RFC 6152) and AUTH
 * (RFC 4954 §5, the AUTH extension's own parameter). SMTPUTF8, DSN (RET, ENVID) and REQUIRETLS are not offered
 * (hideSMTPUTF8, hideDSN, hideREQUIRETLS in ./intake-server.ts).
 */
export const MAIL_PARAMETERS: ReadonlySet<string> = new Set(['SIZE', 'BODY', 'AUTH']);

/** RCPT TO parameters Kurir accepts: none (NOTIFY and ORCPT belong to DSN, which is not offered). */
export const RCPT_PARAMETERS: ReadonlySet<string> = new Set();

/**
 * Throws UNSUPPORTED_PARAMETER (555 5.5.4) naming the first parameter of `args` (smtp-server's upper-cased
 * `address.args`, or false when there are none) that `command` does not accept.
 */
export function assertParameters(command: 'MAIL FROM' | 'RCPT TO', args: Record<string, unknown> | false | undefined): void {
  if (!args) return;
  const accepted = command === 'MAIL FROM' ? MAIL_PARAMETERS : RCPT_PARAMETERS;
  const unknown = Object.keys(args).find((key) => !accepted.has(key));
  if (unknown === undefined) return;
  const offered = accepted.size ? `this server accepts ${[...accepted].join(', ')}` : 'this server accepts none';
  throw new KurirError('UNSUPPORTED_PARAMETER', `${command}: parameter ${unknown} is not supported (${offered})`, {
    field: command === 'MAIL FROM' ? 'mailFrom' : 'to',
  });
}
