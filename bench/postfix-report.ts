/**
 * The report of the side-by-side phase (bench/postfix-phase.ts): one line per timed run, and the table of
 * msg/s, ratios and CPU per message per session count and side.
 */

/** One timed run of one side. */
export interface SideRun {
  side: string;
  sessions: number;
  accepted: number;
  errors: number;
  delivered: number;
  duplicates: number;
  /** Delivered per second, first timed submission → last arrival. */
  perSecond: number;
  seconds: number;
  acceptP50: number;
  acceptP99: number;
  /** Pipelining client only: from writing a message's final dot to the server's 250 (ms), the server's accept alone. */
  dataEndP50?: number;
  dataEndP99?: number;
  /** CPU ms per delivered message, by process of the side, and `other` (everything but the side and this benchmark). */
  cpuMsPerMsg: Record<string, number>;
  tls: number;
  /** New SMTP connections the sink saw (Kurir pools them; Postfix caches them only on demand by default). */
  connections: number;
  unsigned: number;
  dkim: string;
  load1: number;
  /** From the first timed submission to the last answer (the rest of `seconds` is delivery catching up). */
  acceptSeconds: number;
  /** Kurir sides: forks of its redis-server in the timed window (AOF rewrites among them), and the latest fork's stall (ms). */
  redisForks?: number;
  redisAofRewrites?: number;
  redisLatestForkMs?: number;
  /** Kurir sides: read + write system calls of the gateway processes per delivered message. */
  gatewaySyscallsPerMsg?: number;
  /** Paced runs: the offered msg/s, and the longest a message waited past its due time before it was sent. */
  offered?: number;
  maxLagMs?: number;
  /** Paced runs: ms from each message's due time to its arrival at the sink. */
  toMxP50?: number;
  toMxP99?: number;
  /** Paced runs: the last arrival at the sink after the last message's due time (ms): large when delivery fell behind. */
  lastAfterDueMs?: number;
}

/** A millisecond figure with one decimal ("NaN" when a run did not measure it). */
const ms = (v: number | undefined): string => (v ?? Number.NaN).toFixed(1);

/** Prints one timed run. */
export function printRun(r: SideRun): void {
  const cpu = Object.entries(r.cpuMsPerMsg)
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
  const how = r.offered
    ? `, ${r.offered} msg/s offered (latency from due; longest wait for a free session ${ms(r.maxLagMs)} ms; due to the MX p50 ${ms(r.toMxP50)} ms, p99 ${ms(r.toMxP99)} ms)`
    : '';
  console.log(
    `  ${r.side}, ${r.sessions} sessions${how}: ${r.delivered} of ${r.accepted} accepted delivered (${r.errors} refused, ${r.duplicates} duplicates) in ${r.seconds.toFixed(2)} s (accepted in ${r.acceptSeconds.toFixed(2)} s) → ` +
      `${r.perSecond.toFixed(0)} msg/s; accept p50 ${r.acceptP50.toFixed(1)} ms, p99 ${r.acceptP99.toFixed(1)} ms` +
      `${r.dataEndP99 === undefined ? '' : ` (final dot → 250: p50 ${ms(r.dataEndP50)}, p99 ${ms(r.dataEndP99)} ms)`}; load ${r.load1.toFixed(2)}` +
      `${r.redisForks === undefined ? '' : `; Redis forks ${r.redisForks} (AOF rewrites ${r.redisAofRewrites}; latest fork ${ms(r.redisLatestForkMs)} ms)`}`,
  );
  console.log(
    `    CPU ms per message: ${cpu}${r.gatewaySyscallsPerMsg === undefined ? '' : `; gateway system calls per message ${r.gatewaySyscallsPerMsg.toFixed(1)}`}; ${r.tls} of ${r.delivered + r.duplicates} over TLS on ${r.connections} new connections, ${r.unsigned} unsigned; mailauth: ${r.dkim}`,
  );
}

/** CPU ms per delivered message of the side's own processes (not the benchmark's, not other processes'). */
const ownCpu = (r: SideRun): number => Object.entries(r.cpuMsPerMsg).reduce((s, [k, v]) => (k === 'benchmark' || k === 'other' ? s : s + v), 0);

