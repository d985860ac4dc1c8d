import type { SMTPServerSession } from 'smtp-server';
import type { Credential } from '../intake/credentials.js';
import type { IntakeService } from '../intake/intake-service.js';
import type { KurirError } from '../lib/errors.js';
import { maskAddresses, type Logger } from '../lib/logger.js';
import { smtpError, type SmtpReplyError } from './replies.js';

/** Refusals on one connection logged at info; past this many, at debug (one warn line says so). */
const REFUSALS_LOGGED_PER_SESSION = 10;

/**
 * Returns `refuse(session, stage, err)`, which counts a refusal, logs it and hands smtp-server its reply. Refusals are
 * logged at info with the registry code and the reply (recipient mailboxes masked, never a password); a blocked
 * AUTH at warn; the REFUSALS_LOGGED_PER_SESSION-th refusal on one connection at warn, and the ones after it at
 * debug, so a client hammering bad commands cannot flood the log. Unexpected errors are logged loudly.
 */
export function createSmtpRefuser(
  intake: Pick<IntakeService, 'countRefusal'>,
  log: Logger,
): (session: SMTPServerSession, stage: string, err: unknown) => SmtpReplyError {
  const refusalsOn = new WeakMap<SMTPServerSession, number>();
  return (session, stage, err) => {
    const reply = smtpError(err);
    const kerr = reply.cause as KurirError;
    intake.countRefusal('smtp', kerr);
    const account = (session.user as Credential | undefined)?.name;
    const fields = {
      sid: session.id,
      remote: session.remoteAddress,
      ...(account ? { account } : {}),
      stage,
      code: kerr.code,
      reply: maskAddresses(`${reply.responseCode} ${reply.message}`),
    };
    const count = (refusalsOn.get(session) ?? 0) + 1;
    refusalsOn.set(session, count);
    if (kerr.code === 'INTERNAL') log.error({ ...fields, err: kerr.cause ?? kerr }, 'smtp: unexpected error');
    else if (kerr.code === 'UNAVAILABLE') log.warn({ ...fields, err: (kerr.cause as Error | undefined)?.message }, 'smtp: dependency unavailable');
    else if (count === REFUSALS_LOGGED_PER_SESSION)
      log.warn({ ...fields, refusals: count }, 'smtp: refused (repeatedly on this connection; further refusals on it are logged at debug)');
    else if (count > REFUSALS_LOGGED_PER_SESSION) log.debug(fields, 'smtp: refused');
    else if (kerr.code === 'AUTH_BLOCKED') log.warn(fields, 'smtp: refused');
    else log.info(fields, 'smtp: refused');
    return reply;
  };
}
