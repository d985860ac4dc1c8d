import type { Worker } from 'bullmq';

/**
 * Closes a BullMQ worker: stop taking jobs, let running ones finish within `graceMs`, then force-close so
 * the rest go back as stalled jobs for another worker. Returns a function that is safe to call twice.
 */
export function boundedClose(worker: Worker, defaultGraceMs: number): (graceMs?: number) => Promise<void> {
  let closing: Promise<void> | null = null;
  return (graceMs = defaultGraceMs) => {
    closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), graceMs)));
      const r = await Promise.race([worker.close().then(() => 'closed' as const), timedOut]);
      clearTimeout(timer);
      if (r === 'timeout') await worker.close(true);
    })();
    return closing;
  };
}
