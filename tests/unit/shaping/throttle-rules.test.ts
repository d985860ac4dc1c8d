import { describe, expect, it } from 'vitest';
import { compileThrottleRules, loadThrottleRules, type ReplyOutcome } from '../../../src/shaping/throttle-rules.js';

const rules = loadThrottleRules('config/throttle-rules.yaml');
const temp = (code: number | null, reply: string): ReplyOutcome => ({ kind: 'temp', code, reply });

describe('config/throttle-rules.yaml', () => {
  it.each([
    [421, '421-4.7.28 [1.2.3.4] Our system has detected an unusual rate of unsolicited mail', 'rate-limited'],
    [451, '451 4.7.650 The mail server [1.2.3.4] has been temporarily rate limited due to IP reputation', 'microsoft-rate-limited'],
    [421, '421 4.3.2 Service not available, closing transmission channel', 'service-not-available'],
    [421, '421 Too many concurrent SMTP connections from this IP address', 'service-not-available'],
    [451, '451 4.7.1 Service unavailable - try again later', 'policy-deferral'],
    [421, '421 4.7.0 [TSS04] Messages from 1.2.3.4 temporarily deferred due to unexpected volume', 'service-not-available'],
    [450, '450 4.7.1 Client host rejected: too many messages, slow down', 'too-fast-wording'],
    [452, '452 Too many recipients received this hour', 'too-fast-wording'],
    [null, 'connect ECONNREFUSED 192.0.2.1:25', 'connection-refused-after-successes'],
  ])('%s %s → %s', (code, reply, rule) => {
    expect(rules.classify([temp(code, reply)])?.rule).toBe(rule);
  });

  it.each([
    [451, '451 4.7.1 Greylisted, try again later'],
    [450, '450-4.2.1 The user you are trying to contact is receiving mail at a rate that prevents additional messages'],
    [452, '452 4.2.2 Mailbox full'],
    [450, '450 4.1.1 Recipient address rejected: unverified address'],
    [null, 'Connection closed'],
    [null, 'DNS: dest.test: MX lookup failed (ETIMEOUT)'],
  ])('%s %s → no signal', (code, reply) => {
    expect(rules.classify([temp(code, reply)])).toBeNull();
  });

  it('only looks at temporary failures and reports afterSuccesses', () => {
    expect(rules.classify([{ kind: 'perm', code: 550, reply: '550 5.7.1 rate limit exceeded' }])).toBeNull();
    expect(rules.classify([{ kind: 'delivered', code: 250, reply: '250 try again later' }])).toBeNull();
    expect(rules.classify([temp(null, 'connect ECONNREFUSED 127.0.0.1:25')])).toEqual({ rule: 'connection-refused-after-successes', afterSuccesses: 20 });
    expect(rules.classify([temp(250, 'x'), temp(421, '421 go away')])?.afterSuccesses).toBe(0);
  });

  it('refuses invalid rules with the rule at fault', () => {
    expect(() => compileThrottleRules({ throttle: [{ name: 'x' }] }, 'f.yaml')).toThrow(/f\.yaml: throttle\.0: a rule needs/);
    expect(() => compileThrottleRules({ throttle: [{ name: 'x', match: '(' }] }, 'f.yaml')).toThrow(/throttle\.0\.match: invalid regular expression/);
    expect(() => compileThrottleRules({ throttle: [{ name: 'x', enhanced: '5.7.1' }] }, 'f.yaml')).toThrow(/throttle\.0\.enhanced/);
    expect(() => loadThrottleRules('config/nope.yaml')).toThrow(/cannot read \(ENOENT\)/);
  });
});
