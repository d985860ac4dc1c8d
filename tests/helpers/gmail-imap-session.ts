/**
 * One connection to the Gmail IMAP test double (tests/helpers/gmail-imap.ts, where its sources are cited): runs
 * each command against the shared GmailStore and writes the answers.
 */
import { astring, headerFields, inSet, internalDate, tokenize, type Token } from './gmail-imap-protocol.js';
import { matchesGmRaw, type GmailMessage, type GmailStore } from './gmail-imap-store.js';

// The example CAPABILITY answer of the imap-extensions page, plus SPECIAL-USE and UIDPLUS (both advertised by
// imap.gmail.com); LITERAL+ and IDLE are left out because imapflow then needs neither.
export const CAPS = 'IMAP4rev1 UNSELECT NAMESPACE QUOTA ID CHILDREN X-GM-EXT-1 SPECIAL-USE UIDPLUS';

/** One client connection: its authentication, its selected folder and that folder's \Deleted marks. */
export class Session {
  authenticated = false;
  awaitingSasl: string | null = null;
  private selected: { folder: NonNullable<ReturnType<GmailStore['folder']>>; view: Array<{ uid: number; msg: GmailMessage }>; readOnly: boolean } | null = null;
  private readonly deleted = new Map<string, Set<number>>();

  constructor(
    private readonly store: GmailStore,
    private readonly account: { user: string; pass: string },
    readonly send: (line: string) => void,
    private readonly onCommand: (command: string, args: Token[]) => void,
  ) {}

  /** Runs one command; false once the client logged out. */
  handle(line: Buffer): boolean {
    if (this.awaitingSasl) {
      const tag = this.awaitingSasl;
      this.awaitingSasl = null;
      this.plain(tag, line.toString('latin1'));
      return true;
    }
    const [tag, ...rest] = tokenize(line) as string[];
    let cmd = String(rest.shift() ?? '').toUpperCase();
    if (cmd === 'UID') cmd = `UID ${String(rest.shift() ?? '').toUpperCase()}`;
    try {
      this.onCommand(cmd, rest);
      return this.run(tag, cmd, rest);
    } catch (err) {
      this.send(`${tag} BAD ${(err as Error).message}`);
      return true;
    }
  }

  private run(tag: string, cmd: string, args: Token[]): boolean {
    const ok = (text = 'Success'): void => this.send(`${tag} OK ${text}`);
    if (cmd === 'LOGOUT') {
      this.send('* BYE LOGOUT Requested');
      ok('73 good day (Success)');
      return false;
    }
    if (cmd === 'CAPABILITY') {
      this.send(`* CAPABILITY ${CAPS}${this.authenticated ? '' : ' AUTH=PLAIN'}`);
      ok();
    } else if (cmd === 'NOOP') {
      this.announce();
      ok();
    } else if (cmd === 'ID') {
      this.send('* ID ("name" "GImap" "vendor" "Google, Inc." "support-url" "http://mail.google.com/support")');
      ok();
    } else if (cmd === 'LOGIN') {
      this.login(tag, String(args[0]), String(args[1]));
    } else if (cmd === 'AUTHENTICATE') {
      if (String(args[0]).toUpperCase() !== 'PLAIN') this.send(`${tag} NO [CANNOT] Unsupported mechanism`);
      else if (args[1] !== undefined) this.plain(tag, String(args[1]));
      else {
        this.awaitingSasl = tag;
        this.send('+ ');
      }
    } else if (!this.authenticated) {
      this.send(`${tag} BAD Command not valid before authentication`);
    } else if (cmd === 'NAMESPACE') {
      this.send('* NAMESPACE (("" "/")) NIL NIL');
      ok();
    } else if (cmd === 'ENABLE') {
      this.send('* ENABLED');
      ok();
    } else if (cmd === 'GETQUOTAROOT') {
      this.send(`* QUOTAROOT ${astring(String(args[0]))} ""`);
      this.send('* QUOTA "" (STORAGE 12 15728640)');
      ok();
    } else if (cmd === 'LIST' || cmd === 'LSUB') {
      // Every folder is subscribed, so LSUB answers what LIST does.
      for (const m of this.store.list()) this.send(`* ${cmd} (${m.attributes.filter(Boolean).join(' ')}) "/" ${astring(m.path)}`);
      ok();
    } else if (cmd === 'SELECT' || cmd === 'EXAMINE') {
      this.select(tag, String(args[0]), cmd === 'EXAMINE');
    } else if (!this.selected) {
      this.send(`${tag} BAD No mailbox selected`);
    } else if (cmd === 'CLOSE' || cmd === 'UNSELECT') {
      if (cmd === 'CLOSE' && !this.selected.readOnly) this.expunge(null, false);
      this.selected = null;
      ok();
    } else if (cmd === 'SEARCH' || cmd === 'UID SEARCH') {
      const hits = this.selected.view.filter((e, i) => this.matches(args, e, i + 1));
      this.send(`* SEARCH${hits.map((e) => ` ${cmd === 'UID SEARCH' ? e.uid : this.selected!.view.indexOf(e) + 1}`).join('')}`);
      ok('SEARCH completed (Success)');
    } else if (cmd === 'FETCH' || cmd === 'UID FETCH') {
      this.fetch(String(args[0]), args[1], cmd === 'UID FETCH');
      ok('Success');
    } else if (cmd === 'STORE' || cmd === 'UID STORE') {
      this.storeFlags(String(args[0]), String(args[1]), args[2], cmd === 'UID STORE');
      ok();
    } else if (cmd === 'EXPUNGE' || cmd === 'UID EXPUNGE') {
      this.expunge(cmd === 'UID EXPUNGE' ? String(args[0]) : null, true);
      ok();
    } else {
      this.send(`${tag} BAD Unknown command (not in the Gmail test double)`);
    }
    return true;
  }

