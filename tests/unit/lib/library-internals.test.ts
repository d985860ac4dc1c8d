/**
 * The internals of smtp-server, nodemailer and mailauth that Kurir reaches into (package.json pins
 * these three exactly). Each check names the internal and the Kurir file relying on it, so an upgrade
 * that changes one fails here, loudly, rather than somewhere downstream:
 * - smtp-server: SMTPServer#connect, #connections and the session id given to #onClose (src/smtp/hooked-server.ts),
 *   SMTPServer#server (listen errors and bound ports), SMTPConnection#send's `context === false`
 *   (registry enhanced codes), dispatch to an instance's `handler_AUTH` (cleartext AUTH refusal), MAIL and RCPT
 *   parsing through an instance's `_parseAddressCommand` (quoted local parts, src/smtp/quoted-local-parts.ts);
 * - nodemailer: the deep imports lib/smtp-connection, lib/mail-composer, lib/addressparser, and
 *   SMTPConnection's private `_socket` (TCP_NODELAY in src/delivery/smtp-client.ts, certificate
 *   verdicts in src/delivery/tls-failure.ts) and `upgrading` flag, and the reply queue, command writer, body
 *   stream and extension list that src/delivery/pipelined-transaction.ts drives;
 * - mailauth: the deep imports lib/tools, lib/dkim/body, lib/dkim/header (src/dkim/signer.ts) and
 *   lib/mta-sts (src/delivery/mta-sts.ts); that the signatures built from them verify is
 *   tests/unit/dkim/signer.test.ts's job (mailauth's verifier against loopback DNS).
 * Real servers on loopback; no mocks.
 */
import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import { dkimBody } from 'mailauth/lib/dkim/body/index.js';
import { generateCanonicalizedHeader } from 'mailauth/lib/dkim/header/index.js';
import { parsePolicy, resolvePolicy } from 'mailauth/lib/mta-sts.js';
import { formatSignatureHeaderLine, getSigningHeaderLines, parseHeaders } from 'mailauth/lib/tools.js';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import MailComposer from 'nodemailer/lib/mail-composer/index.js';
import SMTPConnection from 'nodemailer/lib/smtp-connection/index.js';
import { SMTPServer } from 'smtp-server';
import type { SMTPConnection as ServerConnection } from 'smtp-server/lib/smtp-connection.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../../helpers/receiver.js';
import { SmtpDialog } from '../../helpers/smtp-dialog.js';

/** Fails with a message naming the internal that changed and who relies on it. */
function internal(what: string, usedBy: string, ok: boolean, seen?: unknown): void {
  expect(ok, `library internal changed: ${what} (relied on by ${usedBy})${seen === undefined ? '' : `; found: ${String(seen)}`}`).toBe(true);
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('pins', () => {
  it('pins the libraries whose internals are used to exact versions', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> };
    for (const name of ['smtp-server', 'nodemailer', 'mailauth']) {
      const pinned = pkg.dependencies[name];
      expect(pinned, `${name} must be pinned to an exact version in package.json (its internals are used), not ${pinned}`).toMatch(/^\d+\.\d+\.\d+$/);
      const installed = (JSON.parse(readFileSync(`node_modules/${name}/package.json`, 'utf8')) as { version: string }).version;
      expect(installed, `${name} installed (${installed}) is not the pinned ${pinned}: run npm ci`).toBe(pinned);
    }
  });
});

