/**
 * The outbox relay: hands on the timeline events whose webhooks the process that recorded them did not get
 * into the webhook queue (it died right after the write, or Redis failed in between: src/store/webhook-outbox.ts).
 * Runs in every process with the worker role, once per Redis holding messages; entries are claimed in Redis, so
 * several relays never hand on the same entry at once.
 */
import type { Logger } from '../lib/logger.js';
import type { Metrics } from '../metrics/metrics.js';
import type { MessageStore } from '../store/message-store.js';
import type { WebhookOutbox } from '../store/webhook-outbox.js';
import type { WebhookProducer } from './events.js';

export interface OutboxRelayDeps {
  outbox: WebhookOutbox;
  messages: Pick<MessageStore, 'getRecord'>;
  producer: Pick<WebhookProducer, 'handOn'>;
  metrics: Metrics;
  logger: Logger;
  /** How long the writer has to acknowledge an entry (`webhooks.outboxGraceSeconds`); the relay runs twice as often. */
  graceMs: number;
}

/** Entries taken per step; a pass steps until none is due. */
const BATCH = 200;

/**
 * Periodically claims outbox entries nobody acknowledged in time and hands their events to the webhook producer; entries whose
 * message is gone are dropped, failed hand-ons are retried after the grace.
 */
export class OutboxRelay {
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<number> | null = null;

  constructor(private readonly deps: OutboxRelayDeps) {}

  /** Runs a pass every half grace; errors are logged, never thrown. */
  start(): void {
    const every = Math.max(100, Math.round(this.deps.graceMs / 2));
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.runOnce()
        .catch((err: unknown) => {
          this.deps.logger.warn({ err }, 'webhook outbox relay pass failed; the next pass retries');
          return 0;
        })
        .finally(() => {
          this.running = null;
        });
    }, every);
    this.timer.unref();
  }

  /** Stops the timer and waits for a pass in progress. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  /** Hands on every due entry; answers how many webhook jobs were queued. */
  async runOnce(): Promise<number> {
    const { outbox, messages, producer, metrics, logger } = this.deps;
    // A claim outlasts a slow queue add (the command timeout is 5 s), so two relays do not queue an entry at once.
    const leaseMs = Math.max(30_000, 2 * this.deps.graceMs);
    let total = 0;
    for (;;) {
      const entries = await outbox.claimDue(leaseMs, BATCH);
      if (!entries.length) return total;
      const done: string[] = [];
      const failed: string[] = [];
      let relayed = 0;
      // Every entry's record and events read at once (ioredis sends concurrent commands together), not two round
      // trips per entry in turn.
      const loaded = await Promise.all(
        entries.map(async (entry) => {
          const [record, events] = await Promise.all([messages.getRecord(entry.id), outbox.events(entry)]);
          return { entry, record, events };
        }),
      );
      for (const { entry, record, events } of loaded) {
        if (!record || !events.length) {
          // Past its retention (or removed): there is nothing left to tell.
          metrics.webhookOutbox.inc({ result: 'gone' }, entry.count);
          done.push(entry.member);
          continue;
        }
        try {
          relayed += await producer.handOn(record, events);
          done.push(entry.member);
        } catch {
          // Counted and logged by the producer; tried again after the grace (a dead relay's claims run out later).
          failed.push(entry.member);
        }
      }
      await outbox.remove(done);
      await outbox.postpone(failed, this.deps.graceMs);
      if (relayed) {
        metrics.webhookOutbox.inc({ result: 'relayed' }, relayed);
        logger.warn({ events: relayed }, 'webhook events queued by the outbox relay (their first hand-on had failed)');
      }
      total += relayed;
      if (entries.length < BATCH) return total;
    }
  }
}