  private login(tag: string, user: string, pass: string): void {
    this.authenticated = user === this.account.user && pass === this.account.pass;
    if (this.authenticated) this.send(`${tag} OK [CAPABILITY ${CAPS}] ${user} authenticated (Success)`);
    else this.send(`${tag} NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)`);
  }

  private plain(tag: string, b64: string): void {
    const [, user = '', pass = ''] = Buffer.from(b64.trim(), 'base64').toString('utf8').split('\0');
    this.login(tag, user, pass);
  }

  private select(tag: string, path: string, readOnly: boolean): void {
    const folder = this.store.folder(path);
    if (!folder) {
      this.send(`${tag} NO [NONEXISTENT] Unknown Mailbox: ${path} (Failure)`);
      return;
    }
    const view = this.store.view(folder);
    this.selected = { folder, view, readOnly };
    this.send('* FLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing)');
    this.send('* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Draft \\Deleted \\Seen $NotPhishing $Phishing \\*)] Flags permitted.');
    this.send(`* OK [UIDVALIDITY ${folder.uidValidity}] UIDs valid.`);
    this.send(`* ${view.length} EXISTS`);
    this.send('* 0 RECENT');
    this.send(`* OK [UIDNEXT ${folder.uidNext}] Predicted next UID.`);
    this.send(`${tag} OK [${readOnly ? 'READ-ONLY' : 'READ-WRITE'}] ${folder.path} selected. (Success)`);
  }

  /** New mail in the selected folder since SELECT: appended to the view and announced with EXISTS. */
  private announce(): void {
    const s = this.selected;
    if (!s) return;
    const known = new Set(s.view.map((e) => e.msg.id));
    const fresh = this.store.view(s.folder).filter((e) => !known.has(e.msg.id));
    if (!fresh.length) return;
    s.view.push(...fresh);
    this.send(`* ${s.view.length} EXISTS`);
  }

  /** \\Deleted marks of the selected folder (the only flag Kurir stores; others are not kept). */
  private marks(): Set<number> {
    const key = this.selected!.folder.path;
    if (!this.deleted.has(key)) this.deleted.set(key, new Set());
    return this.deleted.get(key)!;
  }

  private flagsOf(uid: number): Set<string> {
    return this.marks().has(uid) ? new Set(['\\Deleted']) : new Set();
  }