/**
 * Prints the side-by-side table and returns it for the JSON line: per session count and side, msg/s over all
 * its rounds and the ratio to Postfix's, and the CPU per message of the side's own processes with Postfix's
 * divided by it (what the throughput ratio would be if every side were CPU-bound on a machine of its own).
 */
export function summarize(runs: SideRun[], postfixName: string): Record<string, unknown> {
  const rows: Array<Record<string, number | string>> = [];
  for (const sessions of [...new Set(runs.map((r) => r.sessions))]) {
    for (const side of [...new Set(runs.map((r) => r.side))]) {
      const rs = runs.filter((r) => r.sessions === sessions && r.side === side);
      if (!rs.length) continue;
      const delivered = rs.reduce((n, r) => n + r.delivered, 0);
      const weighted = (f: (r: SideRun) => number): number => rs.reduce((n, r) => n + f(r) * r.delivered, 0) / delivered;
      rows.push({
        sessions,
        side,
        runs: rs.length,
        perSecond: delivered / rs.reduce((n, r) => n + r.seconds, 0),
        perRun: rs.map((r) => Math.round(r.perSecond)).join(', '),
        ownCpuMsPerMsg: weighted(ownCpu),
        otherCpuMsPerMsg: weighted((r) => r.cpuMsPerMsg.other),
        acceptP99: Math.max(...rs.map((r) => r.acceptP99)),
        dataEndP99: Math.max(...rs.map((r) => r.dataEndP99 ?? Number.NaN)),
        dkim: rs[0].dkim.split(', ')[0],
      });
    }
  }
  console.log(
    '\n| sessions | side | msg/s (per run) | ratio to Postfix | own CPU ms/msg | Postfix CPU ÷ own | other CPU ms/msg | accept p99 ms | final dot → 250 p99 ms | DKIM at the sink |',
  );
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) {
    const pf = rows.find((x) => x.sessions === r.sessions && x.side === postfixName);
    r.ratio = pf ? (r.perSecond as number) / (pf.perSecond as number) : Number.NaN;
    r.cpuRatio = pf ? (pf.ownCpuMsPerMsg as number) / (r.ownCpuMsPerMsg as number) : Number.NaN;
    const f = (k: string, d = 0): string => (r[k] as number).toFixed(d);
    console.log(
      `| ${r.sessions} | ${r.side} | ${f('perSecond')} (${r.perRun}) | ${f('ratio', 2)}× | ${f('ownCpuMsPerMsg', 2)} | ${f('cpuRatio', 2)}× | ${f('otherCpuMsPerMsg', 1)} | ${f('acceptP99', 1)} | ${f('dataEndP99', 1)} | ${r.dkim} |`,
    );
  }
  console.log("(own CPU = the side's processes: Postfix's master and every child + OpenDKIM, or the gateway + its redis-server;");
  console.log(' other = CPU of everything else on the machine but this benchmark per message: high means the ratios are noise;');
  console.log(" accept = MAIL FROM to the final 250 of each message; final dot → 250 = the server's accept alone, pipelining client only)");
  return { rows, runs };
}

/** Prints the paced runs as a table: per side and offered rate, what was delivered, how long accepts took and the way to the MX. */
export function printPaced(paced: SideRun[]): void {
  if (!paced.length) return;
  console.log(
    '\n| side | offered msg/s | delivered msg/s | accept p50 / p99 ms | final dot → 250 p50 / p99 ms | due → MX p50 / p99 ms | last arrival after last due, ms | own CPU ms/msg | gateway system calls/msg |',
  );
  console.log('| --- | ---: | ---: | --- | --- | --- | ---: | ---: | ---: |');
  for (const r of paced) {
    console.log(
      `| ${r.side} | ${r.offered} | ${r.perSecond.toFixed(0)} | ${ms(r.acceptP50)} / ${ms(r.acceptP99)} | ${ms(r.dataEndP50)} / ${ms(r.dataEndP99)} | ${ms(r.toMxP50)} / ${ms(r.toMxP99)} | ${ms(r.lastAfterDueMs)} | ${ownCpu(r).toFixed(2)} | ${ms(r.gatewaySyscallsPerMsg)} |`,
    );
  }
  console.log("(latency from each message's due time; delivery kept pace when the last message arrived about one due → MX time after it was due)");
}
