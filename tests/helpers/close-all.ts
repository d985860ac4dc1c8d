/**
 * The afterAll of a test file that started several servers: closes each, in the order given (the gateway before
 * the servers it talks to), one after the other.
 */

/** Something a test started and closes in afterAll; undefined or null when its start never ran or failed. */
export type Closable = { close(): unknown } | undefined | null;

/**
 * Awaits `close()` of each of `items` in turn, skipping the ones not started; a close that rejects stops the
 * rest and rejects with its error, as the `await a?.close(); await b?.close();` lines it replaces did.
 */
export async function closeAll(...items: Closable[]): Promise<void> {
  for (const item of items) await item?.close();
}
