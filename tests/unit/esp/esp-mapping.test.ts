/**
 * How SES and Mailgun notifications map onto Kurir's categories (config/bounce-rules.yaml), hard/soft and
 * sender-side, and Mailgun's signature check. Table tests, no I/O besides reading the rules file.
 */
import { describe, expect, it } from 'vitest';
import { checkMailgunSignature, mailgunSignature, parseMailgunEvent } from '../../../src/esp/mailgun.js';
import { classifySesRecipient, parseSesNotification } from '../../../src/esp/ses.js';
import { loadBounceRules, rulesClassifier } from '../../../src/feedback/classify/rules.js';
import { mailgunComplained, mailgunFailed, sesBounce, sesComplaint } from '../../helpers/esp.js';

const classify = rulesClassifier(loadBounceRules());

describe('SES bounce classification', () => {
  const cases: Array<
    [type: string, subType: string, r: { status?: string; diagnosticCode?: string }, category: string, bounceType: 'hard' | 'soft', senderSide: boolean]
  > = [
    ['Permanent', 'General', { status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 user unknown' }, 'invalid-recipient', 'hard', false],
    ['Permanent', 'General', {}, 'invalid-recipient', 'hard', false],
    ['Permanent', 'NoEmail', { status: '5.0.0' }, 'invalid-recipient', 'hard', false],
    [
      'Permanent',
      'Suppressed',
      { diagnosticCode: 'Amazon SES has suppressed sending to this address because it has a recent history of bouncing as an invalid address.' },
      'invalid-recipient',
      'hard',
      false,
    ],
    ['Permanent', 'OnAccountSuppressionList', {}, 'invalid-recipient', 'hard', false],
    [
      'Permanent',
      'General',
      { status: '5.7.26', diagnosticCode: 'smtp; 550-5.7.26 This mail is unauthenticated, which poses a security risk to the sender and Gmail users' },
      'auth-failure',
      'hard',
      true,
    ],
    ['Permanent', 'General', { status: '5.4.4', diagnosticCode: 'smtp; 550 5.4.4 Unable to route: no mail hosts for domain' }, 'bad-domain', 'hard', false],
    ['Transient', 'MailboxFull', { status: '5.2.2', diagnosticCode: 'smtp; 552 5.2.2 Mailbox full' }, 'mailbox-full', 'soft', false],
    ['Transient', 'MailboxFull', {}, 'mailbox-full', 'soft', false],
    ['Transient', 'General', {}, 'other', 'soft', false],
    ['Transient', 'MessageTooLarge', {}, 'protocol', 'soft', true],
    ['Transient', 'ContentRejected', {}, 'spam-block', 'soft', true],
    ['Transient', 'AttachmentRejected', {}, 'spam-block', 'soft', true],
    ['Undetermined', 'Undetermined', {}, 'other', 'soft', false],
  ];
  it.each(cases)('%s/%s %j → %s %s', (type, subType, r, category, bounceType, senderSide) => {
    const { classification } = classifySesRecipient(classify, type, subType, r);
    expect(classification).toMatchObject({ category, type: bounceType, senderSide });
  });

  it('keeps the diagnostic as the reply and the valid status only', () => {
    expect(classifySesRecipient(classify, 'Permanent', 'General', { status: '5.1.1', diagnosticCode: 'smtp; 550 5.1.1 nope' })).toMatchObject({
      reply: 'smtp; 550 5.1.1 nope',
      status: '5.1.1',
    });
    const bare = classifySesRecipient(classify, 'Permanent', 'General', { status: 'junk' });
    expect(bare.reply).toBe('SES Permanent bounce (General)');
    expect(bare).not.toHaveProperty('status');
  });
});

describe('SES notification parsing', () => {
  const mail = { source: 'b+abc.def@bounce.example.test', messageId: 'Abc@Example.Test', to: 'x@dest.test' };
  it('maps a bounce, a complaint, and skips what reports no failure', () => {
    const bounce = parseSesNotification(JSON.stringify(sesBounce(mail, { type: 'Permanent', subType: 'General', recipient: '"X" <x@dest.test>' })), classify);
    expect(bounce).toMatchObject({
      report: {
        provider: 'ses',
        kind: 'bounce',
        original: { verpCandidates: [mail.source], messageId: 'abc@example.test' },
        failures: [{ address: 'x@dest.test', action: 'failed' }],
      },
    });
    const complaint = parseSesNotification(JSON.stringify(sesComplaint(mail, 'x@dest.test')), classify);
    expect(complaint).toMatchObject({ report: { kind: 'complaint', recipients: ['x@dest.test'], feedbackType: 'abuse' } });
    expect(parseSesNotification(JSON.stringify(sesComplaint(mail, 'x@dest.test', 'not-spam')), classify)).toMatchObject({ ignored: 'not-a-complaint' });
    expect(parseSesNotification(JSON.stringify({ eventType: 'Delivery', mail: {} }), classify)).toMatchObject({ ignored: 'no-failure' });
    expect(parseSesNotification(JSON.stringify({ notificationType: 'Bounce', bounce: { bounceType: 'Permanent' } }), classify)).toMatchObject({
      ignored: 'truncated',
    });
    expect(parseSesNotification('{not json', classify)).toMatchObject({ ignored: 'not-a-report' });
    // Configuration-set event publishing names the type eventType.
    const event = {
      ...sesBounce(mail, { type: 'Transient', subType: 'MailboxFull', recipient: 'x@dest.test' }),
      notificationType: undefined,
      eventType: 'Bounce',
    };
    expect(parseSesNotification(JSON.stringify(event), classify)).toMatchObject({ report: { kind: 'bounce' } });
  });
});

describe('Mailgun', () => {
  const key = 'key-unit-test-000000000000';
  it('verifies HMAC-SHA256(timestamp + token) and the timestamp window', () => {
    const now = 1_700_000_000_000;
    const ts = String(now / 1000);
    const sig = { timestamp: ts, token: 'a'.repeat(50), signature: mailgunSignature(key, ts, 'a'.repeat(50)) };
    const opts = { signingKey: key, now, maxSkewSeconds: 300 };
    expect(checkMailgunSignature(sig, opts)).toEqual({ ok: true });
    expect(checkMailgunSignature({ ...sig, signature: sig.signature.toUpperCase() }, opts)).toEqual({ ok: true });
    expect(checkMailgunSignature({ ...sig, token: 'b'.repeat(50) }, opts)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(checkMailgunSignature({ ...sig, signature: 'zz' }, opts)).toMatchObject({ ok: false, reason: 'bad-signature' });
    expect(checkMailgunSignature(sig, { ...opts, now: now + 301_000 })).toMatchObject({ ok: false, reason: 'stale' });
    expect(checkMailgunSignature(sig, { ...opts, now: now - 301_000 })).toMatchObject({ ok: false, reason: 'stale' });
  });

  const base = { recipient: 'x@dest.test', sender: 'b+abc.def@bounce.example.test', messageId: 'm@example.test' };
  const cases: Array<[string, Parameters<typeof mailgunFailed>[0], Record<string, unknown>]> = [
    [
      'permanent 550 5.1.1',
      { ...base, severity: 'permanent' },
      { action: 'failed', classification: { category: 'invalid-recipient', type: 'hard' }, status: '5.1.1' },
    ],
    [
      'temporary 452 4.2.2',
      { ...base, severity: 'temporary', code: 452, message: '4.2.2 over quota' },
      { action: 'delayed', classification: { category: 'mailbox-full', type: 'soft' } },
    ],
    [
      'suppress-bounce 605',
      { ...base, severity: 'permanent', reason: 'suppress-bounce', code: 605, message: 'Not delivering to previously bounced address' },
      { action: 'failed', classification: { category: 'invalid-recipient', type: 'hard' } },
    ],
    [
      'permanent 5.7.1 DMARC',
      { ...base, severity: 'permanent', code: 550, message: '5.7.1 Message rejected due to DMARC policy' },
      { classification: { category: 'auth-failure', cause: 'dmarc', senderSide: true } },
    ],
  ];
  it.each(cases)('maps failed %s', (_name, input, failure) => {
    expect(parseMailgunEvent(mailgunFailed(input), classify)).toMatchObject({
      report: { provider: 'mailgun', kind: 'bounce', original: { verpCandidates: [base.sender], messageId: 'm@example.test' }, failures: [failure] },
    });
  });

  it('maps complaints (also suppress-complaint) and ignores other events', () => {
    expect(parseMailgunEvent(mailgunComplained(base), classify)).toMatchObject({ report: { kind: 'complaint', recipients: ['x@dest.test'] } });
    expect(parseMailgunEvent(mailgunFailed({ ...base, severity: 'permanent', reason: 'suppress-complaint', code: 607 }), classify)).toMatchObject({
      report: { kind: 'complaint' },
    });
    expect(parseMailgunEvent({ event: 'opened' }, classify)).toMatchObject({ ignored: 'no-failure' });
    expect(parseMailgunEvent({ event: 'failed' }, classify)).toMatchObject({ ignored: 'truncated' });
  });
});
