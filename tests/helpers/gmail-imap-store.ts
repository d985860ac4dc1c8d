/**
 * The mailbox model of the Gmail IMAP test double (tests/helpers/gmail-imap.ts): one store of messages, each
 * with Gmail labels and an inbox category, seen through IMAP folders the way Gmail documents them.
 *
 * - Folders are labels (https://developers.google.com/gmail/imap/imap-extensions, "Access to Gmail labels"):
 *   INBOX is the `\Inbox` label, `[Gmail]/Spam` the `\Spam` label, and so on; `[Gmail]/All Mail` (SPECIAL-USE
 *   `\All`) holds every message except spam and trash, so a message in INBOX is also in All Mail.
 * - Tabs are categories, not labels: Gmail exposes them over IMAP only through X-GM-RAW search
 *   (`category:promotions`, the web search syntax: https://support.google.com/mail/answer/7190), so
 *   X-GM-LABELS never lists them.
 * - Expunging a message from a label folder removes that label; when it was the last visible folder besides All
 *   Mail, the account's `expungeBehavior` applies: archive (Gmail's default: it stays in All Mail), trash or
 *   deleteForever (https://developers.google.com/gmail/api/reference/rest/v1/ImapSettings).
 *   Expunging from Spam or Trash deletes it for good (assumed: that documentation does not say).
 */

export type GmailCategory = 'primary' | 'social' | 'promotions' | 'updates' | 'forums';
export type ExpungeBehavior = 'archive' | 'trash' | 'deleteForever';

export interface GmailMessage {
  /** X-GM-MSGID: one id across every folder the message shows in. */
  id: number;
  raw: Buffer;
  internalDate: Date;
  category: GmailCategory;
  /** Gmail labels: system ones (`\Inbox`, `\Spam`, `\Trash`, `\Important`, `\Starred`, `\Sent`, `\Draft`) and user labels. */
  labels: Set<string>;
}

interface Folder {
  path: string;
  specialUse?: string;
  /** The label that puts a message in this folder (none for All Mail). */
  label?: string;
  uidValidity: number;
  uidNext: number;
  /** X-GM-MSGID → UID in this folder; a UID is never reused. */
  uids: Map<number, number>;
}

/** Gmail's documented LIST layout (imap-extensions, "Special-Use Extension of the LIST command"). */
const LAYOUT: Array<{ path: string; specialUse?: string; label?: string }> = [
  { path: 'INBOX', label: '\\Inbox' },
  { path: '[Gmail]/All Mail', specialUse: '\\All' },
  { path: '[Gmail]/Drafts', specialUse: '\\Drafts', label: '\\Draft' },
  { path: '[Gmail]/Important', specialUse: '\\Important', label: '\\Important' },
  { path: '[Gmail]/Sent Mail', specialUse: '\\Sent', label: '\\Sent' },
  { path: '[Gmail]/Spam', specialUse: '\\Junk', label: '\\Spam' },
  { path: '[Gmail]/Starred', specialUse: '\\Flagged', label: '\\Starred' },
  { path: '[Gmail]/Trash', specialUse: '\\Trash', label: '\\Trash' },
];

const HIDDEN_FROM_ALL = ['\\Spam', '\\Trash'];

export class GmailStore {
  private readonly folders = new Map<string, Folder>();
  private readonly messages = new Map<number, GmailMessage>();
  private nextId = 1000;

  constructor(readonly expungeBehavior: ExpungeBehavior = 'archive') {
    LAYOUT.forEach((f, i) => {
      this.folders.set(f.path, { ...f, uidValidity: 1 + i, uidNext: 1, uids: new Map() });
    });
  }

  /** The LIST answer: `[Gmail]` itself is not selectable. */
  list(): Array<{ path: string; attributes: string[] }> {
    return [
      { path: 'INBOX', attributes: ['\\HasNoChildren'] },
      { path: '[Gmail]', attributes: ['\\Noselect', '\\HasChildren'] },
      ...LAYOUT.filter((f) => f.path !== 'INBOX').map((f) => ({ path: f.path, attributes: ['\\HasNoChildren', f.specialUse ?? ''] })),
    ];
  }

  folder(path: string): Folder | undefined {
    return this.folders.get(path.toUpperCase() === 'INBOX' ? 'INBOX' : path);
  }

