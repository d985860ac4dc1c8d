/**
 * Every Redis key name Kurir uses, in one place. All keys start with the configured prefix so several
 * gateways (or test files) can share one Redis without seeing each other's data.
 */
export interface Keys {
  message(id: string): string;
  body(id: string): string;
  recipients(id: string): string;
  events(id: string): string;
  idempotency(owner: string, key: string): string;
  suppressions(): string;
  verpSecret(): string;
  /** BullMQ's own prefix: its keys live below `<prefix>:q`. */
  bullPrefix(): string;
}

/** Builds the key namer for a prefix such as `kurir` or `kurir-test-123`. */
export function createKeys(prefix: string): Keys {
  return {
    message: (id) => `${prefix}:msg:${id}`,
    body: (id) => `${prefix}:body:${id}`,
    recipients: (id) => `${prefix}:rcpt:${id}`,
    events: (id) => `${prefix}:events:${id}`,
    idempotency: (owner, key) => `${prefix}:idem:${owner}:${key}`,
    suppressions: () => `${prefix}:suppressions`,
    verpSecret: () => `${prefix}:verp-secret`,
    bullPrefix: () => `${prefix}:q`,
  };
}
