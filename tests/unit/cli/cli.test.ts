import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, UsageError } from '../../../src/cli/main.js';
import { loadPrivateKey } from '../../../src/dkim/keys.js';
import { newMessageId } from '../../../src/lib/ids.js';
import { createKeys } from '../../../src/store/keys.js';
import { MessageStore } from '../../../src/store/message-store.js';
import { PlacementStore } from '../../../src/store/placement-store.js';
import { dropPrefix } from '../../helpers/test-gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-cli-'));
const prefix = `kurir-test-cli-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(() => {
  process.env.KURIR_REDIS__PREFIX = prefix;
});
afterAll(async () => {
  delete process.env.KURIR_REDIS__PREFIX;
  await dropPrefix(prefix);
});

describe('kurir CLI', () => {
  it('validates the config', async () => {
    const out = await runCli(['config', 'check']);
    expect(out).toMatch(/^configuration is valid: roles intake, api, worker(, feedback)?(, placement)?; 1 sender domain/);
    expect(out).toMatch(/; \d+ bounce rules$/);
  });

  it('generates a DKIM key file (0600) and prints its DNS record; never overwrites', async () => {
    const out = join(dir, 'k.pem');
    const text = await runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', out]);
    const key = loadPrivateKey(readFileSync(out, 'utf8'));
    expect(key.algorithm).toBe('ed25519');
    expect(text).toContain(`v=DKIM1; k=ed25519; p=${key.publicKeyBase64}`);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    await expect(runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', out])).rejects.toThrow(/--out: .* already exists/);
  });

  it('asks for placement probes through Redis, naming an unknown seed', async () => {
    await expect(runCli(['placement', 'probe'])).rejects.toThrow(/no seed mailboxes are configured/);
    const file = join(dir, 'placement.yaml');
    writeFileSync(
      file,
      [
        'domains: [{ name: example.test }]',
        'placement:',
        '  seeds:',
        '    - { name: gmail-1, provider: gmail, address: seed@gmail.test, imap: { host: 127.0.0.1, port: 1143, tls: false }, auth: { passwordEnv: SEED_PASS } }',
      ].join('\n'),
    );
    await expect(runCli(['placement', 'probe', '--seed', 'nope', '--config', file])).rejects.toThrow(/--seed: unknown seed "nope" \(configured: gmail-1\)/);
    expect(await runCli(['placement', 'probe', '--config', file])).toMatch(/^probe requested for gmail-1/);
    const redis = new Redis('redis://127.0.0.1:6379');
    const store = new PlacementStore(redis, createKeys(prefix), 10);
    expect(await store.takeRequest('gmail-1')).toBe(true);
    expect(await store.takeRequest('gmail-1')).toBe(false);
    await redis.quit();
  });

  it('names the option at fault', async () => {
    await expect(runCli(['dkim', 'generate', '--algorithm', 'dsa', '--out', 'x'])).rejects.toThrow(/--algorithm: must be rsa or ed25519/);
    await expect(runCli(['dkim', 'generate', '--algorithm', 'rsa'])).rejects.toThrow(/--out: /);
    await expect(runCli(['--nope'])).rejects.toThrow(UsageError);
    await expect(runCli(['frobnicate'])).rejects.toThrow(/unknown command: frobnicate/);
  });

  it('adds, checks and removes a suppression in Redis', async () => {
    expect(await runCli(['suppression', 'add', 'Gone@Example.org', '--reason', 'hard-bounce'])).toBe('suppressed Gone@example.org');
    const hit = JSON.parse(await runCli(['suppression', 'check', 'gone@example.org']));
    expect(hit).toMatchObject({ address: 'Gone@example.org', reason: 'hard-bounce', source: 'cli' });
    expect(hit.at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    expect(await runCli(['suppression', 'remove', 'gone@example.org'])).toBe('removed gone@example.org');
    expect(await runCli(['suppression', 'check', 'gone@example.org'])).toBe('gone@example.org is not suppressed');
  });

  it('classifies one reply with the bounce rules (bounce classify)', async () => {
    expect(await runCli(['bounce', 'classify', '550 5.1.1 <x@y>: Recipient address rejected: User unknown'])).toBe(
      [
        'reply:      code 550, enhanced 5.1.1',
        'category:   invalid-recipient',
        'type:       hard',
        'senderSide: false',
        'rule:       invalid-recipient-text (config/bounce-rules.yaml)',
      ].join('\n'),
    );
    const policy = await runCli([
      'bounce',
      'classify',
      '550-5.7.26',
      'Unauthenticated',
      'email',
      'is',
      'not',
      'accepted',
      '--rules',
      'config/bounce-rules.yaml',
    ]);
    expect(policy).toMatch(/category: {3}auth-failure\ntype: {7}hard\ncause: {6}unauthenticated\nsenderSide: true\nrule: {7}auth-unauthenticated-gmail/);
    expect(await runCli(['bounce', 'classify', 'connect ECONNREFUSED 127.0.0.2:25'])).toMatch(/code none, enhanced none\ncategory: {3}network\ntype: {7}soft/);
    await expect(runCli(['bounce', 'classify'])).rejects.toThrow(UsageError);
    await expect(runCli(['bounce', 'classify', '550 x', '--rules', join(dir, 'none.yaml')])).rejects.toThrow(
      /none\.yaml: cannot read bounce rules: file not found/,
    );
  });

  it('prints DKIM records as zone-file strings of at most 255 bytes that join to the record', async () => {
    const keyFile = join(dir, 'dns-rsa.pem');
    await runCli(['dkim', 'generate', '--algorithm', 'rsa', '--out', keyFile]);
    const cfg = join(dir, 'dns.yaml');
    writeFileSync(cfg, `domains:\n  - name: mail.test\n    dkim:\n      - { selector: s1, algorithm: rsa, privateKeyFile: ${keyFile} }\n`);
    const out = await runCli(['domains', 'dns', '--config', cfg]);
    const line = out.split('\n').find((l) => l.startsWith('s1._domainkey.mail.test.'))!;
    const strings = [...line.matchAll(/"([^"]*)"/g)].map((m) => m[1]);
    expect(strings.length).toBe(2);
    expect(strings.every((x) => x.length <= 255)).toBe(true);
    const key = loadPrivateKey(readFileSync(keyFile, 'utf8'));
    expect(strings.join('')).toBe(`v=DKIM1; k=rsa; p=${key.publicKeyBase64}`);
  });

  it("domains dns prints the bounce domain's MX (this gateway's host name) next to its SPF", async () => {
    const cfg = join(dir, 'bounce.yaml');
    writeFileSync(cfg, 'hostname: mx1.mail.test\nbounce: { domain: bounce.mail.test }\ndomains: [{ name: mail.test, dkim: [] }]\n');
    const out = (await runCli(['domains', 'dns', '--config', cfg])).split('\n');
    expect(out).toContain('bounce.mail.test. IN MX 10 mx1.mail.test.');
    expect(out).toContain('bounce.mail.test. IN TXT "v=spf1 ip4:<your sending IP> -all"');
  });

  it('message show prints times in ISO 8601, as the HTTP API does', async () => {
    const redis = new Redis('redis://127.0.0.1:6379');
    const createdAt = Date.parse('2025-05-01T10:00:00.000Z');
    const id = newMessageId(createdAt);
    const store = new MessageStore(redis, createKeys(prefix), 3600);
    const record = {
      id,
      owner: 'booking-dev',
      interface: 'http' as const,
      mailFrom: 'noreply@example.test',
      fromDomain: 'example.test',
      recipients: ['a@dest.test'],
      priority: 'verification' as const,
      createdAt,
      expiresAt: createdAt + 1_800_000,
      size: 10,
      messageId: `<${id}@example.test>`,
      dkim: [],
    };
    expect(await store.create(record, Buffer.from('x'))).toBe(true);
    await redis.quit();
    const shown = JSON.parse(await runCli(['message', 'show', id]));
    expect(shown).toMatchObject({ id, status: 'queued', createdAt: '2025-05-01T10:00:00.000Z', expiresAt: '2025-05-01T10:30:00.000Z' });
    expect(shown.events).toEqual([{ type: 'queued', at: '2025-05-01T10:00:00.000Z' }]);
    expect(shown.recipients['a@dest.test']).toMatchObject({ status: 'queued', updatedAt: '2025-05-01T10:00:00.000Z' });
    await expect(runCli(['message', 'show', newMessageId()])).rejects.toThrow(/not found/);
  });

  it("resolves files named on the command line against the caller's directory", async () => {
    const out = await runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', 'rel/key.pem'], { cwd: dir });
    expect(out).toContain(`wrote ${join(dir, 'rel/key.pem')}`);
    expect(loadPrivateKey(readFileSync(join(dir, 'rel/key.pem'), 'utf8')).algorithm).toBe('ed25519');
    writeFileSync(join(dir, 'rel/c.yaml'), 'domains: [{ name: rel.test, dkim: [] }]\n');
    expect(await runCli(['domains', 'dns', '--config', 'rel/c.yaml'], { cwd: dir })).toContain('; rel.test');
  });
});
