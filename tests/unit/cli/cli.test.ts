import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { auditRows } from '../../../src/cli/credential-commands.js';
import { LOCAL_COMMANDS } from '../../../src/cli/local-commands.js';
import { FAMILIES, runCli, UsageError } from '../../../src/cli/main.js';
import { loadPrivateKey } from '../../../src/dkim/keys.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-cli-'));

describe('kurir CLI', () => {
  it("audit list's ROWS cell: a read's count, + when more followed, an export that stopped short or only started; nothing for a change", () => {
    expect(auditRows({ rows: 50, nextPage: true })).toBe('50+');
    expect(auditRows({ rows: 3, nextPage: false })).toBe('3');
    expect(auditRows({ rows: 120, complete: true })).toBe('120');
    expect(auditRows({ rows: 7, complete: false })).toBe('7 (incomplete)');
    expect(auditRows({ export: 'started' })).toBe('started');
    expect([auditRows(undefined), auditRows({ name: 'desk', role: 'support' }), auditRows({ rows: '3' })]).toEqual(['', '', '']);
  });

  it('validates the config', async () => {
    const out = await runCli(['config', 'check']);
    expect(out).toMatch(/^configuration is valid: roles intake, api, worker(, feedback)?(, placement)?; 1 sender domain/);
    expect(out).toMatch(/; \d+ bounce rules$/);
  });

  it('config check refuses a delivery.ttl above delivery.maxTtlSeconds (exit 2: a configuration error)', async () => {
    const ctx = { cwd: process.cwd(), env: { KURIR_DELIVERY__MAX_TTL_SECONDS: '90' } };
    await expect(runCli(['config', 'check'], ctx)).rejects.toThrow(/delivery\.ttl\.normal = 86400: must not exceed delivery\.maxTtlSeconds \(90\)/);
  });

  it('generates a DKIM key file (0600) and prints its DNS record; never overwrites', async () => {
    const out = join(dir, 'k.pem');
    const text = await runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', out]);
    const key = loadPrivateKey(readFileSync(out, 'utf8'));
    expect(key.algorithm).toBe('ed25519');
    expect(text).toContain(`v=DKIM1; k=ed25519; p=${key.publicKeyBase64}`);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    await expect(runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', out])).rejects.toThrow(/--out: .* already exists/);
    // A directory it has to create is the owner's only (0700), as for keys generated at start-up.
    const nested = join(dir, 'new-keys', 'k.pem');
    await runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', nested]);
    expect(statSync(join(dir, 'new-keys')).mode & 0o777).toBe(0o700);
  });

  // Derived from the command tables: until 2 Dec 2026 this list was written out here (without domains), and the
  // domains summary in kurir --help and kurir domains --help, written by hand, left out `reports`.
  it('lists every command of every family in kurir --help and kurir FAMILY --help, each with its own --help', async () => {
    const top = await runCli(['--help']);
    for (const [family, f] of Object.entries(FAMILIES)) {
      const local = Object.keys(LOCAL_COMMANDS)
        .filter((name) => name.startsWith(`${family} `))
        .map((name) => name.split(' ')[1]);
      const commands = [...Object.keys(f.commands), ...local];
      const summary = top.split('\n').find((l) => l.startsWith(`  ${family} `));
      expect(summary?.slice(summary.lastIndexOf(': ') + 2).split(', '), `kurir --help, ${family}`).toEqual(commands);
      const help = await runCli([family, '--help']);
      expect(help.split('\n')[0].split(': ').at(-1)?.split(', '), `kurir ${family} --help`).toEqual(commands);
      expect(
        [...help.matchAll(new RegExp(`^  kurir ${family} (\\S+)`, 'gm'))].map((m) => m[1]),
        `kurir ${family} --help`,
      ).toEqual(commands);
      for (const c of commands) expect(await runCli([family, c, '--help'])).toMatch(new RegExp(`^Usage: kurir ${family} ${c}`));
    }
    expect(Object.keys(FAMILIES)).toContain('domains');
    // The local-only groups (config, dkim, bounce) are in kurir --help, command by command.
    for (const name of Object.keys(LOCAL_COMMANDS)) expect(top, name).toContain(`  ${name} `);
    expect(top).toMatch(/Exit codes: 0 ok, 1 .* 2 usage .*\s3 the gateway could not be reached, 4 the key was refused/s);
  });

  it('names the option at fault', async () => {
    await expect(runCli(['dkim', 'generate', '--algorithm', 'dsa', '--out', 'x'])).rejects.toThrow(/--algorithm: must be rsa or ed25519/);
    await expect(runCli(['dkim', 'generate', '--algorithm', 'rsa'])).rejects.toThrow(/--out: /);
    await expect(runCli(['--nope'])).rejects.toThrow(UsageError);
    await expect(runCli(['frobnicate'])).rejects.toThrow(/unknown command: frobnicate/);
    await expect(runCli(['queue', 'frobnicate'])).rejects.toThrow(/unknown command: queue frobnicate/);
    await expect(runCli(['queue', 'stats'])).rejects.toThrow(/--url or KURIR_URL is required/);
    await expect(runCli(['queue', 'stats', '--url', 'ftp://x'])).rejects.toThrow(/--url: ftp:\/\/x is not an http/);
    await expect(runCli(['queue', 'stats', '--url', 'http://127.0.0.1:1'])).rejects.toThrow(/--key or KURIR_ADMIN_KEY is required/);
    // Found 2 Dec 2026: these reached the API and came back as its validator's pattern, or (bootstrap) exit 1.
    const remote = ['--url', 'http://127.0.0.1:1', '--key', 'k'];
    for (const [argv, message] of [
      [['audit', 'list', '--limit', 'abc'], '--limit: a whole number from 1 to 1000'],
      [['audit', 'list', '--limit', '1001'], '--limit: a whole number from 1 to 1000'],
      [['messages', 'search', 'a@example.org', '--limit', 'abc'], '--limit: a whole number from 1 to 100'],
      [['queue', 'pause', 'bad domain!'], 'queue pause: "bad domain!" is neither a provider name'],
      [['queue', 'resume', 'Gmail'], 'queue resume: "Gmail" is neither a provider name'],
      [
        ['credentials', 'create', '--bootstrap', '--name', 'boot2', '--kind', 'smtp-account'],
        'credentials create --bootstrap: --kind: the bootstrap credential is an admin API key',
      ],
      // Found 2 Dec 2026 (admin audit): these were sent, and came back as the gateway's 400 (exit 1); the bootstrap
      // dropped --username.
      [['domains', 'reports', 'example.test', '--days', '0'], '--days: a whole number of days from 1 to 3650 (not 0)'],
      [['domains', 'reports', 'example.test', '--days', 'abc'], '--days: a whole number of days from 1 to 3650 (not abc)'],
      [['domains', 'set', 'example.test', '--rotate-every', '0'], '--rotate-every: a whole number of days from 1 to 3650, or never (not 0)'],
      [['domains', 'add', 'new.test', '--rotate-every', '3651'], '--rotate-every: a whole number of days from 1 to 3650, or never (not 3651)'],
      [['credentials', 'create', '--name', 'x', '--username', 'x'], '--username: only SMTP accounts have a user name'],
      [['credentials', 'create', '--name', 'x', '--kind', 'smtp'], '--kind: one of api-key, smtp-account (not smtp)'],
      [['credentials', 'create', '--name', 'x', '--kind', 'smtp-account', '--role', 'admin'], '--role: an SMTP account only submits mail'],
      [
        ['credentials', 'create', '--name', 'x', '--bootstrap', '--username', 'x'],
        'credentials create --bootstrap: --username: the bootstrap credential is an API key',
      ],
      [['credentials', 'update', 'c', '--role', 'boss'], '--role: one of send, support, admin (not boss)'],
      [['credentials', 'update', 'c', '--priorities', 'bulk,bulk'], '--priorities: bulk is listed twice'],
      [['credentials', 'update', 'c', '--priorities', 'urgent'], '--priorities: urgent is not one of verification, normal, bulk'],
      [['credentials', 'rotate', 'c', '--overlap', '2592001'], '--overlap: a whole number of seconds from 0 to 2592000 (not 2592001)'],
      [['queue', 'pause', 'gmail', '--seconds', '2592001'], '--seconds: a whole number of seconds from 1 to 2592000 (not 2592001)'],
      [['suppressions', 'export', '--domain', 'not a domain'], '--domain: "not a domain" is not a valid domain'],
      [['suppressions', 'export', '--reason', 'x'.repeat(201)], '--reason: 1 to 200 characters'],
      [['suppressions', 'add', 'a@example.org', '--reason', '😀'.repeat(201)], '--reason: 1 to 200 characters'],
      [['suppressions', 'list', '--domain', ''], '--domain: "" is not a valid domain'],
      [['suppressions', 'list', '--reason', ''], '--reason: 1 to 200 characters'],
      [['suppressions', 'add', 'a@example.org', '--reason', 'two\nlines'], '--reason: 1 to 200 characters, without line breaks'],
    ] as const) {
      const err = await runCli([...argv, ...remote]).catch((e: unknown) => e);
      expect(err, argv.join(' ')).toBeInstanceOf(UsageError);
      expect((err as Error).message).toContain(message);
    }
    // A reason is counted in characters, as the API counts it: 200 emoji (400 UTF-16 units) are sent.
    const emoji = await runCli(['suppressions', 'list', '--reason', '😀'.repeat(200), ...remote]).catch((e: unknown) => e);
    expect(emoji).toMatchObject({ exitCode: 3, message: expect.stringMatching(/^cannot reach the gateway/) });
    // Found 2 Dec 2026: the address was dropped and the search ran by reference alone (exit 0, empty table).
    const both = await runCli(['messages', 'search', 'a@example.org', '--reference', 'x', '--url', 'http://127.0.0.1:1', '--key', 'k']).catch(
      (e: unknown) => e,
    );
    expect(both).toBeInstanceOf(UsageError);
    expect((both as Error).message).toBe('messages search: give the recipient ADDRESS or --reference, not both (got a@example.org and --reference x)');
  });

  // Found 2 Dec 2026: --bits 1024 wrote a 1024-bit key (domains add refuses it, the doctor warns), and --bits with
  // ed25519 was ignored.
  it.each([
    [['--algorithm', 'rsa', '--bits', '1024'], /^--bits: 2048, 3072 or 4096$/],
    [['--algorithm', 'rsa', '--bits', '2047'], /^--bits: 2048, 3072 or 4096$/],
    [['--algorithm', 'rsa', '--bits', 'big'], /^--bits: 2048, 3072 or 4096$/],
    [['--algorithm', 'ed25519', '--bits', '3000'], /^--bits: only for --algorithm rsa/],
    [['--algorithm', 'ed25519', '--bits', '2048'], /^--bits: only for --algorithm rsa/],
  ])('dkim generate %j is a usage error naming --bits, and writes nothing', async (args, message) => {
    const out = join(dir, `bits-${args.join('-')}.pem`);
    const err = await runCli(['dkim', 'generate', ...args, '--out', out]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
    expect(() => statSync(out)).toThrow(/ENOENT/);
  });

  it('classifies one reply with the bounce rules (bounce classify)', async () => {
    expect(await runCli(['bounce', 'classify', '550 5.1.1 <x@y>: Recipient address rejected: User unknown'])).toBe(
      [
        'reply:         code 550, enhanced 5.1.1',
        'category:      invalid-recipient',
        'type:          hard',
        'senderSide:    false',
        'refusesClient: false',
        'rule:          invalid-recipient-text (config/bounce-rules.yaml)',
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
    expect(policy).toMatch(
      /category: {6}auth-failure\ntype: {10}hard\ncause: {9}unauthenticated\nsenderSide: {4}true\nrefusesClient: false\nrule: {10}auth-unauthenticated-gmail/,
    );
    expect(await runCli(['bounce', 'classify', 'connect ECONNREFUSED 127.0.0.2:25'])).toMatch(/code none, enhanced none\ncategory: {6}network\ntype: {10}soft/);
    // A rule's refusesClient flag (config/bounce-rules.yaml), in the text and in --json.
    expect(await runCli(['bounce', 'classify', '554 5.7.1 <x@y>: Relay access denied'])).toMatch(
      /senderSide: {4}true\nrefusesClient: true\nrule: {10}relay-denied /,
    );
    expect(JSON.parse(await runCli(['bounce', 'classify', '554 5.7.1 <x@y>: Relay access denied', '--json']))).toEqual({
      code: 554,
      enhanced: '5.7.1',
      category: 'policy',
      type: 'hard',
      senderSide: true,
      refusesClient: true,
      rule: 'relay-denied',
      rulesFile: 'config/bounce-rules.yaml',
    });
    expect(JSON.parse(await runCli(['bounce', 'classify', '550-5.7.26 Unauthenticated email is not accepted', '--json']))).toMatchObject({
      category: 'auth-failure',
      cause: 'unauthenticated',
      refusesClient: false,
    });
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
    // MTA-STS (record, and the policy file as comments) and TLS-RPT to the bounce domain's report address.
    expect(out.find((l) => l.startsWith('_mta-sts.mail.test. IN TXT '))).toMatch(/^_mta-sts\.mail\.test\. IN TXT "v=STSv1; id=[0-9a-f]{20}"$/);
    expect(out).toContain('_smtp._tls.mail.test. IN TXT "v=TLSRPTv1; rua=mailto:tls-reports@bounce.mail.test"');
    expect(out).toContain(
      '; MTA-STS policy to serve at https://mta-sts.mail.test/.well-known/mta-sts.txt (text/plain; mx: must list every MX host of mail.test):',
    );
    expect(out.filter((l) => l.startsWith(';   '))).toEqual([';   version: STSv1', ';   mode: testing', ';   mx: mx1.mail.test', ';   max_age: 604800']);
  });

  it("resolves files named on the command line against the caller's directory", async () => {
    const out = await runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', 'rel/key.pem'], { cwd: dir });
    expect(out).toContain(`wrote ${join(dir, 'rel/key.pem')}`);
    expect(loadPrivateKey(readFileSync(join(dir, 'rel/key.pem'), 'utf8')).algorithm).toBe('ed25519');
    writeFileSync(join(dir, 'rel/c.yaml'), 'domains: [{ name: rel.test, dkim: [] }]\n');
    expect(await runCli(['domains', 'dns', '--config', 'rel/c.yaml'], { cwd: dir })).toContain('; rel.test');
  });
});

// Found 2 Dec 2026: doctor and the local commands ran with options and arguments they do not take (dkim generate
// --domains foo wrote the key), their --help printed the global usage, and `kurir` alone exited 0.
describe('doctor and the local commands take only what their usage line names', () => {
  it.each([
    [['doctor', 'D', '--reason', 'x'], /^doctor: --reason is not an option of this command/],
    [['doctor', 'D', 'E'], /^doctor: unexpected argument E/],
    [['config', 'check', 'extra'], /^config check: unexpected argument extra/],
    [['config', 'check', '--domains', 'x'], /^config check: --domains is not an option of this command \(kurir config check --help\)/],
    [['dkim', 'generate', '--algorithm', 'rsa', '--out', 'k4.pem', '--domains', 'foo'], /^dkim generate: --domains is not an option/],
    [['dkim', 'generate', '--algorithm', 'rsa', '--out', 'k4.pem', 'extra'], /^dkim generate: unexpected argument extra/],
    [['domains', 'rewrap', '--url', 'x'], /^domains rewrap: --url is not an option/],
    [['domain', 'dns', '--json'], /^domains dns: --json is not an option/],
    [['bounce', 'classify', '550 x', '--seed', 'foo'], /^bounce classify: --seed is not an option/],
  ])('kurir %j is a usage error naming it', async (argv, message) => {
    const err = await runCli(argv, { cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
  });

  it('writes no key when dkim generate is given a stray option', async () => {
    await runCli(['dkim', 'generate', '--algorithm', 'ed25519', '--out', 'stray.pem', '--domains', 'foo'], { cwd: dir }).catch(() => undefined);
    expect(() => statSync(join(dir, 'stray.pem'))).toThrow(/ENOENT/);
  });

  it.each([
    [['doctor', '--help'], /^Usage: kurir doctor DOMAIN \[--json\]\n\nCheck SPF/],
    [['dkim', 'generate', '--help'], /^Usage: kurir dkim generate --algorithm rsa\|ed25519 --out FILE/],
    [['config', 'check', '--help'], /^Usage: kurir config check \[--config FILE\]\n\nValidate/],
    [['domains', 'dns', '--help'], /^Usage: kurir domains dns/],
    [['domains', 'rewrap', '--help'], /^Usage: kurir domains rewrap/],
    [['bounce', 'classify', '--help'], /^Usage: kurir bounce classify "REPLY"/],
  ])('kurir %j shows that command', async (argv, text) => {
    expect(await runCli(argv)).toMatch(text);
  });

  it('kurir without a command is a usage error; kurir --help is not', async () => {
    await expect(runCli([])).rejects.toThrow(UsageError);
    await expect(runCli([])).rejects.toThrow(/a command is required/);
    expect(await runCli(['--help'])).toMatch(/^Usage: kurir <command>/);
  });
});
