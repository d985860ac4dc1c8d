/**
 * Delivery status notifications: the per-recipient fields of an RFC 3464 `message/delivery-status` part.
 * Plain-text bounces are read in `plain-bounce.ts`; both produce the types of `bounce-types.ts`. Pure
 * functions over text; nothing here throws.
 */
import type { DsnAction, DsnRecipient } from './bounce-types.js';
import { addressOf, field, findReply, parseFieldGroups, stripTypePrefix, type FieldLine } from './mime.js';

export type { DsnAction, DsnFormat, DsnRecipient } from './bounce-types.js';

/** The parsed fields of one delivery-status body. */
export interface DeliveryStatus {
  reportingMta?: string;
  recipients: DsnRecipient[];
}

const ACTIONS: ReadonlySet<string> = new Set(['failed', 'delayed', 'delivered', 'relayed', 'expanded']);
const STATUS = /^\s*([245])\.(\d{1,3})\.(\d{1,3})\b/;
const RECIPIENT_FIELDS = new Set([
  'original-recipient',
  'final-recipient',
  'action',
  'status',
  'remote-mta',
  'diagnostic-code',
  'last-attempt-date',
  'will-retry-until',
  'final-log-id',
  'x-actual-recipient',
]);
const MAX_RECIPIENTS = 100;

function statusOf(value: string | undefined): string | undefined {
  const m = value ? STATUS.exec(value) : null;
  return m ? `${m[1]}.${m[2]}.${m[3]}` : undefined;
}

/** Action from its field, or inferred from the status class when the field is missing or unknown. */
function actionOf(value: string | undefined, status: string | undefined): DsnAction | undefined {
  const a = value
    ?.trim()
    .split(/[\s(;]/)[0]
    ?.toLowerCase();
  if (a && ACTIONS.has(a)) return a as DsnAction;
  if (status?.startsWith('5')) return 'failed';
  if (status?.startsWith('4')) return 'delayed';
  if (status?.startsWith('2')) return 'delivered';
  return undefined;
}

/** Builds one recipient from its fields; undefined when neither an action nor a status can be found (truncated). */
function recipientOf(fields: FieldLine[]): DsnRecipient | undefined {
  const status = statusOf(field(fields, 'status'));
  const action = actionOf(field(fields, 'action'), status);
  if (!action) return undefined;
  const r: DsnRecipient = { action };
  const address = addressOf(field(fields, 'final-recipient')) ?? addressOf(field(fields, 'x-actual-recipient'));
  const original = addressOf(field(fields, 'original-recipient'));
  if (address) r.address = address;
  if (original) r.originalRecipient = original;
  const diag = field(fields, 'diagnostic-code');
  if (diag) {
    const text = stripTypePrefix(diag);
    const reply = findReply(text);
    r.diagnostic = text.replace(/\s+/g, ' ').slice(0, 1000);
    if (reply.code !== undefined) r.code = reply.code;
    r.status = status ?? reply.enhanced;
  } else if (status) {
    r.status = status;
  }
  if (!r.status) delete r.status;
  const mta = field(fields, 'remote-mta');
  if (mta)
    r.remoteMta = stripTypePrefix(mta)
      .replace(/\s*\(.*$/, '')
      .replace(/\.$/, '')
      .slice(0, 255);
  return r;
}

/**
 * Parses a `message/delivery-status` body: the per-message group, then one group per recipient. Tolerates
 * missing blank lines between recipients (a new Final-Recipient starts a new one) and drops recipient groups
 * without an Action or Status (a truncated report).
 */
export function parseDeliveryStatus(text: string): DeliveryStatus {
  const out: DeliveryStatus = { recipients: [] };
  const groups = parseFieldGroups(text);
  let current: FieldLine[] | null = null;
  // Which fields the current recipient has, kept as fields are added: looking them up in `current` for
  // every field made one long group (a report of nothing but Remote-MTA lines) quadratic.
  let hasFinal = false;
  let hasOriginal = false;
  let described = false;
  const close = (): void => {
    if (current && out.recipients.length < MAX_RECIPIENTS) {
      const r = recipientOf(current);
      if (r) out.recipients.push(r);
    }
    current = null;
    hasFinal = hasOriginal = described = false;
  };
  for (const group of groups) {
    for (const f of group) {
      if (!RECIPIENT_FIELDS.has(f.name)) {
        if (f.name === 'reporting-mta' && !out.reportingMta) out.reportingMta = stripTypePrefix(f.value).slice(0, 255);
        continue;
      }
      // Final-Recipient and Original-Recipient come in either order; a repeated one, or one after the
      // previous recipient's Action/Status, starts the next recipient.
      const starts =
        (f.name === 'final-recipient' && (hasFinal || (hasOriginal && described))) ||
        (f.name === 'original-recipient' && (hasOriginal || (hasFinal && described)));
      if (starts) close();
      (current ??= []).push(f);
      if (f.name === 'final-recipient') hasFinal = true;
      else if (f.name === 'original-recipient') hasOriginal = true;
      else if (f.name === 'action' || f.name === 'status' || f.name === 'diagnostic-code') described = true;
    }
    close();
  }
  return out;
}
