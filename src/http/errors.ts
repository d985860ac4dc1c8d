/**
 * One error shape for every HTTP answer that is not a success:
 * `{ error: { code, message, field?, details? } }` with the status of the code in the errors registry.
 * Fastify's own errors (schema validation, body parsing, size, media type, unknown routes) are mapped
 * onto the same registry here, so clients see one vocabulary whatever refused the request.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest, FastifySchemaValidationError } from 'fastify';
import { KurirError, toKurirError, type ErrorCode } from '../lib/errors.js';
import { maskAddresses } from '../lib/logger.js';
import { PATTERN_RULES } from './schemas.js';
import { lingerBeforeClose } from './unread-body.js';

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; field?: string; details?: Record<string, unknown> };
}

/** Builds the error body of a KurirError. */
export function errorBody(err: KurirError): ErrorBody {
  const out: ErrorBody = { error: { code: err.code, message: err.message } };
  if (err.field !== undefined) out.error.field = err.field;
  if (err.details !== undefined) out.error.details = err.details;
  return out;
}

/** `/to/1` → `to[1]`, `/headers/X-Foo` → `headers.X-Foo` (JSON Pointer unescaped). */
export function pointerToField(pointer: string): string {
  let out = '';
  for (const raw of pointer.split('/').slice(1)) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

function join(base: string, prop: string): string {
  return base ? `${base}.${prop}` : prop;
}

/** `idempotency-key` → `Idempotency-Key`. */
function headerName(lower: string): string {
  return lower.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * The field an ajv error is about, in the dotted/bracket form clients see (`to[0]`, `subject`,
 * `attachments[2].content`), plus a sentence saying what is wrong with it.
 */
export function describeValidation(e: FastifySchemaValidationError, context: string): { field: string; message: string } {
  const params = (e.params ?? {}) as Record<string, unknown>;
  let field = pointerToField(e.instancePath ?? '');
  let message: string;
  if (e.keyword === 'required' && typeof params.missingProperty === 'string') {
    field = join(field, params.missingProperty);
    message = 'is required';
  } else if (e.keyword === 'additionalProperties' && typeof params.additionalProperty === 'string') {
    field = join(field, params.additionalProperty);
    message = 'is not a known field';
  } else if (typeof params.propertyName === 'string') {
    field = join(field, params.propertyName);
    message = 'key is not allowed (at most 64 characters)';
  } else if (e.keyword === 'enum' && Array.isArray(params.allowedValues)) {
    message = `must be one of ${params.allowedValues.join(', ')}`;
  } else if (e.keyword === 'pattern' && PATTERN_RULES[context]?.[field] !== undefined) {
    // Each field's own rule: until 1 Dec 2026 every header pattern got the Idempotency-Key's wording.
    message = PATTERN_RULES[context][field];
  } else {
    message = e.message ?? 'is invalid';
  }
  if (context === 'headers') field = headerName(field);
  if (!field) field = context === 'querystring' ? 'query' : context;
  return { field, message: `${field}: ${message}` };
}

function isFastifyError(err: unknown): err is FastifyError {
  return typeof err === 'object' && err !== null && ('code' in err || 'statusCode' in err || 'validation' in err);
}

/**
 * The media types a route reads, for its 415: the schema's `consumes` (reports, the CSV import, the ESP endpoints),
 * else its body's content types (`POST /v1/messages`), else JSON, the one body parser of every other route.
 */
export function acceptedMediaTypes(request: FastifyRequest | undefined): string[] {
  const schema = request?.routeOptions?.schema as { consumes?: string[]; body?: { content?: Record<string, unknown> } } | undefined;
  if (schema?.consumes?.length) return schema.consumes;
  const content = schema?.body?.content;
  return content && typeof content === 'object' ? Object.keys(content) : ['application/json'];
}

/** `a`, `a or b`, `a, b or c`. */
function orList(items: string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(', ')} or ${items[items.length - 1]}` : (items[0] ?? '');
}

/**
 * The body limit that applied to a request: its route's `bodyLimit` (fastify's `routeOptions.bodyLimit`: the route's
 * own, else the server's `http.maxMessageBytes`). A route whose content-type parser has a smaller limit declares it
 * as its `bodyLimit` too (the ESP endpoints, POST /v1/reports), so the two agree.
 */
function bodyLimitOf(request: FastifyRequest | undefined, fallback: number): number {
  return request?.routeOptions?.bodyLimit ?? fallback;
}

/**
 * Maps anything thrown while handling a request onto a KurirError (unknown failures become INTERNAL). `request`
 * names what a refused media type should have been, and a 413 names the limit of the request's route
 * ({@link bodyLimitOf}); until 2 Dec 2026 it always named `http.maxMessageBytes`.
 */
export function toHttpError(err: unknown, opts: ErrorOptions, request?: FastifyRequest): KurirError {
  if (err instanceof KurirError) return err;
  if (isFastifyError(err)) {
    if (Array.isArray(err.validation) && err.validation.length) {
      const context = err.validationContext ?? 'body';
      // A bad key name reports the inner keyword first; the propertyNames error says which key it was.
      const first = err.validation.find((e) => e.keyword === 'propertyNames') ?? err.validation[0];
      const { field, message } = describeValidation(first, context);
      return new KurirError('VALIDATION', message, { field, cause: err });
    }
    switch (err.code) {
      case 'FST_ERR_BAD_URL':
        return new KurirError('VALIDATION', 'path: not a valid URL (bad percent-encoding)', { field: 'path', cause: err });
      case 'FST_ERR_MAX_PARAM_LENGTH':
        return new KurirError('VALIDATION', 'path: a path parameter is too long', { field: 'path', cause: err });
      case 'FST_ERR_CTP_BODY_TOO_LARGE': {
        const limit = bodyLimitOf(request, opts.maxBodyBytes);
        const route = request?.routeOptions?.url ? ` of ${request.method} ${request.routeOptions.url}` : '';
        return new KurirError('TOO_LARGE', `Request body exceeds ${limit} bytes, the limit${route}`, {
          field: 'body',
          details: { limitBytes: limit },
          cause: err,
        });
      }
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        // Until 2 Dec 2026 every route said "application/json or message/rfc822", what only POST /v1/messages reads.
        return new KurirError('UNSUPPORTED_MEDIA', `Content-Type must be ${orList(acceptedMediaTypes(request))}`, { field: 'Content-Type', cause: err });
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
        return new KurirError('VALIDATION', 'body: not valid JSON', { field: 'body', cause: err });
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
        return new KurirError('VALIDATION', 'body: size does not match Content-Length', { field: 'body', cause: err });
    }
    // Any other client error fastify raises (a parser's SyntaxError, a bad header): keep its status class.
    const status = err.statusCode ?? 0;
    if (status === 413) return new KurirError('TOO_LARGE', undefined, { field: 'body', cause: err });
    if (status === 415) return new KurirError('UNSUPPORTED_MEDIA', undefined, { field: 'Content-Type', cause: err });
    if (status === 404) return new KurirError('NOT_FOUND', undefined, { cause: err });
    if (status >= 400 && status < 500) return new KurirError('VALIDATION', err.message, { cause: err });
  }
  return toKurirError(err);
}

/** What the error answers need to know: the body limit (its 413 names it) and how long a refused body is read after the answer. */
export interface ErrorOptions {
  maxBodyBytes: number;
  /** How long the rest of a refused request body is read and dropped after the answer, at most (default 30 s). */
  lingerMs?: number;
}

/** A refused body is read and dropped after the answer up to this many times the body limit (then the socket is closed). */
const LINGER_BODIES = 2;

/**
 * Sends a KurirError with its status, error body and the headers its code calls for. An error answered
 * before the request body has fully arrived (401/403/429 from an `onRequest` hook, 413) closes the
 * connection: Node would otherwise keep reading whatever the client still trickles in. Not so for BUSY:
 * an authenticated client still uploading would see a reset instead of the 503; Node reads and drops the
 * rest of its body (bounded by http.requestTimeoutSeconds) and the client gets the answer.
 * Either way the connection is not closed under a client still sending: it lingers ({@link lingerBeforeClose}),
 * reading and dropping up to twice the body limit for at most `lingerMs`, so the answer is not lost in a reset.
 */
export function sendError(reply: FastifyReply, err: KurirError, opts: ErrorOptions): FastifyReply {
  if (!reply.request.raw.complete) {
    if (err.code !== 'BUSY') reply.header('Connection', 'close');
    lingerBeforeClose(reply.request.raw, { maxBytes: LINGER_BODIES * opts.maxBodyBytes, maxMs: opts.lingerMs ?? 30_000 });
  }
  if (err.code === 'AUTH_REQUIRED') reply.header('WWW-Authenticate', 'Bearer realm="kurir"');
  if (err.code === 'AUTH_FAILED') reply.header('WWW-Authenticate', 'Bearer realm="kurir", error="invalid_token"');
  const defaultRetryAfter: Partial<Record<KurirError['code'], number>> = { RATE_LIMITED: 1, UNAVAILABLE: 5, BUSY: 5 };
  const retryAfter = err.retryAfterSeconds ?? defaultRetryAfter[err.code];
  if (retryAfter !== undefined) reply.header('Retry-After', String(Math.max(0, Math.ceil(retryAfter))));
  return reply.code(err.httpStatus).type('application/json; charset=utf-8').send(errorBody(err));
}

/**
 * fastify's `frameworkErrors` option: errors its router raises before any route runs (a path whose
 * percent-encoding is broken, a path parameter over `maxParamLength`) get the same error body as every other
 * refusal instead of fastify's own `{ statusCode, code, error, message }`.
 */
export function frameworkErrors(opts: ErrorOptions) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    const kerr = toHttpError(error, opts, request);
    request.log.info({ code: kerr.code, field: kerr.field, status: kerr.httpStatus }, kerr.message);
    sendError(reply, kerr, opts);
  };
}

/**
 * Installs the error and not-found handlers on the root instance (child plugins inherit them). 5xx are
 * logged at error level with their cause; refusals at info, since they are the client's to fix.
 */
export function registerErrorHandling(app: FastifyInstance, opts: ErrorOptions & { onRefusal?: (err: KurirError, request: FastifyRequest) => void }): void {
  app.setErrorHandler((error, request, reply) => {
    const kerr = toHttpError(error, opts, request);
    opts.onRefusal?.(kerr, request);
    if (kerr.httpStatus >= 500) {
      request.log.error({ err: kerr.cause ?? kerr, code: kerr.code }, 'request failed');
    } else {
      // The client's own answer, with recipient mailboxes masked: the log needs the code and the reason, not the address.
      request.log.info({ code: kerr.code, field: kerr.field, status: kerr.httpStatus }, maskAddresses(kerr.message));
    }
    return sendError(reply, kerr, opts);
  });
  app.setNotFoundHandler((request, reply) => sendError(reply, new KurirError('NOT_FOUND', `No route ${request.method} ${request.url.split('?')[0]}`), opts));
}
