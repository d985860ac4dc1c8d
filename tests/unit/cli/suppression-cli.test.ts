import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, UsageError } from '../../../src/cli/main.js';
import { dropPrefix } from '../../helpers/test-gateway.js';

const dir = mkdtempSync(join(tmpdir(), 'kurir-cli-supp-'));
const prefix = `kurir-test-cli-supp-${Math.random().toString(36).slice(2, 8)}`;

beforeAll(() => {
  process.env.KURIR_REDIS__PREFIX = prefix;
});
afterAll(async () => {
  delete process.env.KURIR_REDIS__PREFIX;
  await dropPrefix(prefix);
});

describe('kurir suppression list|export|import', () => {
  it('imports a CSV, lists by domain and reason, and exports it back', async () => {
    const file = join(dir, 'in.csv');
    writeFileSync(file, 'address,reason\nx1@one.test,hard-bounce\nx2@one.test,complaint\ny1@two.test,hard-bounce\n');
    expect(await runCli(['suppression', 'import', file])).toBe('imported 3 entries (3 new)');

    const all = await runCli(['suppression', 'list']);
    expect(all.split('\n').map((l) => l.split('\t')[0])).toEqual(['x1@one.test', 'x2@one.test', 'y1@two.test', '3 suppressed address(es)']);
    expect(all.split('\n')[0].split('\t').slice(1, 3)).toEqual(['hard-bounce', 'cli-import']);
    expect((await runCli(['suppression', 'list', '--domain', 'one.test', '--reason', 'complaint'])).split('\n')[0]).toMatch(/^x2@one\.test\tcomplaint\t/);

    const out = join(dir, 'out.csv');
    expect(await runCli(['suppression', 'export', '--out', out])).toBe(`wrote 3 entries to ${out}`);
    const csv = readFileSync(out, 'utf8');
    expect(csv.split('\r\n')[0]).toBe('address,reason,source,at,messageId');
    expect(csv).toContain('y1@two.test,hard-bounce,cli-import,');
    expect((await runCli(['suppression', 'export'])).split('\r\n')).toHaveLength(4);
  });

  it('reports every invalid line and imports nothing', async () => {
    const file = join(dir, 'bad.csv');
    writeFileSync(file, 'z1@three.test,manual\nnope,manual\nz2@three.test,\n');
    const err = await runCli(['suppression', 'import', file]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/nothing imported\n {2}line 2: address: "nope" is not an e-mail address\n {2}line 3: reason: is required/);
    expect(await runCli(['suppression', 'list', '--domain', 'three.test'])).toBe('0 suppressed address(es)');
    await expect(runCli(['suppression', 'import'])).rejects.toBeInstanceOf(UsageError);
    await expect(runCli(['suppression', 'import', join(dir, 'missing.csv')])).rejects.toBeInstanceOf(UsageError);
  });
});
