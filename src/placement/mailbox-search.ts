/**
 * One search of a seed mailbox over IMAP (imapflow): log in, check the quota, look for probes by their
 * `X-Kurir-Probe` header in INBOX, then the spam folder (SPECIAL-USE \Junk, else a known name), then every
 * other folder; read each found probe's arrival time (INTERNALDATE) and the receiver's
 * Authentication-Results, and delete it. A failure to log in or search is an answer, not an exception; a failure
 * partway answers the probes already found too.
 */
import { ImapFlow, type ListResponse } from 'imapflow';
import type { SeedConfig } from '../config/placement-schema.js';
import type { SeedErrorReason } from '../metrics/labels.js';
import { receiverVerdicts, type AuthVerdicts } from './auth-results.js';
import { PROBE_HEADER } from './probe-message.js';
import type { ImapLogin } from './seed-secrets.js';

/** A probe found in the mailbox. */
export interface FoundProbe {
  token: string;
  folder: 'inbox' | 'spam' | 'other';
  /** The IMAP mailbox it was in, e.g. `INBOX`, `Junk`, `[Gmail]/All Mail`. */
  mailbox: string;
  /** IMAP INTERNALDATE (ms): when the receiver stored it. */
  arrivedAt?: number;
  auth?: AuthVerdicts;
  /** Gmail labels (X-GM-LABELS), when the server offers them. */
  labels?: string[];
}

/**
 * A failed search still lists the probes it found (and deleted) in the folders searched before the failure:
 * they are gone from the mailbox, so a later search could not find them where they were.
 */
export type SearchOutcome = { ok: true; found: FoundProbe[] } | { ok: false; reason: SeedErrorReason; error: string; found?: FoundProbe[] };

export interface SearchOptions {
  seed: SeedConfig;
  login: ImapLogin;
  /** Tokens of the probes in flight to this seed. */
  tokens: string[];
  junkNames: readonly string[];
  skipNames: readonly string[];
  /** Probe messages with unknown tokens older than this (ms since epoch) are deleted too (late arrivals). */
  deleteUnknownBefore: number;
  timeoutMs?: number;
}

const SKIP_SPECIAL_USE = new Set(['\\Sent', '\\Drafts', '\\Trash']);
const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'CONNECT_TIMEOUT',
  'GREETING_TIMEOUT',
  'UPGRADE_TIMEOUT',
  'NoConnection',
]);

function classify(err: unknown): SeedErrorReason {
  const e = err as { authenticationFailed?: boolean; code?: string; serverResponseCode?: string; responseText?: string };
  if (e.authenticationFailed) return 'auth';
  if (e.serverResponseCode === 'OVERQUOTA' || /over ?quota|quota exceeded|mailbox (is )?full/i.test(String(e.responseText ?? ''))) return 'mailbox-full';
  if (e.code && CONNECT_CODES.has(e.code)) return 'connect';
  return 'protocol';
}

/** INBOX first, then the spam folder(s), then every other selectable folder that is not sent mail, drafts or trash. */
export function orderMailboxes(
  list: ListResponse[],
  junkNames: readonly string[],
  skipNames: readonly string[],
): Array<{ path: string; folder: FoundProbe['folder'] }> {
  const junkLower = new Set(junkNames.map((n) => n.toLowerCase()));
  const skipLower = new Set(skipNames.map((n) => n.toLowerCase()));
  const selectable = list.filter((m) => !m.flags.has('\\Noselect') && !m.flags.has('\\NonExistent'));
  const hasSpecialJunk = selectable.some((m) => m.specialUse === '\\Junk' && m.specialUseSource === 'extension');
  const isJunk = (m: ListResponse): boolean =>
    hasSpecialJunk ? m.specialUse === '\\Junk' && m.specialUseSource === 'extension' : junkLower.has(m.path.toLowerCase()) || m.specialUse === '\\Junk';
  const out: Array<{ path: string; folder: FoundProbe['folder'] }> = [];
  const inbox = selectable.find((m) => m.path.toUpperCase() === 'INBOX');
  if (inbox) out.push({ path: inbox.path, folder: 'inbox' });
  for (const m of selectable) if (m !== inbox && isJunk(m)) out.push({ path: m.path, folder: 'spam' });
  for (const m of selectable) {
    if (m === inbox || isJunk(m) || skipLower.has(m.path.toLowerCase()) || (m.specialUse && SKIP_SPECIAL_USE.has(m.specialUse))) continue;
    out.push({ path: m.path, folder: 'other' });
  }
  return out;
}

