/**
 * Counts a listener's open sockets, in total and per client (IPv4 address or IPv6 /64), so a client
 * cannot hold every file descriptor of the process. Per process: each gateway caps its own listeners.
 */
import type { Socket } from 'node:net';
import type { ConnectionCapScope } from '../metrics/labels.js';
import { clientKey } from './client-address.js';

export interface ConnectionCapOptions {
  /** Open sockets over all clients. */
  maxTotal: number;
  /** Open sockets of one client; null: no per-client cap. */
  maxPerClient: number | null;
  /** Called with the open count after each change (for a gauge). */
  onChange?: (open: number) => void;
}

/** Open-socket counts of one or more listeners. */
export interface ConnectionCap {
  /**
   * Counts a new socket and returns null, or returns the cap it would exceed (the socket is then not
   * counted: the caller refuses it). A counted socket is released when it closes, or by {@link release}.
   */
  admit(socket: Socket): ConnectionCapScope | null;
  /**
   * Releases a counted socket now; later calls, and its close, change nothing. For a listener that cannot rely on
   * the socket's own close event: smtp-server removes every listener of a socket it upgrades with STARTTLS.
   */
  release(socket: Socket): void;
  /** Open sockets counted now (all clients). */
  readonly open: number;
}

/** Creates a cap; one instance may serve several listeners (e.g. SMTP submission and implicit TLS). */
export function createConnectionCap(opts: ConnectionCapOptions): ConnectionCap {
  const perClient = new Map<string, number>();
  /** The release of each counted socket, until it runs. */
  const counted = new WeakMap<Socket, () => void>();
  let open = 0;
  return {
    admit(socket) {
      const key = clientKey(socket.remoteAddress);
      const mine = perClient.get(key) ?? 0;
      if (opts.maxPerClient !== null && mine >= opts.maxPerClient) return 'ip';
      if (open >= opts.maxTotal) return 'total';
      open += 1;
      perClient.set(key, mine + 1);
      opts.onChange?.(open);
      const release = (): void => {
        if (counted.get(socket) !== release) return;
        counted.delete(socket);
        open -= 1;
        const left = (perClient.get(key) ?? 1) - 1;
        if (left > 0) perClient.set(key, left);
        else perClient.delete(key);
        opts.onChange?.(open);
      };
      counted.set(socket, release);
      socket.once('close', release);
      return null;
    },
    release(socket) {
      counted.get(socket)?.();
    },
    get open() {
      return open;
    },
  };
}
