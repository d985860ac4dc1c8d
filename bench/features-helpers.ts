/**
 * Helpers of the features phase (bench/features-phase.ts): the confirmation request, rspamd's CPU from /proc,
 * and counters from a gateway child's /metrics.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { type Agent, request } from 'node:http';
import { BENCH_API_KEY, cpuSecondsOf } from './gateway-child.js';

/** POST /v1/messages/:id/confirm; resolves with the status (0 on a socket error), never rejects. */
export function confirm(agent: Agent, port: number, id: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/v1/messages/${encodeURIComponent(id)}/confirm`,
        agent,
        headers: { authorization: `Bearer ${BENCH_API_KEY}`, 'content-length': 0 },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', () => resolve(0));
      },
    );
    req.on('error', () => resolve(0));
    req.end();
  });
}

/** Busy CPU seconds of the rspamd processes descended from this benchmark (its main process and workers). */
export function rspamdCpuSeconds(): number {
  const parent = new Map<number, { ppid: number; comm: string }>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      parent.set(Number(d), { ppid: Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]), comm });
    } catch {
      /* the process ended meanwhile */
    }
  }
  const ours = (pid: number): boolean => {
    for (let p = parent.get(pid)?.ppid, hops = 0; p && hops < 5; p = parent.get(p)?.ppid, hops++) if (p === process.pid) return true;
    return false;
  };
  let sum = 0;
  for (const [pid, { comm }] of parent) {
    if (!comm.startsWith('rspamd') || !ours(pid)) continue;
    try {
      sum += cpuSecondsOf(pid);
    } catch {
      /* ended */
    }
  }
  return sum;
}

/** Counter (`…_total`) values of a child's /metrics whose name starts with one of `names`. */
export async function counters(port: number, names: string[]): Promise<Map<string, number>> {
  const text = await fetch(`http://127.0.0.1:${port}/metrics`).then(
    (r) => r.text(),
    () => '',
  );
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const name = line.split(/[{ ]/)[0];
    if (!name.endsWith('_total') || !names.some((n) => name.startsWith(n))) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/** The counters that changed from `a` to `b`, as `name value` pairs. */
export function diff(a: Map<string, number>, b: Map<string, number>): string {
  const d = [...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v !== 0);
  return d.length ? d.map(([k, v]) => `${k} ${v}`).join(', ') : 'none';
}
