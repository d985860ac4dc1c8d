/**
 * Starting a node:worker_threads thread from a module that runs either as compiled JavaScript (dist/, after
 * `npm run build`) or as TypeScript source (tsx in dev, vitest). Used by the DKIM signing pool and by
 * ./worker-pool.ts (reading DMARC/TLS reports, parsing DSN/ARF reports).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/**
 * The thread's entry for `file` (a sibling of the calling module, named without extension): the compiled .js
 * when the caller is compiled, or, when the caller runs as .ts source, a bootstrap that registers tsx in the
 * thread first: `--import tsx` in a worker's execArgv does not reach the thread's module loader on Node 20.
 *
 * @param callerUrl the caller's `import.meta.url`
 * @param file the worker module's name without extension, e.g. `./sign-worker`
 */
export function workerEntry(callerUrl: string, file: string): URL | string {
  if (!callerUrl.endsWith('.ts')) return new URL(`${file}.js`, callerUrl);
  // The ESM build of tsx's API, found from its package.json (require.resolve would give the CommonJS one).
  const pkgFile = createRequire(callerUrl).resolve('tsx/package.json');
  const pkg = JSON.parse(readFileSync(pkgFile, 'utf8')) as { exports: Record<string, { import: { default: string } }> };
  const tsxApi = new URL(pkg.exports['./esm/api']!.import.default, pathToFileURL(pkgFile)).href;
  const entry = new URL(`${file}.ts`, callerUrl).href;
  return `import(${JSON.stringify(tsxApi)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
}

/**
 * Starts the thread `file` next to the caller (see {@link workerEntry}).
 *
 * @param opts.name the thread's name (shown in diagnostics)
 * @param opts.resourceLimits heap limits of the thread (a thread over them stops with ERR_WORKER_OUT_OF_MEMORY)
 */
export function startWorker(callerUrl: string, file: string, opts: { name: string; resourceLimits?: ResourceLimits }): Worker {
  const entry = workerEntry(callerUrl, file);
  return typeof entry === 'string' ? new Worker(entry, { ...opts, eval: true }) : new Worker(entry, opts);
}
