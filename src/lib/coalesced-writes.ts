/**
 * One send per event-loop turn on a socket. ioredis writes each command to its socket at once, and nodemailer
 * writes a message's body and its final dot separately, so under load the gateway made a send system call per
 * command, and on loopback each call also runs the receiving side's TCP work: about a fifth of the gateway's CPU in
 * the bench profile (docs/benchmarks.md). Corking the socket at the first write of a turn and uncorking it in that
 * turn's check phase (`setImmediate`) sends everything written while the turn's I/O callbacks ran in one `writev`
 * (one TLS record on a TLS socket). A write waits at most until the end of the turn that made it.
 */
import type { Socket } from 'node:net';

/** Marks a socket whose `write` is already wrapped. */
const WRAPPED = Symbol('kurir.coalescedWrites');

/** Wraps `socket.write` so that writes within one event-loop turn leave together; a second call does nothing. */
export function coalesceSocketWrites(socket: Socket): void {
  const marked = socket as Socket & { [WRAPPED]?: true };
  if (marked[WRAPPED]) return;
  marked[WRAPPED] = true;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  let corked = false;
  const flush = (): void => {
    corked = false;
    socket.uncork();
  };
  socket.write = ((...args: unknown[]): boolean => {
    if (!corked && !socket.destroyed) {
      corked = true;
      socket.cork();
      setImmediate(flush);
    }
    return write(...args);
  }) as Socket['write'];
}