function headerValue(block: string, name: string): string | undefined {
  const m = new RegExp(`(?:^|\\r?\\n)${name}:[ \\t]*([^\\r\\n]*)`, 'i').exec(block);
  return m ? m[1].trim() : undefined;
}

/** Logs in to the seed, finds and deletes the probes with `tokens`, and answers where each was. */
export async function searchSeed(opts: SearchOptions): Promise<SearchOutcome> {
  const { seed } = opts;
  const timeout = opts.timeoutMs ?? 30_000;
  const client = new ImapFlow({
    host: seed.imap.host,
    port: seed.imap.port,
    secure: seed.imap.tls,
    tls: { rejectUnauthorized: seed.imap.verifyTls },
    auth: opts.login,
    logger: false,
    disableAutoIdle: true,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout * 2,
  });
  // imapflow emits 'error' on socket failures; the awaited command rejects as well, which is what we report.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (err) {
    return { ok: false, reason: classify(err), error: (err as Error).message };
  }
  const found: FoundProbe[] = [];
  try {
    if (client.capabilities.has('QUOTA')) {
      const quota = await client.getQuota('INBOX').catch(() => false as const);
      const s = quota ? quota.storage : undefined;
      if (s?.limit && s.usage !== undefined && s.usage >= s.limit)
        return { ok: false, reason: 'mailbox-full', error: `storage quota used: ${s.usage} of ${s.limit}` };
    }
    const gmail = client.capabilities.has('X-GM-EXT-1');
    const wanted = new Set(opts.tokens);
    for (const box of orderMailboxes(await client.list(), opts.junkNames, opts.skipNames)) {
      await client.mailboxOpen(box.path);
      // One search per folder: every probe (tokens all start with "kp"), then sorted out by token.
      const uids = await client.search({ header: { [PROBE_HEADER]: 'kp' } }, { uid: true });
      if (!uids || !uids.length) continue;
      const messages = await client.fetchAll(
        uids,
        { uid: true, internalDate: true, labels: gmail, headers: [PROBE_HEADER, 'authentication-results'] },
        { uid: true },
      );
      const remove: number[] = [];
      const mine: Array<{ uid: number; probe: FoundProbe }> = [];
      for (const msg of messages) {
        const block = msg.headers?.toString('utf8') ?? '';
        const token = headerValue(block, PROBE_HEADER) ?? '';
        const arrivedAt = msg.internalDate ? new Date(msg.internalDate).getTime() : undefined;
        if (!wanted.has(token)) {
          if (arrivedAt !== undefined && arrivedAt < opts.deleteUnknownBefore) remove.push(msg.uid);
          continue;
        }
        wanted.delete(token);
        const probe: FoundProbe = { token, folder: box.folder, mailbox: box.path, arrivedAt, auth: receiverVerdicts(block) };
        if (msg.labels) probe.labels = [...msg.labels];
        mine.push({ uid: msg.uid, probe });
        remove.push(msg.uid);
      }
      // Gmail shows a message in every folder one of its labels names: a probe delivered after INBOX was searched
      // turns up in All Mail (or Important) still labelled \Inbox. It is in the inbox all the same.
      if (gmail && box.folder === 'other')
        for (const m of mine) if (m.probe.labels?.some((l) => l.toLowerCase() === '\\inbox')) Object.assign(m.probe, { folder: 'inbox', mailbox: 'INBOX' });
      // Gmail shows every tab in INBOX over IMAP: a probe outside "Primary" went to another tab.
      const inInbox = mine.filter((m) => m.probe.folder === 'inbox');
      if (gmail && inInbox.length) {
        const primary = await client.search({ uid: inInbox.map((m) => m.uid).join(','), gmraw: 'category:primary' }, { uid: true });
        const inPrimary = new Set(primary || []);
        for (const m of inInbox) if (!inPrimary.has(m.uid)) Object.assign(m.probe, { folder: 'other', mailbox: 'INBOX (Gmail tab)' });
      }
      found.push(...mine.map((m) => m.probe));
      if (remove.length) await client.messageDelete(remove, { uid: true });
      if (!wanted.size) break;
    }
    return { ok: true, found };
  } catch (err) {
    // Probes found in earlier folders were (or may have been) deleted already: never drop them.
    return { ok: false, reason: classify(err), error: (err as Error).message, found };
  } finally {
    await client.logout().catch(() => client.close());
  }
}
