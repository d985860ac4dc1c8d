/**
 * A scripted SMTP receiver on a raw socket (an MX), for tests of the SMTP client below what smtp-server lets a
 * test say: it records every chunk the client's writes arrive in, so a test sees which commands travelled
 * together, and answers each command as the test says, multiline replies (`550-…\r\n450 …`) included.
 */
import net from 'node:net';

/** A running scripted receiver. */
export interface Scripted {
  port: number;
  /** Each `data` chunk as it arrived (latin1). */
  chunks: string[];
  /** Command lines in order (the body excluded). */
  commands: string[];
  /** Bodies received, without the final dot. */
  bodies: string[];
  close(): Promise<void>;
}

/** What the receiver answers: a reply line, `close` to drop the connection instead of answering, or `stall` to never answer. */
export type Answer = string | 'close' | 'stall';

export interface Script {
  /** The greeting (default `220 mx.scripted.test ESMTP`); `close` drops the connection at once. */
  greeting?: () => Answer;
  pipelining?: boolean;
  /** Offer STARTTLS, answer it 220, then break the TLS handshake (a receiver with broken TLS). */
  brokenStartTls?: boolean;
  mail?: (n: number) => Answer;
  rcpt?: (address: string) => Answer;
  data?: () => Answer;
  /** The reply to the end of a body; `close` drops the connection once the body's first bytes arrive. */
  final?: () => Answer;
}

const servers: Array<() => Promise<void>> = [];

/** Closes every scripted receiver started so far (call it in afterEach). */
export async function closeScripted(): Promise<void> {
  for (const close of servers.splice(0)) await close();
}

/** Starts a scripted receiver on 127.0.0.1 (an ephemeral port); it greets, offers PIPELINING unless told not to, and accepts by default. */
export async function scripted(script: Script = {}): Promise<Scripted> {
  const out = { chunks: [] as string[], commands: [] as string[], bodies: [] as string[] };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buffer = '';
    let body: string | null = null;
    let mails = 0;
    let handshake = false;
    const say = (a: Answer): void => {
      if (a === 'close') socket.destroy();
      else if (a !== 'stall') socket.write(`${a}\r\n`);
    };
    say(script.greeting?.() ?? '220 mx.scripted.test ESMTP');
    socket.on('data', (chunk: Buffer) => {
      if (handshake) return void socket.end('this is not TLS\r\n');
      out.chunks.push(chunk.toString('latin1'));
      buffer += chunk.toString('latin1');
      for (;;) {
        if (body !== null) {
          const end = buffer.indexOf('\r\n.\r\n');
          const lone = body === '' && buffer.startsWith('.\r\n');
          if (end < 0 && !lone) {
            if (script.final?.() === 'close' && buffer.length) socket.destroy();
            return;
          }
          out.bodies.push(lone ? '' : buffer.slice(0, end + 2));
          buffer = buffer.slice(lone ? 3 : end + 5);
          body = null;
          say(script.final?.() ?? '250 2.0.0 queued as Q1');
          continue;
        }
        const eol = buffer.indexOf('\r\n');
        if (eol < 0) return;
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        out.commands.push(line);
        const verb = line.slice(0, 4).toUpperCase();
        const tls = script.brokenStartTls ? '250-STARTTLS\r\n' : '';
        if (verb === 'EHLO') say(`250-mx.scripted.test\r\n${tls}${script.pipelining === false ? '' : '250-PIPELINING\r\n'}250 8BITMIME`);
        else if (verb === 'STAR' && script.brokenStartTls) {
          say('220 2.0.0 ready to start TLS');
          handshake = true;
          return;
        } else if (verb === 'MAIL') say(script.mail?.(++mails) ?? '250 2.1.0 ok');
        else if (verb === 'RCPT') say(script.rcpt?.(/<(.*)>/.exec(line)?.[1] ?? '') ?? '250 2.1.5 ok');
        else if (verb === 'DATA') {
          const a = script.data?.() ?? '354 go ahead';
          if (a.startsWith('354')) body = '';
          say(a);
        } else if (verb === 'RSET') say('250 2.0.0 reset');
        else if (verb === 'QUIT') {
          say('221 2.0.0 bye');
          socket.end();
        } else say('502 5.5.2 unknown');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async (): Promise<void> => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  servers.push(close);
  return { port: (server.address() as net.AddressInfo).port, ...out, close };
}
