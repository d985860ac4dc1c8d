/**
 * `npm run inbox`, the local inbox of the README's walk-through: a gateway whose delivery.smarthost points at it
 * delivers there without DNS, and the inbox prints the envelope, headers, DKIM signatures and text it got.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from '../helpers/test-gateway.js';
import { freePort } from '../helpers/ports.js';

let inbox: ChildProcess | null = null;
let t: TestGateway | null = null;

afterAll(async () => {
  await t?.close();
  inbox?.kill('SIGTERM');
});

async function waitFor(check: () => boolean, ms: number, what: () => string): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out; output so far:\n${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('receives a message delivered through delivery.smarthost and prints it', async () => {
  const port = await freePort();
  let out = '';
  inbox = spawn('npm', ['run', 'inbox', '--', '--port', String(port)], { cwd: resolve('.'), stdio: ['ignore', 'pipe', 'pipe'] });
  inbox.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  inbox.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(
    () => out.includes(`inbox: listening on 127.0.0.1:${port}`),
    20_000,
    () => out,
  );

  // No DNS server at all: with a smarthost, delivery never looks up an MX.
  t = await startTestGateway({ overrides: { delivery: { smarthost: { host: '127.0.0.1', port } } } });
  const res = await t.submit({
    from: 'Passport office <noreply@example.test>',
    to: ['applicant@example.org'],
    subject: 'Your verification code',
    text: 'Your code is 123456',
    priority: 'verification',
  });
  expect(res.status).toBe(202);
  const done = await t.waitForStatus(res.body.id, (s) => s.status === 'delivered', 20_000);
  expect(done.events.find((e: { type: string }) => e.type === 'delivered')).toMatchObject({
    host: `127.0.0.1:${port}`,
    reply: '250 2.0.0 Ok: stored as message 1',
  });

  await waitFor(
    () => out.includes('Your code is 123456'),
    5_000,
    () => out,
  );
  expect(out).toMatch(
    new RegExp(`inbox: message 1 from <b\\+${res.body.id}\\.[0-9a-f]+@bounce\\.example\\.test> to <applicant@example\\.org> \\(\\d+ bytes, TLS\\)`),
  );
  expect(out).toContain('  subject: Your verification code');
  expect(out).toContain('  dkim-signature: d=example.test s=kurir1 a=rsa-sha256');
  expect(out).toContain('  dkim-signature: d=example.test s=kurir1e a=ed25519-sha256');
}, 60_000);
