/**
 * Test helpers for raw client connections: a line-by-line SMTP dialogue that also reports when the
 * server closes the connection, and an HTTP request from a chosen loopback source address
 * (127.0.0.2, 127.0.0.3, …: each is a different client IP to the gateway).
 */
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';

/** `AUTH PLAIN` initial response for a user name and password. */
export function plainToken(user: string, pass: string): string {
  return Buffer.from(`\0${user}\0${pass}`).toString('base64');
}

/** A minimal SMTP client: one command, one (possibly multi-line) reply; '' once the server has closed. */
export class SmtpDialog {
  /** The first line the server sent (220 greeting, or a 421 refusal). */
  greeting = '';
  /** Resolves (with Date.now()) when the server closes the connection. */
  readonly closed: Promise<number>;
  isClosed = false;
  private buffer = '';
  private replies: string[] = [];
  private waiting: Array<(reply: string) => void> = [];

  private constructor(private socket: net.Socket) {
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.isClosed = true;
        for (const w of this.waiting.splice(0)) w('');
        resolve(Date.now());
      }),
    );
    socket.on('error', () => undefined);
    this.attach();
  }

  private attach(): void {
    this.socket.on('data', (chunk: Buffer) => {
      this.buffer += chunk.toString('latin1');
      let m: RegExpExecArray | null;
      while ((m = /^((?:\d{3}-[^\r\n]*\r\n)*\d{3}(?: [^\r\n]*)?)\r\n/.exec(this.buffer))) {
        this.buffer = this.buffer.slice(m[0].length);
        const waiter = this.waiting.shift();
        if (waiter) waiter(m[1]);
        else this.replies.push(m[1]);
      }
    });
  }

  /** Connects (from `localAddress` when given; over TLS from the start with `implicitTls`) and waits for the server's first reply. */
  static async open(port: number, localAddress?: string, implicitTls = false): Promise<SmtpDialog> {
    const socket = implicitTls
      ? tls.connect({ socket: net.connect({ port, host: '127.0.0.1', localAddress }), rejectUnauthorized: false })
      : net.connect({ port, host: '127.0.0.1', localAddress });
    await new Promise((resolve, reject) => socket.once(implicitTls ? 'secureConnect' : 'connect', resolve).once('error', reject));
    const d = new SmtpDialog(socket);
    d.greeting = await d.reply();
    return d;
  }

  reply(): Promise<string> {
    const ready = this.replies.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.isClosed) return Promise.resolve('');
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  cmd(line: string): Promise<string> {
    if (!this.isClosed) this.socket.write(`${line}\r\n`);
    return this.reply();
  }

  /** STARTTLS (any certificate); throws unless the server answers 220 and the handshake completes. */
  async starttls(): Promise<void> {
    const ready = await this.cmd('STARTTLS');
    if (!/^220 /.test(ready)) throw new Error(`STARTTLS refused: ${ready}`);
    this.socket.removeAllListeners('data');
    const secure = tls.connect({ socket: this.socket, rejectUnauthorized: false });
    await new Promise((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
    this.socket = secure;
    this.attach();
  }

  /** EHLO then AUTH PLAIN; returns the AUTH reply. */
  async auth(user: string, pass: string): Promise<string> {
    if (!/^250/.test(await this.cmd('EHLO client.test'))) throw new Error('EHLO refused');
    return this.cmd(`AUTH PLAIN ${plainToken(user, pass)}`);
  }

  /** MAIL FROM, a RCPT TO for each of `to`, then DATA; throws with the reply unless they are answered 250 and 354. */
  async startMessage(from: string, to: string[]): Promise<void> {
    for (const [line, expected] of [[`MAIL FROM:<${from}>`, '250'], ...to.map((r) => [`RCPT TO:<${r}>`, '250']), ['DATA', '354']]) {
      const reply = await this.cmd(line);
      if (!reply.startsWith(`${expected} `)) throw new Error(`${line}: ${reply}`);
    }
  }

  /** Also hands every chunk the client reads (after TLS, every decrypted record) to `listener`. */
  onData(listener: (chunk: Buffer) => void): void {
    this.socket.on('data', listener);
  }

  /** Writes `data` as it is, waiting for no reply (the body of a DATA, say). */
  write(data: string): void {
    if (!this.isClosed) this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** One HTTP request from `localAddress` on a fresh connection; answers status, headers and body text. */
export function httpFrom(
  localAddress: string,
  port: number,
  req: { method?: string; path: string; headers?: Record<string, string>; body?: string },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const r = http.request(
      { host: '127.0.0.1', port, localAddress, agent: false, method: req.method ?? 'GET', path: req.path, headers: req.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    r.on('error', reject);
    r.end(req.body);
  });
}
