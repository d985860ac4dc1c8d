/** A runtime-managed domain's own settings, set when it is added or with PATCH /v1/domains/:domain. */
import { KurirError } from '../lib/errors.js';
import type { DomainRecord } from '../store/domain-store.js';

/** What an admin may set per domain. `rotationEveryDays: null` stops scheduled rotation for it. */
export interface DomainSettings {
  rotationEveryDays?: number | null;
  /** MTA-STS mx: lines for this domain, stored in lower case and each once; [] = back to domainKeys.mtaSts.mx. */
  mtaStsMx?: string[];
}

/** The longest scheduled-rotation period of a domain, in days (`rotationEveryDays`, `--rotate-every`). */
export const MAX_ROTATION_DAYS = 3650;

const MX_PATTERN = /^(\*\.)?(?!-)[a-z0-9.-]+\.[a-z0-9-]+$/i;

/**
 * Validates settings (the HTTP schema already checked the types; the CLI and tests may call the service directly).
 * @throws KurirError VALIDATION naming the field
 */
export function checkSettings(s: DomainSettings): DomainSettings {
  const out: DomainSettings = {};
  if (s.rotationEveryDays !== undefined) {
    const n = s.rotationEveryDays;
    // Whole days: the schedule, its warning and the month-named selectors are counted in days.
    if (n !== null && (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > MAX_ROTATION_DAYS)) {
      throw new KurirError(
        'VALIDATION',
        `rotationEveryDays: a whole number of days from 1 to ${MAX_ROTATION_DAYS}, or null (never rotate on schedule), not ${String(n)}`,
        {
          field: 'rotationEveryDays',
        },
      );
    }
    out.rotationEveryDays = n;
  }
  if (s.mtaStsMx !== undefined) {
    const bad = s.mtaStsMx.find((h) => typeof h !== 'string' || h.length > 253 || !MX_PATTERN.test(h));
    if (bad !== undefined || s.mtaStsMx.length > 20) {
      throw new KurirError(
        'VALIDATION',
        `mtaStsMx: up to 20 host names such as mx1.example.com or *.example.com${bad === undefined ? '' : ` (not ${String(bad)})`}`,
        {
          field: 'mtaStsMx',
        },
      );
    }
    // Host names in lower case, each once, as a credential's sender domains: until 2 Dec 2026 a host given twice
    // (or in two cases) was kept twice, and the policy file listed its mx: line twice.
    out.mtaStsMx = [...new Set(s.mtaStsMx.map((h) => h.toLowerCase()))];
  }
  return out;
}

/** `d` with the settings applied (an empty mtaStsMx list removes the domain's own list). */
export function applySettings(d: DomainRecord, s: DomainSettings): DomainRecord {
  const next = { ...d };
  if (s.rotationEveryDays !== undefined) next.rotationEveryDays = s.rotationEveryDays;
  if (s.mtaStsMx !== undefined) {
    if (s.mtaStsMx.length) next.mtaStsMx = s.mtaStsMx;
    else delete next.mtaStsMx;
  }
  return next;
}

/** In words, for the settings-changed event. */
export function describeSettings(s: DomainSettings): string {
  const parts: string[] = [];
  if (s.rotationEveryDays !== undefined) parts.push(`scheduled rotation ${s.rotationEveryDays === null ? 'off' : `every ${s.rotationEveryDays} days`}`);
  if (s.mtaStsMx !== undefined) parts.push(`MTA-STS mx ${s.mtaStsMx.length ? s.mtaStsMx.join(', ') : 'from the configuration'}`);
  return parts.join('; ');
}
