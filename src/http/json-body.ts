/**
 * How every JSON request body of the API is read (fastify's default parser replaced at the root, so submissions and the
 * admin routes alike): UTF-8 only, no content coding, and no prototype-poisoning keys, each refusal saying which.
 * The checks of the headers run in a `preParsing` hook, before the body is read and so before `100 Continue`
 * (src/http/unread-body.ts); the routes that read JSON as bytes of their own mark their scope ({@link readsOwnJson})
 * and are left alone. Until 2 Dec 2026 they ran in the parser, after a client with `Expect: 100-continue` had been
 * invited to send, and had sent, the whole body.
 * fastify's default decoded invalid UTF-8 into U+FFFD (an applicant received "caf�"), ignored the declared charset,
 * and answered a `__proto__` key and a gzip-encoded body both with "body: not valid JSON".
 */
import { isUtf8 } from 'node:buffer';
import type { FastifyInstance, FastifyReply, FastifyRequest, RequestPayload } from 'fastify';
import { parse as secureJsonParse } from 'secure-json-parse';
import { KurirError } from '../lib/errors.js';

const notJson = (): KurirError => new KurirError('VALIDATION', 'body: not valid JSON', { field: 'body' });

/** `charset` of a Content-Type header, lower-cased, when it has one. */
function charsetOf(contentType: string | undefined): string | undefined {
  const m = contentType ? /;\s*charset\s*=\s*"?([^";\s]*)"?/i.exec(contentType) : null;
  return m ? m[1].toLowerCase() : undefined;
}

/**
 * Refuses a body in a content coding other than `identity` with 415 naming Content-Encoding: the API decodes none,
 * and gzip bytes were read as JSON (or stored as the message).
 */
export function refuseContentCoding(request: FastifyRequest): void {
  const coding = request.headers['content-encoding']?.trim().toLowerCase();
  if (coding && coding !== 'identity') {
    throw new KurirError('UNSUPPORTED_MEDIA', `Content-Encoding: ${coding} is not supported; send the body uncompressed`, { field: 'Content-Encoding' });
  }
}

/** Refuses a JSON body declared in a charset other than UTF-8 (RFC 8259 §8.1) or US-ASCII with 415 naming it. */
function refuseCharset(request: FastifyRequest): void {
  const charset = charsetOf(request.headers['content-type']);
  // US-ASCII is a subset of UTF-8: its bytes read the same (anything over 0x7F is refused as not UTF-8 or decoded alike).
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8' && charset !== 'us-ascii') {
    throw new KurirError('UNSUPPORTED_MEDIA', `Content-Type: charset ${charset} is not supported; JSON must be UTF-8 (charset=utf-8, or none)`, {
      field: 'Content-Type',
    });
  }
}

/**
 * Where in a parsed body the first key that would poison a prototype is (`metadata.__proto__`, `headers.constructor`),
 * found the way secure-json-parse looks: an own `__proto__` key, or a `constructor` object with its own `prototype`.
 */
function poisonedKey(value: unknown): string | undefined {
  let level: Array<[unknown, string]> = [[value, '']];
  while (level.length) {
    const next: Array<[unknown, string]> = [];
    for (const [node, path] of level) {
      if (node === null || typeof node !== 'object') continue;
      const at = (key: string): string => (Array.isArray(node) ? `${path}[${key}]` : path ? `${path}.${key}` : key);
      if (Object.hasOwn(node, '__proto__')) return at('__proto__');
      if (Object.hasOwn(node, 'constructor')) {
        const ctor = (node as Record<string, unknown>).constructor;
        if (ctor !== null && typeof ctor === 'object' && Object.hasOwn(ctor, 'prototype')) return at('constructor');
      }
      for (const [k, v] of Object.entries(node)) next.push([v, at(k)]);
    }
    level = next;
  }
  return undefined;
}

/** The decorator that marks a scope whose routes read `application/json` as bytes of their own. */
const OWN_JSON = 'kurirReadsOwnJson';

/**
 * Marks a scope that replaces the API's JSON parser with its own (`POST /v1/reports`, the ESP endpoints): the
 * header checks of {@link refuseJsonHeaders} skip its routes. Call it in the scope that replaces the parser.
 */
export function readsOwnJson(scope: FastifyInstance): void {
  scope.decorate(OWN_JSON, true);
}

/** The media type of a Content-Type header (no parameters), lower-cased. */
export function mediaTypeOf(request: FastifyRequest): string {
  return (request.headers['content-type'] ?? '').split(';', 1)[0].trim().toLowerCase();
}

/**
 * The root `preParsing` hook: a JSON body in a content coding or a charset the API does not read is refused (415)
 * from its headers, before a byte of it is read, so a client sending `Expect: 100-continue` gets the 415 instead
 * of `100 Continue`. Routes in a scope marked by {@link readsOwnJson} read JSON themselves and are not checked.
 */
export function refuseJsonHeaders(
  request: FastifyRequest,
  _reply: FastifyReply,
  payload: RequestPayload,
  done: (err: Error | null, payload?: RequestPayload) => void,
): void {
  if (mediaTypeOf(request) !== 'application/json' || request.server.hasDecorator(OWN_JSON)) {
    done(null, payload);
    return;
  }
  try {
    refuseContentCoding(request);
    refuseCharset(request);
  } catch (err) {
    done(err as KurirError);
    return;
  }
  done(null, payload);
}

/**
 * The `application/json` parser (parseAs buffer, the API's body limit), after {@link refuseJsonHeaders} has checked
 * the content coding and charset: invalid UTF-8 is 400 "body: not valid UTF-8", a key that would poison a prototype is 400 naming it,
 * anything else JSON.parse refuses is 400 "body: not valid JSON". Routes that read JSON as bytes of their own
 * (`POST /v1/reports`, the ESP endpoints) replace it in their scope. The common case costs one native UTF-8 check
 * over fastify's own parser (secure-json-parse, as fastify uses it).
 */
export function parseJsonBody(_request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void): void {
  if (!body.length) done(notJson());
  else if (!isUtf8(body)) done(new KurirError('VALIDATION', 'body: not valid UTF-8', { field: 'body' }));
  else {
    const text = body.toString('utf8');
    let parsed: unknown;
    try {
      parsed = secureJsonParse(text, { protoAction: 'error', constructorAction: 'error' });
    } catch {
      done(refusalOf(text));
      return;
    }
    done(null, parsed);
  }
}

/** The rare refusal only: parses again to tell a syntax error from a poisoning key, and names the key. */
function refusalOf(text: string): KurirError {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch {
    return notJson();
  }
  const key = poisonedKey(parsed);
  if (key === undefined) return notJson();
  const name = key.endsWith('constructor') ? 'constructor (holding a prototype)' : '__proto__';
  return new KurirError('VALIDATION', `${key}: a key named ${name} is not allowed`, { field: key });
}
