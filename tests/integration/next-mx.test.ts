/**
 * A preferred MX host that answers but defers every recipient (4xx to MAIL FROM, or to each RCPT TO) passes the
 * message to the next MX host in the same attempt, as Postfix does: a broken, full or greylisting primary must not
 * hold a verification code until it expires. A host that takes or refuses for good any recipient keeps the message;
 * its deferred recipients go to the next attempt. Until 2 Dec 2026 only a host that could not be reached (or greeted
 * with 4xx/5xx) passed the message on.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { startDnsServer, type DnsServer } from '../helpers/dns-server.js';
import { startReceiver, type Reply, type Receiver, type ScriptContext } from '../helpers/receiver.js';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { closeAll } from '../helpers/close-all.js';
import { primaryAndBackupMx } from '../helpers/mx-zones.js';

let dns: DnsServer;
let mx1: Receiver;
let mx2: Receiver;
let t: TestGateway;
/** What the preferred MX answers; each test sets it. */
let primary: (ctx: ScriptContext) => Reply | undefined = () => undefined;
/** What the second MX answers (accepts unless a test says otherwise). */
let secondary: (ctx: ScriptContext) => Reply | undefined = () => undefined;

const events = (status: { events: Array<{ type: string; host?: string; reply?: string }> }): string[] =>
  status.events.filter((e) => e.type === 'attempt').map((e) => `${e.host?.split('[')[0]} ${e.reply?.slice(0, 3)}`);

beforeAll(async () => {
  mx2 = await startReceiver({ tls: false, hostname: 'mx2.busy.test', script: (ctx) => secondary(ctx) });
  mx1 = await startReceiver({ tls: false, host: '127.0.0.2', port: mx2.port, hostname: 'mx1.busy.test', script: (ctx) => primary(ctx) });
  dns = await startDnsServer({
    ...primaryAndBackupMx('busy.test'),
    // The same preferred host, then one where nothing listens (connection refused).
    'half.test': {
      MX: [
        { exchange: 'mx1.busy.test', priority: 10 },
        { exchange: 'gone.half.test', priority: 20 },
      ],
    },
    'gone.half.test': { A: ['127.0.0.3'] },
    // Three hosts: the third (the second's server again) must not be tried after two sessions that deferred.
    'three.test': {
      MX: [
        { exchange: 'mx1.busy.test', priority: 10 },
        { exchange: 'mx2.busy.test', priority: 20 },
        { exchange: 'mx3.three.test', priority: 30 },
      ],
    },
    'mx3.three.test': { A: ['127.0.0.1'] },
  });
  t = await startTestGateway({ dns, overrides: { delivery: { mxPort: mx2.port, mtaSts: { enabled: false } } } });
});

afterAll(() => closeAll(t, mx1, mx2, dns));

beforeEach(() => {
  mx1.messages.length = 0;
  mx2.messages.length = 0;
});

async function send(to: string[]): Promise<string> {
  const res = await t.submit({ from: 'noreply@example.test', to, subject: 'Your code', text: 'Code: 123456', priority: 'verification' });
  expect(res.status).toBe(202);
  return res.body.id;
}

it('451 to MAIL FROM at the preferred MX: the next MX gets the message in the same attempt', async () => {
  primary = (ctx) => (ctx.stage === 'mail' ? { code: 451, message: '4.3.2 System not accepting network messages' } : undefined);
  const id = await send(['applicant@busy.test']);
  const final = await t.waitForStatus(id, (s) => s.status !== 'queued' && s.status !== 'deferred', 15_000);
  expect(final.status).toBe('delivered');
  expect(events(final)).toEqual(['mx1.busy.test 451', 'mx2.busy.test 250']);
  expect(mx1.messages).toEqual([]);
  expect(mx2.messages.map((m) => m.rcptTo)).toEqual([['applicant@busy.test']]);
});

it('450 to every RCPT TO (greylisting) at the preferred MX: the next MX gets every recipient', async () => {
  primary = (ctx) => (ctx.stage === 'rcpt' ? { code: 450, message: '4.7.1 Greylisted, try again later' } : undefined);
  const id = await send(['ann@busy.test', 'bob@busy.test']);
  const final = await t.waitForStatus(id, (s) => s.status !== 'queued' && s.status !== 'deferred', 15_000);
  expect(final.status).toBe('delivered');
  expect(events(final)).toEqual(['mx1.busy.test 450', 'mx2.busy.test 250']);
  expect(mx2.messages.map((m) => m.rcptTo)).toEqual([['ann@busy.test', 'bob@busy.test']]);
});

