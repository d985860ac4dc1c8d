/**
 * A receiver (tests/helpers/receiver.ts, no TLS) that holds its DATA reply for one recipient: the first DATA
 * to `address` waits until `release()` and then gets `reply`; later ones are accepted. For tests of an attempt
 * whose outcome arrives after something else has happened meanwhile (a cancel, another run of the job).
 */
import { startReceiver, type Receiver, type Reply } from './receiver.js';

export interface HeldReceiver {
  receiver: Receiver;
  /** DATA commands seen for the address so far. */
  dataAttempts(): number;
  /** Lets the held reply go (safe twice). */
  release(): void;
}

/** Starts a receiver whose first DATA reply to `address` waits for `release()`, then is `reply`. */
export async function startHeldReceiver(address: string, reply: Reply): Promise<HeldReceiver> {
  let attempts = 0;
  let release: () => void = () => undefined;
  const released = new Promise<void>((resolve) => (release = resolve));
  const receiver = await startReceiver({
    tls: false,
    script: async (ctx) => {
      if (ctx.stage !== 'data' || !ctx.rcptTo.includes(address)) return undefined;
      attempts++;
      if (attempts > 1) return undefined;
      await released;
      return reply;
    },
  });
  return { receiver, dataAttempts: () => attempts, release: () => release() };
}
