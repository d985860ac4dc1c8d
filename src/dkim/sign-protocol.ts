import type { KeyObject } from 'node:crypto';
import type { DkimErrorCode, DkimSignatureAlgorithm, DkimSignatureInfo } from './sign-core.js';

/** Messages between the signing pool (sign-pool.ts) and its threads (sign-worker.ts). */
export type ToWorker =
  /** Keys to hold, by id; an id names one (domain, selector, key version) and is never reused. */
  | { type: 'keys'; keys: Array<{ id: number; selector: string; algorithm: DkimSignatureAlgorithm; keyObject: KeyObject }> }
  /** Keys to forget (revoked, rotated out, domain removed). */
  | { type: 'drop'; ids: number[] }
  /** `message` is normalised (normalizeMessage) and transferred, not copied. */
  | { type: 'sign'; seq: number; domain: string; keyIds: number[]; signTime: number; message: ArrayBuffer };

export type FromWorker =
  /** Sent once, when the thread has loaded and listens. */
  | { ready: true }
  | { seq: number; ok: true; headers: string; signatures: DkimSignatureInfo[] }
  /** `code` is set when the thread refused with a DkimError. */
  | { seq: number; ok: false; message: string; code?: DkimErrorCode };
