/**
 * Request bodies the server refuses without reading: `Expect: 100-continue` answered with `100 Continue` only when a
 * route starts reading the body, and a lingering close after an answer that left a body unread, so that the
 * answer reaches a client still sending it.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** How much of a refused body is read and dropped after the answer, at most, before the connection is closed. */
export interface LingerBounds {
  maxBytes: number;
  maxMs: number;
}

const lingering = new WeakSet<Socket>();

/**
 * Makes the close Node does after the last answer on this request's connection (`Connection: close`) a lingering
 * one: it sends its FIN after the answer, then reads and drops the rest of the request body until it has all
 * arrived or the client closes its side, or `maxBytes` or `maxMs` are passed, and only then closes the socket.
 * Node's own close destroys the socket as soon as the answer is written: with the rest of a body unread the kernel
 * sends a reset, and a client that writes its whole body before reading (Python's http.client, curl without
 * `Expect`) loses the answer in it.
 *
 * Node calls `socket.destroySoon()` for that close (node:_http_server, resOnFinish); this replaces it on this one
 * socket. The body keeps flowing through Node's HTTP parser into the request, which Node drains after the answer
 * (a `data` listener on the socket itself would take it off the parser and stall it). tests/integration/
 * http-oversized-body.test.ts fails if a Node version stops calling destroySoon.
 */
export function lingerBeforeClose(req: IncomingMessage, bounds: LingerBounds): void {
  const socket = req.socket as Socket | null;
  if (!socket || socket.destroyed || lingering.has(socket)) return;
  lingering.add(socket);
  const destroySoon = socket.destroySoon;
  socket.destroySoon = function lingeringClose(this: Socket): void {
    // The body arrived meanwhile: nothing is left unread, Node's close is safe.
    if (req.complete) {
      destroySoon.call(this);
      return;
    }
    if (this.writable) this.end();
    let read = 0;
    const close = (): void => {
      clearTimeout(timer);
      this.destroy();
    };
    const timer = setTimeout(close, bounds.maxMs);
    timer.unref();
    req.on('data', (chunk: Buffer) => {
      read += chunk.length;
      if (read > bounds.maxBytes) close();
    });
    req.once('end', close);
    this.once('end', close);
    this.once('close', () => clearTimeout(timer));
    req.resume();
  };
}

/**
 * Takes over Node's answer to `Expect: 100-continue`: by default Node sends `100 Continue` before any route has
 * looked at the request, so a client whose Content-Length is over the limit, or whose key is wrong, was invited
 * to send its body only to be refused. Here the `100 Continue` goes out when the request body starts to be read
 * (fastify's body parser resumes the request stream after authentication, the admission check and its own
 * Content-Length check against the parser's bodyLimit); an answer sent before that goes out without it, and
 * Node closes the connection after it (the client may send the body anyway).
 */
export function continueWhenBodyRead(server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    req.once('resume', () => {
      if (!res.headersSent && !res.writableEnded) res.writeContinue();
    });
    server.emit('request', req, res);
  });
}
