/**
 * The one normal form of a Message-ID header value, shared by the message store's Message-ID index and the
 * report parsers that look a message up by it (so both sides key it the same way).
 */

/** A Message-ID header as the index keys it: without angle brackets or spaces, lower-cased. */
export function normalizeHeaderMessageId(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const m = /<([^<>\s]{1,500})>/.exec(value) ?? /([^<>\s]{1,500})/.exec(value);
  return m ? m[1].toLowerCase() : undefined;
}