  /** Delivers a message: it gets the labels, shows in their folders and in All Mail (unless spam or trash). */
  add(m: { raw: Buffer; category: GmailCategory; labels: string[]; internalDate: Date }): GmailMessage {
    const msg: GmailMessage = { id: this.nextId++, raw: m.raw, internalDate: m.internalDate, category: m.category, labels: new Set(m.labels) };
    this.messages.set(msg.id, msg);
    this.assignUids(msg);
    return msg;
  }

  /** Whether `msg` shows in `folder`. */
  contains(folder: Folder, msg: GmailMessage): boolean {
    if (folder.label) return msg.labels.has(folder.label) && (HIDDEN_FROM_ALL.includes(folder.label) || !HIDDEN_FROM_ALL.some((l) => msg.labels.has(l)));
    return !HIDDEN_FROM_ALL.some((l) => msg.labels.has(l));
  }

  /** The messages in `folder`, by ascending UID. */
  view(folder: Folder): Array<{ uid: number; msg: GmailMessage }> {
    const out: Array<{ uid: number; msg: GmailMessage }> = [];
    for (const msg of this.messages.values()) {
      const uid = folder.uids.get(msg.id);
      if (uid !== undefined && this.contains(folder, msg)) out.push({ uid, msg });
    }
    return out.sort((a, b) => a.uid - b.uid);
  }

  /** Labels as X-GM-LABELS reports them in `folder`: without the folder's own label (see gmail-imap.ts). */
  labelsIn(folder: Folder, msg: GmailMessage): string[] {
    return [...msg.labels].filter((l) => l !== folder.label);
  }

  /** Removes `msg` from `folder` the way Gmail expunges. */
  expunge(folder: Folder, msg: GmailMessage): void {
    if (folder.label === '\\Spam' || folder.label === '\\Trash' || !folder.label) {
      // All Mail: the message leaves every label; Spam and Trash: deleted for good.
      if (folder.label || this.expungeBehavior === 'deleteForever') this.messages.delete(msg.id);
      else if (this.expungeBehavior === 'trash') msg.labels = new Set(['\\Trash']);
      else msg.labels.clear();
    } else {
      msg.labels.delete(folder.label);
      const visible = LAYOUT.some((f) => f.label && f.label !== '\\Spam' && msg.labels.has(f.label)) || [...msg.labels].some((l) => !l.startsWith('\\'));
      if (!visible && this.expungeBehavior === 'trash') msg.labels.add('\\Trash');
      if (!visible && this.expungeBehavior === 'deleteForever') this.messages.delete(msg.id);
    }
    this.assignUids(msg);
  }

  /** Every message still stored (any folder). */
  all(): GmailMessage[] {
    return [...this.messages.values()];
  }

  private assignUids(msg: GmailMessage): void {
    if (!this.messages.has(msg.id)) return;
    for (const f of this.folders.values()) if (this.contains(f, msg) && !f.uids.has(msg.id)) f.uids.set(msg.id, f.uidNext++);
  }
}

/**
 * Whether `msg` matches an X-GM-RAW query. Only the Gmail search operators the tests need: `category:`, `in:`,
 * `label:`, `is:important`, `is:starred`, each optionally negated with `-`, all of them ANDed. Anything else
 * throws, so a query this double does not understand fails the test instead of matching wrongly.
 */
export function matchesGmRaw(query: string, msg: GmailMessage): boolean {
  return query
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .every((term) => {
      const negate = term.startsWith('-');
      const [op, value = ''] = (negate ? term.slice(1) : term).toLowerCase().split(':', 2);
      let hit: boolean;
      if (op === 'category') hit = (value === 'personal' ? 'primary' : value) === msg.category;
      else if (op === 'in' && value === 'inbox') hit = msg.labels.has('\\Inbox');
      else if (op === 'in' && value === 'spam') hit = msg.labels.has('\\Spam');
      else if (op === 'label') hit = [...msg.labels].some((l) => l.toLowerCase() === value || l.toLowerCase() === `\\${value}`);
      else if (op === 'is' && (value === 'important' || value === 'starred')) hit = msg.labels.has(`\\${value[0].toUpperCase()}${value.slice(1)}`);
      else throw new Error(`X-GM-RAW term not supported by the Gmail test double: ${term}`);
      return negate ? !hit : hit;
    });
}
