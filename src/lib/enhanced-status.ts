/**
 * RFC 3463 enhanced status codes in reply text, and what their class says of a failure. Pure: used by delivery (is a
 * refusal permanent?) and by the reply classifier (is a bounce hard?), so the two agree (docs/delivery.md, docs/feedback.md).
 */

// An enhanced status code (RFC 3463): class 2/4/5, subject and detail of 1–3 digits, not part of an
// IP address or version number (no digit or ".digit" on either side).
const ENHANCED_IN_TEXT = /(?<![\d.])([245]\.\d{1,3}\.\d{1,3})(?!\d|\.\d)/;

/** The first enhanced status code in a reply text, e.g. `5.1.1` from `550-5.1.1 The email account…`. */
export function extractEnhanced(text: string): string | null {
  return ENHANCED_IN_TEXT.exec(text)?.[1] ?? null;
}

/**
 * Whether a failure reply is temporary: a 4xx whatever its enhanced code says (`450 5.1.1` is retried), or a 5xx whose
 * enhanced code has class 4 (`550 4.2.2 Mailbox full`: RFC 3463 section 2, a persistent transient failure), or, with no
 * reply code, an enhanced code of class 4. Either code saying "temporary" wins: retrying costs attempts until the
 * message expires, bouncing loses the message (and may suppress the address). `enhanced` defaults to the first one in `text`.
 */
export function temporaryFailure(code: number | null, text: string, enhanced: string | null = extractEnhanced(text)): boolean {
  if (code !== null && Math.floor(code / 100) === 4) return true;
  return enhanced?.startsWith('4.') === true;
}
