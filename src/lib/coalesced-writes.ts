/**
 * One send per event-loop turn on a socket. ioredis writes each command to its socket at once, and nodemailer
 * writes a message's body and its final dot separately, so under load the gateway made a send system call per
 * command, and on loopback each call also runs the receiving side's TCP work: about a fifth of the gateway's CPU in
 * the bench profile (docs/benchmarks.md). Corking the socket at the first write of a turn and uncorking it in that
 * turn's check phase (`setImmediate`) sends everything written while the turn's I/O callbacks ran in one `writev`
 * (one TLS record on a TLS socket). A write waits until the end of the turn that made it, or while a
 * `holdSocketWrites` hold lasts.
 */
import type { Socket } from 'node:net';

/** A wrapped socket's state: whether a flush is due, and how many holds keep it corked past its turn. */
interface Coalescing {
  corked: boolean;
  holds: number;
  flush(): void;
}

/** The state of a socket whose `write` is already wrapped. */
const STATE = Symbol('kurir.coalescedWrites');
type Wrapped = Socket & { [STATE]?: Coalescing };

/** Wraps `socket.write` so that writes within one event-loop turn leave together; a second call does nothing. */
export function coalesceSocketWrites(socket: Socket): void {
  const wrapped = socket as Wrapped;
  if (wrapped[STATE]) return;
  const write = socket.write.bind(socket) as (...args: unknown[]) => boolean;
  const state: Coalescing = {
    corked: false,
    holds: 0,
    flush() {
      if (!state.corked || state.holds > 0) return;
      state.corked = false;
      socket.uncork();
    },
  };
  wrapped[STATE] = state;
  socket.write = ((...args: unknown[]): boolean => {
    if (!state.corked && !socket.destroyed) {
      state.corked = true;
      socket.cork();
      setImmediate(state.flush);
    }
    return write(...args);
  }) as Socket['write'];
}

/**
 * Keeps what is written to a coalescing socket (see {@link coalesceSocketWrites}) from leaving at the end of this turn,
 * until the returned release is called; then it leaves at the end of the release's turn. For a reply that should
 * travel with one that is on its way (RFC 2920 lets a server hold the replies of a pipelined group). The release
 * must be called on every path; a second call does nothing. On a socket that does not coalesce (or none), a no-op.
 */
export function holdSocketWrites(socket: Socket | undefined): () => void {
  const state = (socket as Wrapped | undefined)?.[STATE];
  if (!state) return () => undefined;
  state.holds++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    state.holds--;
    if (state.holds === 0 && state.corked) setImmediate(state.flush);
  };
}