it('a host that takes one recipient keeps the message; the deferred one goes to the next attempt, then the next MX', async () => {
  primary = (ctx) => (ctx.stage === 'rcpt' && ctx.address === 'dan@busy.test' ? { code: 452, message: '4.2.2 Mailbox full' } : undefined);
  const id = await send(['cy@busy.test', 'dan@busy.test']);
  const final = await t.waitForStatus(id, (s) => s.status !== 'queued' && s.status !== 'deferred', 15_000);
  expect(final.status).toBe('delivered');
  // First attempt: mx1 took cy and deferred dan (not passed on); the retry (1 s in tests) took dan to mx1, then mx2.
  expect(events(final)).toEqual(['mx1.busy.test 250', 'mx1.busy.test 452', 'mx2.busy.test 250']);
  expect(mx1.messages.map((m) => m.rcptTo)).toEqual([['cy@busy.test']]);
  expect(mx2.messages.map((m) => m.rcptTo)).toEqual([['dan@busy.test']]);
});

it('both MX hosts defer: the attempt ends deferred with the last host reply; the retry goes to both again', async () => {
  primary = (ctx) => (ctx.stage === 'mail' ? { code: 451, message: '4.3.2 System not accepting network messages' } : undefined);
  // The second MX greylists eve on her first RCPT TO (the receiver counts attempts per address), then takes her.
  secondary = (ctx) => (ctx.stage === 'rcpt' && ctx.attempt === 1 ? { code: 450, message: '4.7.1 Greylisted, try again later' } : undefined);
  const id = await send(['eve@busy.test']);
  const deferred = await t.waitForStatus(id, (s) => s.status === 'deferred', 15_000);
  expect(deferred.recipients['eve@busy.test'].reply).toMatch(/^450 4\.7\.1 Greylisted/);
  const final = await t.waitForStatus(id, (s) => s.status !== 'queued' && s.status !== 'deferred', 15_000);
  expect(final.status).toBe('delivered');
  expect(events(final)).toEqual(['mx1.busy.test 451', 'mx2.busy.test 450', 'mx1.busy.test 451', 'mx2.busy.test 250']);
  expect(mx2.messages.map((m) => m.rcptTo)).toEqual([['eve@busy.test']]);
});

it('the preferred MX defers and the next cannot be reached: the attempt reports the receiver reply, not the refused connection', async () => {
  primary = (ctx) => (ctx.stage === 'mail' ? { code: 451, message: '4.3.2 System not accepting network messages' } : undefined);
  const id = await send(['fay@half.test']);
  const deferred = await t.waitForStatus(id, (s) => s.status === 'deferred', 15_000);
  expect(events(deferred).map((e) => e.split(' ')[0])).toEqual(['mx1.busy.test', 'gone.half.test']);
  expect(deferred.recipients['fay@half.test'].reply).toMatch(/^451 4\.3\.2 System not accepting/);
  primary = () => undefined;
  const final = await t.waitForStatus(id, (s) => s.status !== 'queued' && s.status !== 'deferred', 15_000);
  expect(final.status).toBe('delivered');
  expect(mx1.messages.map((m) => m.rcptTo)).toEqual([['fay@half.test']]);
});

it('uses at most two SMTP sessions per attempt (as Postfix): a third MX host is not tried after two deferred', async () => {
  primary = (ctx) => (ctx.stage === 'mail' ? { code: 421, message: '4.7.0 Try again later' } : undefined);
  secondary = (ctx) => (ctx.stage === 'rcpt' && ctx.attempt === 1 ? { code: 450, message: '4.7.1 Greylisted, try again later' } : undefined);
  const id = await send(['gus@three.test']);
  const final = await t.waitForStatus(id, (s) => s.status !== 'queued' && s.status !== 'deferred', 15_000);
  expect(final.status).toBe('delivered');
  // First attempt: mx1 and mx2 deferred, mx3 not tried; the retry: mx1 deferred again, mx2 took it.
  expect(events(final)).toEqual(['mx1.busy.test 421', 'mx2.busy.test 450', 'mx1.busy.test 421', 'mx2.busy.test 250']);
});
