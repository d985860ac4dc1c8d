/**
 * The booking reference of a submission: the value the booking system puts in metadata under
 * `intake.referenceKey`, or (SMTP, raw HTTP, or JSON `headers`) in an `X-Kurir-Reference` header. Intake
 * stores it on the message record and indexes it, so support can search by it (docs/console.md).
 */
import { KurirError } from '../lib/errors.js';
import { type HeaderLine, headerValue } from './header-block.js';

/** The header that carries the reference in a message; read by intake and removed before signing, like X-Kurir-Priority. */
export const REFERENCE_HEADER = 'X-Kurir-Reference';
/** Longest reference indexed (a booking reference is short; a longer value is refused, not cut). */
export const MAX_REFERENCE_LENGTH = 256;

/**
 * The submission's reference and its metadata with the reference in it (a header's value is copied to
 * metadata, so the message view and webhooks show it). Metadata wins over the header.
 * @throws KurirError VALIDATION for a metadata reference that is empty, and for a reference longer than
 * {@link MAX_REFERENCE_LENGTH} or with control characters.
 */
export function referenceOf(
  key: string | null,
  metadata: Record<string, string> | undefined,
  headers: HeaderLine[],
): { reference?: string; metadata?: Record<string, string> } {
  if (key === null) return { metadata };
  const given = metadata?.[key];
  const raw = given ?? headerValue(headers, REFERENCE_HEADER);
  const value = raw?.trim();
  const field = given !== undefined ? `metadata.${key}` : REFERENCE_HEADER;
  // An empty metadata reference is a client's mistake (until 2 Dec 2026 it was taken as none); an empty header is none.
  if (!value && given !== undefined) {
    throw new KurirError('VALIDATION', `${field}: a booking reference of 1 to ${MAX_REFERENCE_LENGTH} printable characters`, { field });
  }
  if (!value) return { metadata };
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (value.length > MAX_REFERENCE_LENGTH || /[\x00-\x1f\x7f]/.test(value)) {
    throw new KurirError('VALIDATION', `${field}: a booking reference of 1 to ${MAX_REFERENCE_LENGTH} printable characters`, { field });
  }
  return { reference: value, metadata: given !== undefined ? metadata : { ...metadata, [key]: value } };
}