describe('smtp-server internals (src/smtp/intake-server.ts, src/feedback/bounce-server.ts)', () => {
  /** A server like HookedSmtpServer: records what connect() saw and the connection it added. */
  async function hookedServer(): Promise<{ port: number; seen: Array<{ socket: unknown; added: ServerConnection | undefined }>; server: SMTPServer }> {
    const seen: Array<{ socket: unknown; added: ServerConnection | undefined }> = [];
    class Hooked extends SMTPServer {
      override connect(...args: Parameters<SMTPServer['connect']>): void {
        super.connect(...args);
        let newest: ServerConnection | undefined;
        for (const c of this.connections) newest = c;
        seen.push({ socket: args[0], added: newest });
      }
    }
    const server = new Hooked({
      authOptional: true,
      hideENHANCEDSTATUSCODES: false,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData: (s, _x, cb) => s.resume().on('end', () => cb()),
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    internal('SMTPServer#server is the net.Server listening', 'listenOn(): errors and bound ports', server.server instanceof net.Server);
    return { port: (server.server.address() as AddressInfo).port, seen, server };
  }

  it('calls connect(socket) per connection and adds the new SMTPConnection to the connections Set', async () => {
    const { port, seen, server } = await hookedServer();
    const d = await SmtpDialog.open(port);
    cleanups.push(() => d.close());
    internal(
      'SMTPServer#connect(socket, …) is called for each accepted socket',
      'HookedSmtpServer.connect (connection caps)',
      seen.length === 1 && seen[0].socket instanceof net.Socket,
      seen.length,
    );
    internal(
      'SMTPServer#connections is a Set holding the connection just created, last',
      'HookedSmtpServer.connect (harden each connection)',
      server.connections instanceof Set && seen[0].added !== undefined,
    );
    const conn = seen[0].added as ServerConnection;
    internal(
      'SMTPConnection#remoteAddress and #secure',
      'harden(): cleartext AUTH rule',
      conn.remoteAddress === '127.0.0.1' && conn.secure === false,
      `${conn.remoteAddress} ${conn.secure}`,
    );
    internal('SMTPConnection#send and #handler_AUTH are methods', 'harden()', typeof conn.send === 'function' && typeof conn.handler_AUTH === 'function');
  });

  it('passes onClose the session whose id is its SMTPConnection id, once per connection', async () => {
    const closed: string[] = [];
    const ids: string[] = [];
    class Hooked extends SMTPServer {
      override connect(...args: Parameters<SMTPServer['connect']>): void {
        super.connect(...args);
        let newest: ServerConnection | undefined;
        for (const c of this.connections) newest = c;
        ids.push((newest as unknown as { id: string }).id);
      }
    }
    const server = new Hooked({ authOptional: true, disabledCommands: ['STARTTLS'], logger: false, onClose: (session) => void closed.push(session.id) });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const d = await SmtpDialog.open((server.server.address() as AddressInfo).port);
    expect(await d.cmd('QUIT')).toMatch(/^221 /);
    await d.closed;
    for (let i = 0; i < 50 && closed.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    internal(
      'SMTPServer#onClose(session) gets the session whose id is SMTPConnection#id, once',
      'HookedSmtpServer: frees the connection-cap slot of a session that ended',
      closed.length === 1 && ids.length === 1 && closed[0] === ids[0],
      `${closed.join(',')} / ${ids.join(',')}`,
    );
  });

  it('adds its own enhanced status code unless send() is given context false', async () => {
    const { port, seen } = await hookedServer();
    const d = await SmtpDialog.open(port);
    cleanups.push(() => d.close());
    expect(await d.cmd('EHLO client.test')).toMatch(/^250/);
    const conn = seen[0].added as ServerConnection;
    conn.send(550, 'plain text');
    const withDefault = await d.reply();
    internal(
      "send(code, text) prefixes smtp-server's own enhanced code",
      'harden(): the reason context false is passed',
      /^550 5\.\d+\.\d+ plain text$/.test(withDefault),
      withDefault,
    );
    conn.send(550, '5.7.1 Kurir registry code', false);
    const asGiven = await d.reply();
    internal(
      'send(code, text, false) sends the text as given',
      'harden(): registry codes such as 550 5.7.1',
      asGiven === '550 5.7.1 Kurir registry code',
      asGiven,
    );
  });

  it('dispatches AUTH to the handler_AUTH property of the connection instance', async () => {
    const { port, seen } = await hookedServer();
    const d = await SmtpDialog.open(port);
    cleanups.push(() => d.close());
    expect(await d.cmd('EHLO client.test')).toMatch(/^250/);
    const conn = seen[0].added as ServerConnection;
    conn.handler_AUTH = (_command, callback) => {
      conn.send(538, '5.7.11 replaced handler', false);
      callback();
    };
    const reply = await d.cmd('AUTH PLAIN AGZvbwBiYXI=');
    internal(
      'commands are looked up as this["handler_" + COMMAND] at call time',
      'harden(): 538 5.7.11 before any credential',
      reply === '538 5.7.11 replaced handler',
      reply,
    );
  });
  it('parses MAIL FROM and RCPT TO with the _parseAddressCommand property of the connection instance', async () => {
    const { port, seen } = await hookedServer();
    const d = await SmtpDialog.open(port);
    cleanups.push(() => d.close());
    expect(await d.cmd('EHLO client.test')).toMatch(/^250/);
    const conn = seen[0].added as ServerConnection;
    const calls: string[] = [];
    const parse = conn._parseAddressCommand.bind(conn);
    conn._parseAddressCommand = (name, command) => {
      calls.push(`${name}|${command.toString()}`);
      return parse(name, command);
    };
    const replies = [await d.cmd('MAIL FROM:<a@example.test> SIZE=10'), await d.cmd('RCPT TO:<b@example.test>')];
    internal(
      'handler_MAIL and handler_RCPT call this._parseAddressCommand(name, command line) at call time',
      'withQuotedLocalParts() in harden()',
      calls.join(',') === 'mail from|MAIL FROM:<a@example.test> SIZE=10,rcpt to|RCPT TO:<b@example.test>' && replies.every((r) => r.startsWith('250')),
      `${calls.join(',')} ${replies.join(' / ')}`,
    );
  });
});

describe('nodemailer internals (src/delivery, src/intake)', () => {
  let receiver: Receiver;

  it('exposes the session socket as _socket (a TLSSocket after STARTTLS) and an upgrading flag', async () => {
    receiver = await startReceiver({ tls: true });
    cleanups.push(() => receiver.close());
    const conn = new SMTPConnection({
      host: '127.0.0.1',
      port: receiver.port,
      name: 'gw.test',
      tls: { rejectUnauthorized: false },
      logger: false,
    } as ConstructorParameters<typeof SMTPConnection>[0]);
    conn.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      conn.once('error', reject);
      conn.connect(() => resolve());
    });
    cleanups.push(() => conn.close());
    const socket = (conn as unknown as { _socket?: unknown })._socket;
    internal(
      'SMTPConnection#_socket is the socket of the session',
      'smtp-client.ts (setNoDelay) and tls-failure.ts (authorized, authorizationError)',
      socket instanceof TLSSocket,
      socket?.constructor?.name,
    );
    const tls = socket as TLSSocket;
    internal(
      '_socket.setNoDelay exists',
      'smtp-client.ts: TCP_NODELAY (45 ms per message without it, docs/benchmarks.md)',
      typeof tls.setNoDelay === 'function',
    );
    internal(
      '_socket.authorized is false for an untrusted certificate, with authorizationError set',
      'tls-failure.ts: RFC 8460 result types',
      tls.authorized === false && typeof tls.authorizationError !== 'undefined',
      `${tls.authorized} ${String(tls.authorizationError)}`,
    );
    internal(
      'SMTPConnection#upgrading is a boolean flag',
      'tls-failure.ts: a failure during STARTTLS',
      typeof (conn as unknown as { upgrading?: unknown }).upgrading === 'boolean',
    );
    internal('SMTPConnection#secure is true after STARTTLS', 'smtp-client.ts sessionTls', conn.secure === true);
    // Without these, canPipeline says no and every transaction goes through nodemailer's send: slower, never lost.
    const session = conn as unknown as Record<string, unknown>;
    const used = 'pipelined-transaction.ts (RFC 2920 pipelining)';
    const extensions = session._supportedExtensions;
    internal(
      'SMTPConnection#_supportedExtensions lists PIPELINING when offered',
      used,
      Array.isArray(extensions) && extensions.includes('PIPELINING'),
      extensions,
    );
    internal(
      'SMTPConnection#_responseActions is the queue of reply handlers, empty between commands',
      used,
      Array.isArray(session._responseActions) && session._responseActions.length === 0,
    );
    internal(
      'SMTPConnection#_sendCommand and #_createSendStream are methods',
      used,
      typeof session._sendCommand === 'function' && typeof session._createSendStream === 'function',
    );
    internal('SMTPConnection#_destroyed is false on an open session', used, session._destroyed === false);
  });

  it('builds a message with lib/mail-composer and parses addresses with lib/addressparser', async () => {
    const raw = await new Promise<Buffer>((resolve, reject) =>
      new MailComposer({ from: 'a@example.test', to: 'b@dest.test', subject: 'hi', text: 'body' })
        .compile()
        .build((err, out) => (err ? reject(err) : resolve(out))),
    );
    internal(
      'new MailComposer(mail).compile().build(cb) yields the RFC 5322 message',
      'src/intake/compose.ts',
      Buffer.isBuffer(raw) && /^Subject: hi$/m.test(raw.toString()),
      raw.length,
    );
    const parsed = addressparser('Ann <ann@example.test>, "B, C" <bc@example.test>', { flatten: true });
    internal(
      'addressparser(value, { flatten: true }) returns { name, address } objects',
      'src/intake/headers.ts',
      JSON.stringify(parsed) ===
        JSON.stringify([
          { address: 'ann@example.test', name: 'Ann' },
          { address: 'bc@example.test', name: 'B, C' },
        ]),
      JSON.stringify(parsed),
    );
  });
});

describe('mailauth internals (src/dkim/signer.ts, src/delivery/mta-sts.ts)', () => {
  it('exports the DKIM building blocks the signer uses, with the shapes it expects', () => {
    const { parsed } = parseHeaders(Buffer.from('From: a@example.test\r\nSubject: hi\r\nTo: b@dest.test'));
    internal(
      'tools.parseHeaders(buf).parsed[] has key and line',
      'signer.ts',
      parsed.length === 3 && parsed[0].key === 'from' && Buffer.isBuffer(parsed[0].line),
      JSON.stringify(parsed.map((p) => p.key)),
    );
    const selection = getSigningHeaderLines(parsed, 'From:Subject');
    internal(
      'tools.getSigningHeaderLines(parsed, names) → { keys, headers }, bottom-up',
      'signer.ts',
      selection.keys === 'Subject: From' && selection.headers.length === 2,
      selection.keys,
    );
    const hasher = dkimBody('relaxed', 'sha256', false);
    hasher.update(Buffer.from('body\r\n'));
    internal('dkim/body.dkimBody(c, algo, max) is an incremental hasher', 'signer.ts', typeof hasher.digest('base64') === 'string');
    internal('dkim/header.generateCanonicalizedHeader is a function', 'signer.ts', typeof generateCanonicalizedHeader === 'function');
    const line = formatSignatureHeaderLine('DKIM', { v: '1', a: 'rsa-sha256', d: 'example.test', s: 'k', b: 'AAAA' }, true);
    internal(
      'tools.formatSignatureHeaderLine("DKIM", values, folded) → a DKIM-Signature header',
      'signer.ts',
      /^DKIM-Signature: /.test(line),
      line.slice(0, 40),
    );
  });

  it('exports the MTA-STS policy functions', () => {
    const policy = parsePolicy('version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n');
    internal(
      'mta-sts.parsePolicy(text) → { mode, mx, maxAge }',
      'src/delivery/mta-sts.ts',
      policy.mode === 'enforce' && policy.mx?.includes('mx.example.test') === true && policy.maxAge === 86400,
      JSON.stringify(policy),
    );
    internal('mta-sts.resolvePolicy is a function', 'src/delivery/mta-sts.ts', typeof resolvePolicy === 'function');
  });
});
