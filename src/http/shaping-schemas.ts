/** Response schemas of the delivery-control routes (src/http/shaping-routes.ts). */
const nullableString = { type: 'string', nullable: true } as const;
const nullableNumber = { type: 'number', nullable: true } as const;

/** A provider's shaping state (GET /v1/shaping, pause and resume answers). */
export const providerSchema = {
  type: 'object',
  properties: {
    provider: { type: 'string' },
    configured: {
      type: 'object',
      properties: { maxConnections: nullableNumber, perMinute: nullableNumber, adaptive: { type: 'boolean' }, maxMessagesPerConnection: nullableNumber },
    },
    effectivePerMinute: { ...nullableNumber, description: 'The adaptive rate in force (null: unlimited).' },
    backoffUntil: { ...nullableString, description: 'Paused after a "too fast" reply until then.' },
    adminPaused: { ...nullableString, description: '`indefinitely`, an ISO time, or null.' },
    pausedBy: nullableString,
    connectionsInUse: { type: 'integer' },
    heldJobs: { type: 'integer', description: 'Jobs waiting because the provider is paused.' },
    throttles: { type: 'integer', description: 'Adaptive slow-downs so far.' },
    lastSignal: { ...nullableString, description: 'The rule and reply of the last slow-down.' },
  },
} as const;

/** A paused recipient domain. */
export const pausedDomainSchema = {
  type: 'object',
  properties: {
    domain: { type: 'string' },
    pausedUntil: { type: 'string', description: '`indefinitely` or an ISO time.' },
    pausedAt: { type: 'string' },
    pausedBy: { type: 'string' },
    heldJobs: { type: 'integer', description: 'Jobs waiting because the domain is paused.' },
  },
} as const;

/** A source IP of delivery.ipPools with its warm-up state (src/shaping/source-ips.ts). */
export const sourceIpSchema = {
  type: 'object',
  properties: {
    address: { type: 'string' },
    pool: { type: 'string' },
    helo: { type: 'string' },
    warmupDay: { ...nullableNumber, description: 'Day N of the warm-up schedule (null: none).' },
    perHour: { ...nullableNumber, description: 'The cap per UTC hour today (null: none).' },
    perDay: { ...nullableNumber, description: 'The cap per UTC day today (null: none).' },
    sentThisHour: { ...nullableNumber, description: 'Messages counted against perHour in this UTC hour, cluster-wide.' },
    sentToday: { ...nullableNumber, description: 'Messages counted against perDay today, cluster-wide.' },
  },
} as const;
