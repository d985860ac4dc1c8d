/**
 * The module structure of src/ (docs/architecture.md): no import cycle (madge, as `npm run check:cycles`),
 * no import from a lower layer into a higher one, and the report parsers and the bounce rules free of
 * storage, queues, metrics and sockets. Imports are read with TypeScript's own pre-processor, type-only
 * ones included.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SRC = join(ROOT, 'src');
const MADGE = join(ROOT, 'node_modules/madge/bin/cli.js');
const run = promisify(execFile);

/** Layer of each entry of src/: a file may import its own layer or a lower one (a higher number). */
const LAYERS: Record<string, number> = {
  main: 0,
  gateway: 0,
  'gateway-shards': 0,
  smtp: 1,
  http: 1,
  cli: 1,
  intake: 2,
  delivery: 2,
  dkim: 2,
  shaping: 2,
  feedback: 2,
  esp: 2,
  webhooks: 2,
  admin: 2,
  placement: 2,
  domains: 2,
  scoring: 2,
  store: 3,
  queue: 3,
  config: 4,
  metrics: 4,
  lib: 4,
  types: 4,
};

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith('.ts') ? [path] : [];
  });

/** Every specifier a file imports or re-exports (static, dynamic and type-only). */
const specifiers = (file: string): string[] => ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((f) => f.fileName);

/** A relative specifier as the src/-relative path of the .ts file it names. */
const localTarget = (file: string, spec: string): string => relative(SRC, resolve(dirname(file), spec)).replace(/\.js$/, '.ts');

const layerOf = (srcPath: string): number | undefined => LAYERS[srcPath.split('/')[0].replace(/\.ts$/, '')];

const files = sourceFiles(SRC);

describe('layering of src/', () => {
  it('places every folder and root file of src/ in a layer', () => {
    const unplaced = readdirSync(SRC).filter((name) => layerOf(name) === undefined);
    expect(unplaced).toEqual([]);
  });

  it('has no import from a lower layer into a higher one', () => {
    const upward: string[] = [];
    let checked = 0;
    for (const file of files) {
      const from = relative(SRC, file);
      for (const spec of specifiers(file).filter((s) => s.startsWith('.'))) {
        const to = localTarget(file, spec);
        checked++;
        if (layerOf(to)! < layerOf(from)!) upward.push(`${from} -> ${to}`);
      }
    }
    expect(checked).toBeGreaterThan(300);
    expect(upward).toEqual([]);
  });

  it('keeps feedback/reports and feedback/classify free of store, queue, metrics and sockets', () => {
    const pure = files.filter((f) => /^feedback\/(reports|classify)\//.test(relative(SRC, f)));
    expect(pure.length).toBeGreaterThanOrEqual(10);
    for (const file of pure)
      expect(
        specifiers(file).filter((s) => s === 'node:net' || s === 'net'),
        relative(SRC, file),
      ).toEqual([]);
    // Everything they reach, transitively, inside src/.
    const reached = new Set<string>();
    const visit = (file: string): void => {
      for (const spec of specifiers(file).filter((s) => s.startsWith('.'))) {
        const to = localTarget(file, spec);
        if (reached.has(to)) continue;
        reached.add(to);
        visit(join(SRC, to));
      }
    };
    pure.forEach(visit);
    expect([...reached].filter((p) => /^(store|queue|metrics)\//.test(p))).toEqual([]);
  });
});

describe('import cycles', () => {
  it('madge finds none in src/', async () => {
    const { stdout } = await run(process.execPath, [MADGE, '--circular', '--json', '--extensions', 'ts', 'src'], { cwd: ROOT });
    expect(JSON.parse(stdout)).toEqual([]);
  });

  it('madge does find one written the way src/ writes imports (./b.js naming b.ts)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kurir-cycle-'));
    try {
      await writeFile(join(dir, 'a.ts'), "import { b } from './b.js';\nexport const a = (): number => b + 1;\n");
      await writeFile(join(dir, 'b.ts'), "import type { a } from './a.js';\nexport const b = 1;\nexport type A = typeof a;\n");
      const found = await run(process.execPath, [MADGE, '--circular', '--json', '--extensions', 'ts', dir]).then(
        (r) => r.stdout,
        (err: { stdout: string }) => err.stdout,
      );
      expect(JSON.parse(found)).toEqual([['a.ts', 'b.ts']]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
