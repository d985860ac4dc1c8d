/**
 * The installed command line: `npm run build` leaves dist/src/cli/bin.js executable (shebang + mode), and it
 * runs from any directory — files named on the command line relative to the caller, the configuration's own
 * relative paths (config/bounce-rules.yaml, ./data) relative to the Kurir directory.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = resolve('dist/src/cli/bin.js');
const elsewhere = mkdtempSync(join(tmpdir(), 'kurir-bin-'));

beforeAll(async () => {
  await run('npm', ['run', 'build'], { cwd: resolve('.') });
}, 240_000);
afterAll(() => rmSync(elsewhere, { recursive: true, force: true }));

describe('dist/src/cli/bin.js', () => {
  it('is executable with a node shebang after npm run build', () => {
    expect(readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(statSync(bin).mode & 0o111).toBe(0o111);
  });

  it('runs from another directory: default config found, files relative to the caller', async () => {
    const check = await run(bin, ['config', 'check'], { cwd: elsewhere });
    expect(check.stdout).toMatch(/^configuration is valid: .* \d+ bounce rules\n$/);

    writeFileSync(join(elsewhere, 'mine.yaml'), 'hostname: mx.mine.test\nbounce: { domain: bounce.mine.test }\ndomains: [{ name: mine.test, dkim: [] }]\n');
    const dns = await run(bin, ['domains', 'dns', '--config', 'mine.yaml'], { cwd: elsewhere });
    expect(dns.stdout).toContain('bounce.mine.test. IN MX 10 mx.mine.test.');

    await run(bin, ['dkim', 'generate', '--algorithm', 'ed25519', '--out', 'keys/k.pem'], { cwd: elsewhere });
    expect(existsSync(join(elsewhere, 'keys/k.pem'))).toBe(true);

    const bad = await run(bin, ['dkim', 'generate', '--algorithm', 'dsa', '--out', 'x'], { cwd: elsewhere }).catch((e: { code: number; stderr: string }) => e);
    expect(bad).toMatchObject({ code: 2 });
    expect((bad as { stderr: string }).stderr).toMatch(/^kurir: --algorithm: must be rsa or ed25519/);
  });
});
