/** Reading back what recording a delivery produced: the webhook jobs a message got, and a counter's value. */
import type { Metrics } from '../../src/metrics/metrics.js';
import type { WebhookQueue } from '../../src/queue/webhook-queue.js';

/** The webhook jobs queued for message `id` (waiting, delayed, active, prioritized), by timeline index. */
export async function webhookJobsOf(queue: WebhookQueue, id: string): Promise<number[]> {
  const jobs = await queue.queue.getJobs(['waiting', 'delayed', 'active', 'prioritized']);
  return jobs
    .filter((j) => j.data.messageId === id)
    .map((j) => j.data.eventIndex)
    .sort((a, b) => a - b);
}

/** The sum of counter `name` over its series whose labels include `labels`. */
export async function counterValue(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number> {
  const values = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((sum, v) => sum + v.value, 0);
}
