/**
 * Smarthost mode (`delivery.smarthost`): a permanent refusal by the smarthost of Kurir itself is Kurir's configuration
 * problem, not the recipient's. The smarthost refusing to relay for Kurir, refusing its envelope sender or account, or
 * wanting authentication (a rule with `refusesClient`, config/bounce-rules.yaml), or refusing the session or MAIL FROM
 * (before any recipient was named), would otherwise bounce every message, and the booking system would hear that each
 * one bounced. Such outcomes become temporary: deferred and retried on the normal schedule until the configuration is
 * fixed or the message expires, with a reply that says the smarthost refused Kurir. A refusal of one recipient that
 * the smarthost relays (550 5.1.1 user unknown) stays permanent.
 */
import { classifyReply, type BounceRules } from '../../feedback/classify/rules.js';
import type { Outcome } from './job.js';

/**
 * The attempt's outcomes with the smarthost's refusals of Kurir itself made temporary. `smarthost` names it in the
 * reply. The reply keeps the smarthost's own words first, so it classifies as before (category, cause).
 */
export function deferSmarthostRefusals(rules: BounceRules, outcomes: readonly Outcome[], smarthost: string): Outcome[] {
  return outcomes.map((o): Outcome => {
    if (o.kind !== 'perm') return o;
    const beforeRecipients = o.refusedAt !== undefined;
    if (!beforeRecipients) {
      const c = classifyReply(rules, { code: o.code, text: o.reply });
      if (!c.senderSide || !c.refusesClient) return o;
    }
    const reply = `${o.reply} [smarthost ${smarthost} refused Kurir itself, not the recipient: check delivery.smarthost and Kurir's account there; retried until the message expires]`;
    return { ...o, kind: 'temp', reply };
  });
}
