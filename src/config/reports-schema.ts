/**
 * `feedback.reports`: DMARC aggregate (rua) and SMTP TLS (TLS-RPT) reports received at the bounce MX and at
 * POST /v1/reports (src/feedback/aggregate/, docs/reports.md). The bounds keep hostile archives harmless.
 */
import { z } from 'zod';

const MiB = 1024 * 1024;

/** The most days `feedback.reports.retentionDays` may keep (and so the widest report window; `kurir domains reports --days`). */
export const MAX_RETENTION_DAYS = 3650;

export const reportsSchema = z
  .object({
    /** Local part of the TLS-RPT address at bounce.domain (rua=mailto:<this>@<bounce.domain> in _smtp._tls). */
    tlsRptLocalPart: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/i, 'a local part such as tls-reports')
      .default('tls-reports'),
    /** An attachment (compressed, as received) larger than this is refused. */
    maxCompressedBytes: z
      .number()
      .int()
      .min(1024)
      .default(10 * MiB),
    /** Inflated bytes of one report (gzip or zip, every entry together): inflating stops at this cap. */
    maxInflatedBytes: z
      .number()
      .int()
      .min(1024)
      .default(32 * MiB),
    /** Entries a zip archive may hold (a report is one file). */
    maxZipEntries: z.number().int().min(1).max(100).default(4),
    /** DMARC records, or TLS-RPT policies plus failure details, in one report. */
    maxRecords: z.number().int().min(1).default(100_000),
    /** Distinct foreign source IPs kept per report and domain (the rest are summed as one "other" row). */
    maxForeignSources: z.number().int().min(1).max(100_000).default(1000),
    /** Threads that unpack and parse reports off the event loop (src/feedback/aggregate/report-pool.ts), started on the first report. */
    parseThreads: z.number().int().min(1).max(8).default(1),
    /** Wall-clock seconds one report may take to unpack and parse; a thread over it is stopped and the report refused (`parse-timeout`). */
    maxParseSeconds: z.number().min(0.1).max(600).default(10),
    /** Reports waiting for a parse thread; more are answered "busy" (SMTP 451 4.3.2, HTTP 503), so the sender retries. */
    maxQueuedReports: z.number().int().min(0).max(1000).default(8),
    /** Days the per-day aggregates and the "seen" marks (idempotency by report id) are kept. */
    retentionDays: z.number().int().min(1).max(MAX_RETENTION_DAYS).default(90),
  })
  .strict()
  .default({});
