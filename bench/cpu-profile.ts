/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time per function and per origin
 * (a package under node_modules, Kurir's own src/, Node internals, GC, idle).
 * Usage on its own: `npx tsx bench/cpu-profile.ts file.cpuprofile`.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  idleMs: number;
  byOrigin: Array<{ origin: string; ms: number; pct: number }>;
  byFunction: Array<{ fn: string; ms: number; pct: number }>;
  /** Kurir's own functions (src/) by inclusive time: their synchronous work plus everything it called. */
  kurirInclusive: Array<{ fn: string; ms: number; pct: number }>;
}

function originOf(url: string, fn: string): string {
  if (fn === '(idle)') return '(idle)';
  if (fn === '(garbage collector)') return '(garbage collector)';
  if (fn === '(program)') return '(program: native, not attributed)';
  if (!url) return `(native) ${fn}`.trim();
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1];
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const src = /\/src\/(.+?)(?:\.[cm]?[jt]s)?$/.exec(url);
  if (src) return `kurir src/${src[1].split('/')[0]}`;
  return url;
}

function shortUrl(url: string): string {
  const nm = /node_modules\/(.+)$/.exec(url);
  if (nm) return nm[1];
  const src = /\/(src\/.+)$/.exec(url);
  return src ? src[1] : url;
}

export function summarizeProfile(file: string, top = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
  const origins = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const cf = byId.get(id)!.callFrame;
    total += us;
    const origin = originOf(cf.url, cf.functionName);
    origins.set(origin, (origins.get(origin) ?? 0) + us);
    const fn = cf.url ? `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}:${cf.lineNumber + 1}` : cf.functionName || '(anonymous)';
    fns.set(fn, (fns.get(fn) ?? 0) + us);
  }
  const busy = total - (origins.get('(idle)') ?? 0);

  // Inclusive time per src/ function; a function that is on the stack twice is counted once per sample path.
  const inclusive = new Map<string, number>();
  const visit = (id: number, onStack: Set<string>): number => {
    const node = byId.get(id)!;
    let sum = self.get(id) ?? 0;
    const cf = node.callFrame;
    const isKurir = /\/src\//.test(cf.url) && !cf.url.includes('node_modules');
    const name = isKurir ? `${cf.functionName || '(anonymous)'} ${shortUrl(cf.url)}` : '';
    const fresh = isKurir && !onStack.has(name);
    if (fresh) onStack.add(name);
    for (const c of node.children ?? []) sum += visit(c, onStack);
    if (fresh) {
      onStack.delete(name);
      inclusive.set(name, (inclusive.get(name) ?? 0) + sum);
    }
    return sum;
  };
  const root = p.nodes.find((n) => n.callFrame.functionName === '(root)') ?? p.nodes[0];
  visit(root.id, new Set());
  const rank = (m: Map<string, number>): Array<[string, number]> =>
    [...m]
      .filter(([k]) => k !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top);
  return {
    totalMs: total / 1000,
    idleMs: (origins.get('(idle)') ?? 0) / 1000,
    byOrigin: rank(origins).map(([origin, us]) => ({ origin, ms: us / 1000, pct: (100 * us) / busy })),
    byFunction: rank(fns).map(([fn, us]) => ({ fn, ms: us / 1000, pct: (100 * us) / busy })),
    kurirInclusive: rank(inclusive).map(([fn, us]) => ({ fn, ms: us / 1000, pct: (100 * us) / busy })),
  };
}

export function printProfile(s: ProfileSummary): void {
  console.log(`  sampled ${(s.totalMs / 1000).toFixed(1)} s, of which idle ${(s.idleMs / 1000).toFixed(1)} s; shares below are of the busy time`);
  console.log('  self time by origin:');
  for (const o of s.byOrigin) console.log(`    ${o.pct.toFixed(1).padStart(5)}%  ${o.ms.toFixed(0).padStart(7)} ms  ${o.origin}`);
  console.log('  self time by function:');
  for (const f of s.byFunction) console.log(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(7)} ms  ${f.fn}`);
  console.log('  Kurir functions by inclusive time (synchronous part, callees included):');
  for (const f of s.kurirInclusive) console.log(`    ${f.pct.toFixed(1).padStart(5)}%  ${f.ms.toFixed(0).padStart(7)} ms  ${f.fn}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of process.argv.slice(2)) {
    console.log(f);
    printProfile(summarizeProfile(f, 30));
  }
}
