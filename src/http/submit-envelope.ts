/**
 * The envelope of `POST /v1/messages` outside the body: for a raw (`message/rfc822`) submission the `?to=`, `?from=`,
 * `?priority=`, `?ttl=` query parameters or the `X-Kurir-To` / `-From` / `-Priority` / `-Ttl` headers, which a JSON
 * submission must not carry (its envelope is in the body).
 */
import type { FastifyRequest } from 'fastify';
import { PRIORITIES, type Priority } from '../config/schema.js';
import { normalizeAddress } from '../lib/address.js';
import { ttlSeconds } from '../intake/submission.js';
import { KurirError } from '../lib/errors.js';

/** Splits at commas outside a quoted local part (`"doe,john"@example.test` is one address), as RFC 5321 allows. */
function splitAddresses(value: string): string[] {
  const parts: string[] = [];
  let start = 0;
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (c === ',' && !quoted) {
      parts.push(value.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(value.slice(start));
  return parts;
}

function splitList(values: Array<string | undefined>): string[] {
  return values
    .flatMap((v) => splitAddresses(v ?? ''))
    .map((s) => s.trim())
    .filter(Boolean);
}

/** A request header's value, repeated headers joined with commas. */
export function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v.join(',') : v;
}

function parsePriority(value: string | undefined): Priority | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(PRIORITIES as readonly string[]).includes(value)) {
    throw new KurirError('VALIDATION', `priority: must be one of ${PRIORITIES.join(', ')}`, { field: 'priority' });
  }
  return value as Priority;
}

interface SubmitQuery {
  to?: string | string[];
  from?: string;
  priority?: string;
  ttl?: string;
}

/** The envelope of a raw submission as the request gives it (hashed for its Idempotency-Key as it is). */
export interface RawEnvelope {
  recipients: string[];
  mailFrom?: string;
  priority?: Priority;
  ttlSeconds?: number;
}

/**
 * Which request field each raw recipient came from, by lower-case normalized address (Submission.recipientFields):
 * the parameter and the address's place in its list, repeated parameters and comma-separated values counted alike
 * (`?to=a&to=b,c` → `to[0]`, `to[1]`, `to[2]`; `X-Kurir-To[1]`); the first place, for one given twice. Every address
 * is checked here, so that a bad one is refused under that name too (intake named it `to[i]` whichever way it came).
 */
function recipientFields(recipients: string[], param: string): Map<string, string> {
  const fields = new Map<string, string>();
  recipients.forEach((address, i) => {
    const field = `${param}[${i}]`;
    const key = normalizeAddress(address, field).toLowerCase();
    if (!fields.has(key)) fields.set(key, field);
  });
  return fields;
}

/**
 * The envelope of a raw submission: query parameters first, then `X-Kurir-*` headers, and where each recipient was
 * given (a refusal of one names that field, e.g. `to[1]`; a recipient that is no address is refused so here). An
 * envelope sender that is no address is refused naming the parameter it came in (`from` or `X-Kurir-From`); the
 * values are kept as given. A TTL
 * (`ttl` or `X-Kurir-Ttl`, empty too) is checked against `maxTtlSeconds` (delivery.maxTtlSeconds) by ttlSeconds.
 */
export function rawEnvelope(request: FastifyRequest, maxTtlSeconds: number): { envelope: RawEnvelope; recipientFields: ReadonlyMap<string, string> } {
  const q = (request.query ?? {}) as SubmitQuery;
  const fromQuery = splitList(Array.isArray(q.to) ? q.to : [q.to]);
  const recipients = fromQuery.length ? fromQuery : splitList([header(request, 'x-kurir-to')]);
  if (!recipients.length) {
    throw new KurirError('VALIDATION', 'to: at least one recipient is required (query ?to= or header X-Kurir-To)', { field: 'to' });
  }
  const fields = recipientFields(recipients, fromQuery.length ? 'to' : 'X-Kurir-To');
  const mailFrom = (q.from ?? header(request, 'x-kurir-from'))?.trim() || undefined;
  // Checked here, where the parameter it came in is known: intake named it "from (envelope sender)" (its 403: "from").
  if (mailFrom) normalizeAddress(mailFrom, q.from !== undefined ? 'from' : 'X-Kurir-From');
  const ttlHeader = header(request, 'x-kurir-ttl');
  const envelope: RawEnvelope = {
    recipients,
    mailFrom,
    priority: parsePriority(q.priority ?? header(request, 'x-kurir-priority')),
    ttlSeconds:
      q.ttl !== undefined ? ttlSeconds(q.ttl, 'ttl', maxTtlSeconds) : ttlHeader !== undefined ? ttlSeconds(ttlHeader, 'X-Kurir-Ttl', maxTtlSeconds) : undefined,
  };
  return { envelope, recipientFields: fields };
}

/** The raw-only parameters, by query name, with what a JSON submission uses instead. */
const RAW_ONLY: ReadonlyArray<{ query: keyof SubmitQuery; header: string; instead: string }> = [
  { query: 'to', header: 'X-Kurir-To', instead: 'the body fields to, cc and bcc' },
  { query: 'from', header: 'X-Kurir-From', instead: 'the body field from' },
  { query: 'priority', header: 'X-Kurir-Priority', instead: 'the body field priority' },
  { query: 'ttl', header: 'X-Kurir-Ttl', instead: 'the body field ttl' },
];

/**
 * Refuses a JSON submission carrying a raw-only envelope parameter (query or `X-Kurir-*` header), naming it.
 * Until 2 Dec 2026 they were ignored: `?to=` added no recipient, `X-Kurir-Priority: bulk` left the message normal.
 */
export function refuseRawOnlyParameters(request: FastifyRequest): void {
  const q = (request.query ?? {}) as SubmitQuery;
  for (const p of RAW_ONLY) {
    if (q[p.query] !== undefined) {
      throw new KurirError(
        'VALIDATION',
        `${p.query}: the query parameter ?${p.query}= is for raw (message/rfc822) submissions only; a JSON submission uses ${p.instead}`,
        { field: p.query },
      );
    }
    if (request.headers[p.header.toLowerCase()] !== undefined) {
      throw new KurirError('VALIDATION', `${p.header}: the header is for raw (message/rfc822) submissions only; a JSON submission uses ${p.instead}`, {
        field: p.header,
      });
    }
  }
}
