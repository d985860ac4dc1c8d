import { parentPort } from 'node:worker_threads';
import { DkimError, type PreparedKey, signHeaders } from './sign-core.js';
import type { ToWorker, FromWorker } from './sign-protocol.js';

/*
 * A signing thread (sign-pool.ts). It keeps the keys it was sent, by id, as KeyObjects (a KeyObject
 * crosses threads without being re-parsed), signs what it is asked to, and answers the header lines only.
 */

const keys = new Map<number, PreparedKey>();
const port = parentPort;
if (!port) throw new Error('sign-worker.ts runs only as a worker thread');

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'keys') {
    for (const k of msg.keys) keys.set(k.id, { selector: k.selector, algorithm: k.algorithm, keyObject: k.keyObject });
    return;
  }
  if (msg.type === 'drop') {
    for (const id of msg.ids) keys.delete(id);
    return;
  }
  let reply: FromWorker;
  try {
    const use = msg.keyIds.map((id) => {
      const key = keys.get(id);
      if (!key) throw new Error(`signing thread has no key #${id}`);
      return key;
    });
    const { headers, signatures } = signHeaders(new Uint8Array(msg.message), msg.domain, use, new Date(msg.signTime));
    reply = { seq: msg.seq, ok: true, headers, signatures };
  } catch (err) {
    const e = err as Error;
    reply = { seq: msg.seq, ok: false, message: e.message, code: err instanceof DkimError ? err.code : undefined };
  }
  port.postMessage(reply);
});

port.postMessage({ ready: true } satisfies FromWorker);