  private matches(keys: Token[], e: { uid: number; msg: GmailMessage }, seq: number): boolean {
    const max = this.selected!.view.length;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (Array.isArray(k)) {
        if (!this.matches(k, e, seq)) return false;
        continue;
      }
      const key = k.toUpperCase();
      if (key === 'ALL') continue;
      if (key === 'CHARSET') i++;
      else if (key === 'HEADER') {
        const [name, value] = [String(keys[++i]), String(keys[++i])];
        if (!headerFields(e.msg.raw, [name]).toLowerCase().includes(value.toLowerCase())) return false;
      } else if (key === 'UID') {
        if (!inSet(String(keys[++i]), e.uid, this.selected!.view.at(-1)?.uid ?? 0)) return false;
      } else if (key === 'X-GM-RAW') {
        if (!matchesGmRaw(String(keys[++i]), e.msg)) return false;
      } else if (key === 'DELETED' || key === 'UNDELETED') {
        if (this.flagsOf(e.uid).has('\\Deleted') !== (key === 'DELETED')) return false;
      } else if (/^[\d:*,]+$/.test(key)) {
        if (!inSet(key, seq, max)) return false;
      } else throw new Error(`SEARCH key not supported by the Gmail test double: ${key}`);
    }
    return true;
  }

  private pick(set: string, byUid: boolean): Array<{ seq: number; uid: number; msg: GmailMessage }> {
    const view = this.selected!.view;
    const max = byUid ? (view.at(-1)?.uid ?? 0) : view.length;
    return view.map((e, i) => ({ seq: i + 1, ...e })).filter((e) => inSet(set, byUid ? e.uid : e.seq, max));
  }

  private fetch(set: string, items: Token, byUid: boolean): void {
    const list = (Array.isArray(items) ? items : [items]).map((x) => (Array.isArray(x) ? '' : x));
    if (byUid && !list.some((x) => x.toUpperCase() === 'UID')) list.unshift('UID');
    const folder = this.selected!.folder;
    for (const e of this.pick(set, byUid)) {
      const parts: string[] = [];
      for (const item of list) {
        const u = item.toUpperCase();
        if (u === 'UID') parts.push(`UID ${e.uid}`);
        else if (u === 'FLAGS') parts.push(`FLAGS (${[...this.flagsOf(e.uid)].join(' ')})`);
        else if (u === 'INTERNALDATE') parts.push(`INTERNALDATE ${internalDate(e.msg.internalDate)}`);
        else if (u === 'X-GM-MSGID') parts.push(`X-GM-MSGID ${e.msg.id}`);
        else if (u === 'X-GM-LABELS')
          parts.push(
            `X-GM-LABELS (${this.store
              .labelsIn(folder, e.msg)
              .map((l) => (l.startsWith('\\') ? l : astring(l)))
              .join(' ')})`,
          );
        else if (/^BODY(\.PEEK)?\[HEADER\.FIELDS \(/.test(u)) {
          const names = /\(([^)]*)\)/.exec(item)![1].split(/\s+/).filter(Boolean);
          const block = headerFields(e.msg.raw, names);
          parts.push(`BODY[HEADER.FIELDS (${names.join(' ')})] {${Buffer.byteLength(block)}}\r\n${block}`);
        } else if (u) throw new Error(`FETCH item not supported by the Gmail test double: ${item}`);
      }
      this.send(`* ${e.seq} FETCH (${parts.join(' ')})`);
    }
  }

  private storeFlags(set: string, op: string, flags: Token, byUid: boolean): void {
    const mode = op.toUpperCase();
    if (!/^[+-]?FLAGS(\.SILENT)?$/.test(mode)) throw new Error(`STORE ${op} not supported by the Gmail test double`);
    const hasDeleted = (Array.isArray(flags) ? flags : [flags]).some((n) => String(n).toLowerCase() === '\\deleted');
    const marks = this.marks();
    for (const e of this.pick(set, byUid)) {
      const on = mode.startsWith('+') ? hasDeleted || marks.has(e.uid) : mode.startsWith('-') ? !hasDeleted && marks.has(e.uid) : hasDeleted;
      if (on) marks.add(e.uid);
      else marks.delete(e.uid);
      if (!mode.endsWith('.SILENT')) this.send(`* ${e.seq} FETCH (FLAGS (${on ? '\\Deleted' : ''})${byUid ? ` UID ${e.uid}` : ''})`);
    }
  }

  /** Expunges the messages marked \Deleted (only those in `uidSet` for UID EXPUNGE), highest sequence first. */
  private expunge(uidSet: string | null, announce: boolean): void {
    const s = this.selected!;
    const deleted = this.marks();
    const max = s.view.at(-1)?.uid ?? 0;
    for (let i = s.view.length - 1; i >= 0; i--) {
      const e = s.view[i];
      if (!deleted.has(e.uid) || (uidSet && !inSet(uidSet, e.uid, max))) continue;
      this.store.expunge(s.folder, e.msg);
      deleted.delete(e.uid);
      s.view.splice(i, 1);
      if (announce) this.send(`* ${i + 1} EXPUNGE`);
    }
  }
}
