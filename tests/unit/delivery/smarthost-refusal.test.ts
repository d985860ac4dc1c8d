/**
 * deferSmarthostRefusals over the default rules (config/bounce-rules.yaml): which permanent refusals by a smarthost
 * are Kurir's configuration (deferred) and which stay the recipient's (bounced), and that the deferred reply still
 * classifies as the smarthost's own words do.
 */
import { describe, expect, it } from 'vitest';
import type { RecipientOutcome } from '../../../src/delivery/smtp-types.js';
import { deferSmarthostRefusals } from '../../../src/delivery/stages/smarthost-refusal.js';
import { classifyReply, loadBounceRules, parseReply } from '../../../src/feedback/classify/rules.js';

const rules = loadBounceRules('config/bounce-rules.yaml');
const SMARTHOST = 'smtp.relay.test:587';

const perm = (reply: string, refusedAt?: RecipientOutcome['refusedAt']): RecipientOutcome => ({
  address: 'amy@dest.test',
  kind: 'perm',
  code: parseReply(reply).code,
  reply,
  ...(refusedAt ? { refusedAt } : {}),
});

/** The smarthost refusing Kurir itself, at RCPT TO or after the body: deferred. */
const deferred = [
  '554 5.7.1 <amy@dest.test>: Relay access denied',
  '553 5.7.1 <b+01abc.1@bounce.example.test>: Sender address rejected: not owned by user kurir',
  '530 5.7.0 Authentication required',
  '535 5.7.8 Error: authentication failed: UGFzc3dvcmQ6',
  '550 5.7.1 Client host rejected: Access denied',
  '550 5.7.60 SMTP; Client does not have permissions to send as this sender',
  '554 Message rejected: Email address is not verified. The following identities failed the check in region EU-WEST-1: noreply@example.test',
  '550 5.7.1 <b+01abc.1@bounce.example.test>: Sender address rejected: not authorized by SPF',
];

/** About the recipient, the message's content or its authentication at the destination: still bounced. */
const bounced = [
  '550 5.1.1 <amy@dest.test>: Recipient address rejected: User unknown in relay recipient table',
  '550 5.2.1 The email account that you tried to reach is disabled',
  '554 5.7.1 Message rejected as spam by Content Filtering',
  "550 5.7.26 Unauthenticated email from example.test is not accepted due to domain's DMARC policy",
  '554 5.7.1 <amy@dest.test>: Recipient address rejected: Access denied',
  '552 5.3.4 Message size exceeds fixed limit',
];

describe('deferSmarthostRefusals', () => {
  it.each(deferred)('defers %s, saying the smarthost refused Kurir, and it classifies as before', (reply) => {
    const [o] = deferSmarthostRefusals(rules, [perm(reply)], SMARTHOST);
    expect(o.kind).toBe('temp');
    expect(o.reply).toBe(
      `${reply} [smarthost ${SMARTHOST} refused Kurir itself, not the recipient: check delivery.smarthost and Kurir's account there; retried until the message expires]`,
    );
    const before = classifyReply(rules, { code: o.code, text: reply });
    const after = classifyReply(rules, { code: o.code, text: o.reply });
    expect({ category: after.category, cause: after.cause, senderSide: after.senderSide }).toEqual({
      category: before.category,
      cause: before.cause,
      senderSide: true,
    });
  });

  it.each(bounced)('keeps %s permanent', (reply) => {
    expect(deferSmarthostRefusals(rules, [perm(reply)], SMARTHOST)).toEqual([perm(reply)]);
  });

  it('defers any 5xx to MAIL FROM or to the session (the smarthost refused Kurir before any recipient was named)', () => {
    for (const refusedAt of ['mail', 'session'] as const) {
      for (const reply of [
        '552 5.3.4 Message size exceeds fixed limit',
        '554 5.7.1 Message rejected as spam',
        '521 5.3.2 smtp.relay.test does not accept mail',
      ]) {
        expect(deferSmarthostRefusals(rules, [perm(reply, refusedAt)], SMARTHOST)[0]).toMatchObject({ kind: 'temp', refusedAt });
      }
    }
  });

  it('leaves deliveries, deferrals and expiries as they are', () => {
    const others = [
      { address: 'a@dest.test', kind: 'delivered' as const, code: 250, reply: '250 2.0.0 Ok: queued' },
      { address: 'b@dest.test', kind: 'temp' as const, code: 454, reply: '454 4.7.1 <b@dest.test>: Relay access denied', refusedAt: 'mail' as const },
      { address: 'c@dest.test', kind: 'expired' as const, code: null, reply: 'message expired before delivery' },
    ];
    expect(deferSmarthostRefusals(rules, others, SMARTHOST)).toEqual(others);
  });
});
