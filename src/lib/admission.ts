/**
 * Admission control for intake: a bound on the bytes of messages being received and processed at once,
 * across HTTP and SMTP in one process. A burst of large submissions then gets a quick "try again shortly"
 * (503 / 451 4.3.2) instead of filling the heap and stalling every other request, and small messages
 * pass as long as the large ones leave room. One message alone is always admitted, whatever its size, so
 * a bound below the size limit cannot lock a large message out for good.
 */
export interface Admission {
  /** Bytes currently held. */
  readonly inFlight: number;
  readonly maxBytes: number;
  /** Takes `bytes` if they fit (or nothing else is held); false when refused, nothing taken. */
  tryReserve(bytes: number): boolean;
  /** Gives back bytes taken with tryReserve. */
  release(bytes: number): void;
}

/** Creates an admission counter; `onChange` sees every new total (for a gauge). */
export function createAdmission(maxBytes: number, onChange?: (inFlight: number) => void): Admission {
  let inFlight = 0;
  return {
    get inFlight() {
      return inFlight;
    },
    maxBytes,
    tryReserve(bytes) {
      if (inFlight > 0 && inFlight + bytes > maxBytes) return false;
      inFlight += bytes;
      onChange?.(inFlight);
      return true;
    },
    release(bytes) {
      inFlight = Math.max(0, inFlight - bytes);
      onChange?.(inFlight);
    },
  };
}
