/**
 * A TEST DOUBLE standing in for Gmail's IMAP server (imap.gmail.com), on loopback, because Gmail cannot run here
 * and Dovecot has no X-GM-EXT-1. It speaks the subset of IMAP4rev1 that imapflow and src/placement/mailbox-search.ts
 * send (read from imapflow 2.10.2 and logged in `dialogue`), and Gmail's documented X-GM-EXT-1 extension
 * (https://developers.google.com/gmail/imap/imap-extensions): the CAPABILITY list of that page's example plus
 * SPECIAL-USE and UIDPLUS, LIST with its `[Gmail]/...` layout and special-use attributes, the X-GM-LABELS fetch
 * item and the X-GM-RAW search key. Tests put messages in with a folder (INBOX or [Gmail]/Spam) and an inbox tab
 * (category), the way Gmail files mail; the mailbox model and its sources are in gmail-imap-store.ts.
 *
 * Not documented by Google, so taken from client authors' reports: X-GM-LABELS leaves out the label of the
 * selected folder (https://github.com/dlech/gmailbuttons/issues/10), so a message fetched in INBOX lists no
 * `\Inbox` while the same message fetched in All Mail does.
 *
 * Commands: CAPABILITY, ID, LOGIN, AUTHENTICATE PLAIN, NAMESPACE, ENABLE (answers nothing enabled),
 * GETQUOTAROOT, LIST, LSUB, SELECT/EXAMINE, [UID] SEARCH (ALL, HEADER, UID, X-GM-RAW, DELETED/UNDELETED),
 * [UID] FETCH (UID, FLAGS, INTERNALDATE, X-GM-MSGID, X-GM-LABELS, BODY.PEEK[HEADER.FIELDS (...)]),
 * [UID] STORE (FLAGS), EXPUNGE, UID EXPUNGE, CLOSE, UNSELECT, NOOP, LOGOUT. Plain TCP only (the seed config
 * allows `tls: false`; imapflow would use STARTTLS if offered, and this double does not offer it).
 */
import { createServer, type Socket } from 'node:net';
import { takeCommands, type Token } from './gmail-imap-protocol.js';
import { Session } from './gmail-imap-session.js';
import { GmailStore, type ExpungeBehavior, type GmailCategory, type GmailMessage } from './gmail-imap-store.js';

export type { GmailCategory } from './gmail-imap-store.js';

export interface GmailImap {
  port: number;
  store: GmailStore;
  /** Every line exchanged, `C: ` and `S: ` (LOGIN and AUTHENTICATE lines with the secret masked). */
  dialogue: string[];
  /** Delivers a message like Gmail: into INBOX (a tab by `category`) or into [Gmail]/Spam. */
  deliver(raw: string | Buffer, opts?: { folder?: 'INBOX' | '[Gmail]/Spam'; category?: GmailCategory; labels?: string[]; internalDate?: Date }): GmailMessage;
  /** Called before each command runs (e.g. to deliver mail between two folder searches). */
  onCommand?: (command: string, args: Token[]) => void;
  close(): Promise<void>;
}

/** Starts the double on 127.0.0.1 with one account. */
export async function startGmailImap(opts: { user: string; pass: string; expungeBehavior?: ExpungeBehavior }): Promise<GmailImap> {
  const store = new GmailStore(opts.expungeBehavior);
  const dialogue: string[] = [];
  const sockets = new Set<Socket>();
  const double: GmailImap = {
    port: 0,
    store,
    dialogue,
    deliver(raw, d = {}) {
      const labels = [d.folder === '[Gmail]/Spam' ? '\\Spam' : '\\Inbox', ...(d.labels ?? [])];
      return store.add({ raw: Buffer.from(raw), category: d.category ?? 'primary', labels, internalDate: d.internalDate ?? new Date() });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const session = new Session(
      store,
      opts,
      (line) => {
        dialogue.push(`S: ${line.split('\r\n')[0]}`);
        socket.write(`${line}\r\n`);
      },
      (command, args) => double.onCommand?.(command, args),
    );
    let buf: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      const { commands, rest, wantsContinuation } = takeCommands(buf);
      buf = rest;
      for (const c of commands) {
        const text = c.toString('utf8');
        const shown = session.awaitingSasl ? '***' : /^\S+ (LOGIN|AUTHENTICATE)/i.test(text) ? text.replace(/^(\S+ \S+ \S+).*/, '$1 ***') : text;
        dialogue.push(`C: ${shown}`);
        if (!session.handle(c)) socket.end();
      }
      if (wantsContinuation) socket.write('+ go ahead\r\n');
    });
    session.send('* OK Gimap ready for requests from 127.0.0.1 (Kurir test double)');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  double.port = (server.address() as { port: number }).port;
  return double;
}
