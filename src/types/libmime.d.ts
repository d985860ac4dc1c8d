/**
 * Minimal type declarations for `libmime` (5.3.x, CommonJS, ships no types): only what Kurir uses.
 * `import libmime from 'libmime'` yields the module's default instance.
 */
declare module 'libmime' {
  interface Libmime {
    /**
     * Decodes the RFC 2047 encoded words of a header value (`=?UTF-8?Q?Pa=C3=9F?=` → `Paß`), joining adjacent
     * words of one charset first, so a character split across two words comes out whole; other text is left as it is.
     */
    decodeWords(value: string): string;
    /**
     * Splits a structured header value into its value and parameters (`multipart/mixed; boundary="b"` →
     * `{ value: 'multipart/mixed', params: { boundary: 'b' } }`), parameter names lower-cased and RFC 2231
     * continuations joined.
     */
    parseHeaderValue(value: string): { value: string; params: Record<string, string> };
  }
  const libmime: Libmime;
  export default libmime;
}
