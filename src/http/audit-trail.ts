/**
 * Writing the audit log (src/store/audit-store.ts) from the HTTP layer: the entry of an answered request, and
 * the first entry of an export, written before its first byte.
 *
 * Reads are audited when they return recipient addresses or message contents. A route says so in its config:
 * `config: { auditRead: 'view' }` for a single answer (a message, a page of the suppression list, a search),
 * `'export'` for a bulk download. The scope hooks (src/http/auth.ts) and the console's hook then audit the
 * route's reads by admin and support credentials; reads that return none (metrics, health, domains, queue,
 * placement and incident summaries, the audit log's own pages) stay out of the log.
 *
 * A view is answered first and audited after: a failed audit write is logged (`audit: entry could not be
 * written`, error), counted (`kurir_audit_write_failures_total{kind}`, through `audit.failed`) and the reader
 * has their answer. An export is audited before it starts: when that entry
 * cannot be written the export is refused (503 UNAVAILABLE) and nothing leaves, because a bulk copy of the
 * list is the read the log exists for. Its rows are counted into a second entry once the answer has gone out.
 */
import type { FastifyRequest } from 'fastify';
import { roleOf } from '../intake/credentials.js';
import { KurirError } from '../lib/errors.js';
import type { AuditWriteKind } from '../metrics/metrics.js';
import type { AuditEntry, AuditStore } from '../store/audit-store.js';

/** What a handler adds to its audit entry. Never put a secret here, nor the addresses a read answered. */
export interface AuditDetail {
  target?: string;
  before?: unknown;
  after?: unknown;
}

/** How a read that returns personal data is audited: `view` after the answer, `export` before it too (fail closed). */
export type AuditRead = 'view' | 'export';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Set on a read route that returns recipient addresses or message contents (see src/http/audit-trail.ts). */
    auditRead?: AuditRead;
  }
  interface FastifyRequest {
    /** Set by a handler to add a target and before/after views to its audit entry. */
    auditDetail: AuditDetail | null;
  }
  interface FastifyInstance {
    /**
     * Where audited actions go; null turns auditing off (an app built without an audit store). `failed` is told
     * of each entry that could not be written (kurir_audit_write_failures_total).
     */
    audit: { store: AuditStore; now: () => number; failed?: (kind: AuditWriteKind) => void } | null;
  }
}

/** Who an audit entry names: `<kind>:<name>` and the role. */
export interface AuditActor {
  actor: string;
  role: string;
}

/** The `auditRead` of the request's route, or null when the route returns no personal data. */
export function auditReadOf(request: FastifyRequest): AuditRead | null {
  return request.routeOptions.config?.auditRead ?? null;
}

/** What kind of entry a request's is: its route's `auditRead`, else a view for GET and HEAD, a change otherwise. */
export function auditKindOf(request: FastifyRequest): AuditWriteKind {
  return auditReadOf(request) ?? (request.method === 'GET' || request.method === 'HEAD' ? 'view' : 'change');
}

/** `METHOD /route/:param`: the action of an entry. */
export function auditAction(request: FastifyRequest): string {
  return `${request.method} ${request.routeOptions.url ?? request.url.split('?')[0]}`;
}

/**
 * The entry of a request: the handler's `auditDetail`, and without a target of its own, the path parameters
 * joined by spaces when `paramsAsTarget` (the API's routes; the console names its targets itself).
 */
function entryOf(request: FastifyRequest, who: AuditActor, status: number, now: number, detail: AuditDetail, paramsAsTarget: boolean): AuditEntry {
  const params = paramsAsTarget ? Object.values((request.params ?? {}) as Record<string, string>) : [];
  return {
    at: now,
    actor: who.actor,
    role: who.role,
    ip: request.ip,
    action: auditAction(request),
    ...(detail.target !== undefined ? { target: detail.target } : params.length ? { target: params.join(' ') } : {}),
    status,
    ...(detail.before !== undefined ? { before: detail.before } : {}),
    ...(detail.after !== undefined ? { after: detail.after } : {}),
  };
}

/**
 * Appends the entry of an answered request. The answer has gone out, so a failed write is logged and counted,
 * never thrown.
 */
export async function recordAudit(request: FastifyRequest, who: AuditActor, status: number, paramsAsTarget = true): Promise<void> {
  const audit = request.server.audit;
  if (!audit) return;
  await audit.store.append(entryOf(request, who, status, audit.now(), request.auditDetail ?? {}, paramsAsTarget)).catch((err: unknown) => {
    const kind = auditKindOf(request);
    audit.failed?.(kind);
    request.log.error({ err, component: 'audit', kind, action: auditAction(request) }, 'audit: entry could not be written');
  });
}

/**
 * The first entry of an export by an API key, written before its first byte: `status` 200, the handler's
 * target (the filter) and `after: { export: 'started' }`. Throws 503 UNAVAILABLE when it cannot be written,
 * so the export is refused rather than left out of the log.
 */
export async function auditExportStart(request: FastifyRequest, target: string): Promise<void> {
  const audit = request.server.audit;
  const credential = request.credential;
  if (!audit || !credential) return;
  const who = { actor: `${credential.kind}:${credential.name}`, role: roleOf(credential) };
  try {
    await audit.store.append(entryOf(request, who, 200, audit.now(), { target, after: { export: 'started' } }, false));
  } catch (err) {
    audit.failed?.('export');
    request.log.error({ err, component: 'audit', kind: 'export', action: auditAction(request) }, 'audit: entry could not be written; the export was refused');
    throw new KurirError('UNAVAILABLE', 'The audit log could not be written, so nothing was exported; try again later', { cause: err });
  }
}

/** A filter as an audit target: its set fields in query-string form (`domain=example.org&reason=bounce`), or `all`. */
export function filterTarget(filter: Record<string, string | undefined>): string {
  const set = Object.entries(filter).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== '');
  return set.length ? new URLSearchParams(set).toString() : 'all';
}

/** Yields what `chunks` yields, then calls `done`: an export's entry says whether it ran to the end (not when the reader stopped early). */
export async function* untilEnd(chunks: AsyncIterable<string>, done: () => void): AsyncGenerator<string> {
  for await (const chunk of chunks) yield chunk;
  done();
}
