/**
 * The suppression check at the end of an SMTP DATA whose RCPT TO check is older than SUPPRESSION_CHECK_FRESH_MS.
 * A recipient suppressed since its RCPT TO was answered 250 can no longer be refused on its own (DATA has one reply
 * for the whole message), so it is left out: the message goes to the other recipients, and the left-out one is
 * handed to IntakeService.accept (Submission.leftOut), which stores it with the message (searchable by its address)
 * and as a `suppressed` event with source `intake` (which the account's webhook receives) in the same write as the
 * message. Only when every recipient is suppressed is the message refused (550 5.1.1). Until 1 Dec 2026 one such
 * recipient made the whole message 550 5.1.1, and the client took the valid recipients as refused too; and until
 * the same day the event was a second write after the 250, lost (only logged) when it failed, and a search by the
 * left-out address did not find the message.
 */
import type { SMTPServerSession } from 'smtp-server';
import type { IntakeService } from '../intake/intake-service.js';
import { SUPPRESSION_CHECK_FRESH_MS } from '../intake/submission.js';
import { normalizeAddress } from '../lib/address.js';
import type { Clock } from '../lib/clock.js';
import { KurirError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';

/** A recipient left out of a message because it was found suppressed at the end of DATA. */
export interface LeftOut {
  address: string;
  reason: string;
}

/** The recipients to submit, when their suppression check began, and who was left out. */
export interface CheckedRecipients {
  recipients: string[];
  /** For Submission.suppressionCheckedAt: the intake does not read the list again while this is fresh. */
  checkedAt: number | undefined;
  leftOut: LeftOut[];
}

export interface LateSuppressionDeps {
  intake: Pick<IntakeService, 'checkSuppressed'>;
  clock: Clock;
  log: Logger;
}

/** The SMTP intake's end-of-DATA suppression check and the record of the recipients it left out. */
export interface LateSuppression {
  /** Notes when a RCPT TO of the transaction (`envelope`) checked the suppression list; the oldest check counts. */
  checked(envelope: SMTPServerSession['envelope'], at: number): void;
  /**
   * The transaction's recipients (normalized), checked again when its RCPT TO check is stale, suppressed ones left out.
   * @throws KurirError SUPPRESSED when every recipient is suppressed; UNAVAILABLE when Redis does not answer
   */
  check(envelope: SMTPServerSession['envelope']): Promise<CheckedRecipients>;
  /** Logs the recipients left out of the accepted message `id` (IntakeService.accept has recorded them). */
  logLeftOut(id: string, leftOut: LeftOut[], sid: string): void;
}

/** The addresses and reasons of a SUPPRESSED refusal (IntakeService.checkSuppressed), or null for any other error. */
function suppressedIn(err: unknown): LeftOut[] | null {
  if (!(err instanceof KurirError) || err.code !== 'SUPPRESSED') return null;
  const hits = (err.details as { suppressed?: LeftOut[] } | undefined)?.suppressed;
  return hits?.length ? hits.map((h) => ({ address: h.address, reason: h.reason })) : null;
}

/** Creates the end-of-DATA suppression check of the SMTP intake. */
export function createLateSuppression(deps: LateSuppressionDeps): LateSuppression {
  const { intake, clock, log } = deps;
  // A new MAIL FROM or RSET makes a new envelope, so a transaction's check time goes with its envelope object.
  const checkedAt = new WeakMap<object, number>();
  return {
    checked(envelope, at) {
      if (!checkedAt.has(envelope)) checkedAt.set(envelope, at);
    },

    async check(envelope) {
      const recipients = envelope.rcptTo.map((r) => normalizeAddress(r.address, 'RCPT TO'));
      const last = checkedAt.get(envelope);
      if (last !== undefined && clock.now() - last <= SUPPRESSION_CHECK_FRESH_MS) return { recipients, checkedAt: last, leftOut: [] };
      const at = clock.now();
      try {
        await intake.checkSuppressed(recipients);
        return { recipients, checkedAt: at, leftOut: [] };
      } catch (err) {
        const hits = suppressedIn(err);
        if (!hits) throw err;
        // The list matches addresses case-insensitively; the timeline names them as the client gave them.
        const reasons = new Map(hits.map((h) => [h.address.toLowerCase(), h.reason]));
        const rest: string[] = [];
        const leftOut: LeftOut[] = [];
        for (const address of recipients) {
          const reason = reasons.get(address.toLowerCase());
          if (reason === undefined) rest.push(address);
          else leftOut.push({ address, reason });
        }
        if (!rest.length) throw err;
        return { recipients: rest, checkedAt: at, leftOut };
      }
    },

    logLeftOut(id, leftOut, sid) {
      if (!leftOut.length) return;
      log.info({ sid, id, leftOut: leftOut.length, reasons: [...new Set(leftOut.map((l) => l.reason))] }, 'smtp: recipients suppressed since RCPT TO left out');
    },
  };
}
