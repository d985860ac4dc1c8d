/**
 * Unpacks one DMARC aggregate or TLS-RPT attachment (raw, gzip or zip) into its XML or JSON text, within
 * bounds: the compressed size, the inflated size (capped while inflating, so a zip or gzip bomb never
 * reaches memory), the number of zip entries, and no archive inside an archive. Never throws: a refusal is
 * a result with a reason from {@link ARCHIVE_REFUSALS}.
 *
 * gzip uses node:zlib (`maxOutputLength` stops inflating at the cap). zip uses fflate's streaming `Unzip`
 * (a maintained, dependency-free 8 kB library), fed in small slices so each inflate step produces at most
 * about a megabyte before the running total is checked.
 */
import { gunzipSync } from 'node:zlib';
import { Unzip, UnzipInflate } from 'fflate';

/** The size and entry bounds of an attachment. */
export interface ArchiveLimits {
  /** The attachment as received (compressed), in bytes. */
  maxCompressedBytes: number;
  /** All inflated bytes together, in bytes. */
  maxInflatedBytes: number;
  /** Entries of a zip archive (directories included). */
  maxZipEntries: number;
}

/** Why an attachment was refused before its content was read (a bounded metric label set). */
export const ARCHIVE_REFUSALS = ['too-large', 'inflated-too-large', 'too-many-entries', 'nested-archive', 'truncated', 'malformed-archive'] as const;
export type ArchiveRefusal = (typeof ARCHIVE_REFUSALS)[number];

export type Unpacked = { ok: true; text: string; container: 'plain' | 'gzip' | 'zip' } | { ok: false; reason: ArchiveRefusal; detail: string };

/** The compressed bytes handed to the zip inflater at a time: deflate expands at most ~1032×, so ≤ ~1 MiB per step. */
const ZIP_SLICE = 1024;

const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;
const isZip = (b: Uint8Array): boolean =>
  b.length >= 4 && b[0] === 0x50 && b[1] === 0x4b && (b[2] === 0x03 || b[2] === 0x05) && (b[3] === 0x04 || b[3] === 0x06);
const ARCHIVE_NAME = /\.(zip|gz|gzip|tgz|tar|bz2|xz|7z|rar)$/i;

/** The container of a byte string by its magic number: zip, gzip, or anything else (plain text). */
export function containerOf(bytes: Uint8Array): 'zip' | 'gzip' | 'plain' {
  return isZip(bytes) ? 'zip' : isGzip(bytes) ? 'gzip' : 'plain';
}

function decode(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function refuse(reason: ArchiveRefusal, detail: string): Unpacked {
  return { ok: false, reason, detail };
}

function gunzip(bytes: Uint8Array, limits: ArchiveLimits): Unpacked {
  let out: Buffer;
  try {
    out = gunzipSync(bytes, { maxOutputLength: limits.maxInflatedBytes });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ERR_BUFFER_TOO_LARGE' || e instanceof RangeError)
      return refuse('inflated-too-large', `gzip inflates to more than ${limits.maxInflatedBytes} bytes`);
    if (e.code === 'Z_BUF_ERROR') return refuse('truncated', 'gzip stream ends before its end (truncated)');
    return refuse('malformed-archive', `gzip: ${e.message}`);
  }
  if (isGzip(out) || isZip(out)) return refuse('nested-archive', 'the gzip holds another archive');
  return { ok: true, text: decode(out), container: 'gzip' };
}

interface ZipEntry {
  name: string;
  chunks: Uint8Array[];
  done: boolean;
}

function unzip(bytes: Uint8Array, limits: ArchiveLimits): Unpacked {
  const entries: ZipEntry[] = [];
  let inflated = 0;
  let failure: Unpacked | null = null;
  const stop = (u: Unpacked): void => {
    failure ??= u;
  };
  const unzipper = new Unzip((file) => {
    if (failure) return file.terminate();
    if (entries.length >= limits.maxZipEntries) {
      stop(refuse('too-many-entries', `the zip has more than ${limits.maxZipEntries} entries`));
      return file.terminate();
    }
    const entry: ZipEntry = { name: file.name, chunks: [], done: false };
    entries.push(entry);
    if (ARCHIVE_NAME.test(file.name)) {
      stop(refuse('nested-archive', `the zip holds another archive (${file.name.slice(0, 100)})`));
      return file.terminate();
    }
    if (file.name.endsWith('/')) {
      entry.done = true;
      return;
    }
    file.ondata = (err, chunk, final) => {
      if (failure) return;
      if (err) return stop(refuse('malformed-archive', `zip entry ${file.name.slice(0, 100)}: ${err.message}`));
      inflated += chunk.length;
      if (inflated > limits.maxInflatedBytes) {
        stop(refuse('inflated-too-large', `the zip inflates to more than ${limits.maxInflatedBytes} bytes`));
        return file.terminate();
      }
      entry.chunks.push(chunk);
      if (final) entry.done = true;
    };
    try {
      file.start();
    } catch (err) {
      stop(refuse('malformed-archive', `zip entry ${file.name.slice(0, 100)}: ${(err as Error).message}`));
    }
  });
  unzipper.register(UnzipInflate);
  let last = false;
  try {
    for (let at = 0; at < bytes.length && !failure; at += ZIP_SLICE) {
      const end = Math.min(bytes.length, at + ZIP_SLICE);
      last = end === bytes.length;
      unzipper.push(bytes.subarray(at, end), last);
    }
  } catch (err) {
    // fflate refuses the final slice when an entry or header is incomplete: the archive was cut short.
    stop(refuse(last ? 'truncated' : 'malformed-archive', `zip: ${(err as Error).message}${last ? ' (the archive ends early: truncated)' : ''}`));
  }
  if (failure) return failure;
  const files = entries.filter((e) => !e.name.endsWith('/'));
  if (files.some((e) => !e.done)) return refuse('truncated', 'the zip ends inside an entry (truncated)');
  if (!files.length) return refuse(entries.length ? 'malformed-archive' : 'truncated', 'the zip holds no file');
  if (files.length > 1) return refuse('too-many-entries', `the zip holds ${files.length} files; a report is one`);
  const content = Buffer.concat(files[0].chunks);
  if (isGzip(content) || isZip(content)) return refuse('nested-archive', `the zip holds another archive (${files[0].name.slice(0, 100)})`);
  return { ok: true, text: decode(content), container: 'zip' };
}

/** Unpacks an attachment by its magic number (a name or media type may lie); plain text passes through within the inflated cap. */
export function unpackReport(bytes: Uint8Array, limits: ArchiveLimits): Unpacked {
  if (!bytes.length) return refuse('truncated', 'the attachment is empty');
  if (bytes.length > limits.maxCompressedBytes) return refuse('too-large', `the attachment is ${bytes.length} bytes; at most ${limits.maxCompressedBytes}`);
  const container = containerOf(bytes);
  if (container === 'gzip') return gunzip(bytes, limits);
  if (container === 'zip') return unzip(bytes, limits);
  if (bytes.length > limits.maxInflatedBytes) return refuse('inflated-too-large', `the report is more than ${limits.maxInflatedBytes} bytes`);
  return { ok: true, text: decode(bytes), container: 'plain' };
}
