/**
 * The 400 of a header or query parameter that fails its `pattern` names the field and that field's own rule (found
 * 1 Dec 2026: every header pattern got the Idempotency-Key's rule, so `X-Kurir-Ttl: abc` was answered "must be 1 to
 * 255 printable ASCII characters"). Every pattern of the submission's headers and query has its rule in PATTERN_RULES.
 * The TTL parameters have no pattern since 2 Dec 2026: the route checks them (ttlSeconds, with the allowed range).
 */
import type { FastifySchemaValidationError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { describeValidation } from '../../../src/http/errors.js';
import { PATTERN_RULES, submitHeadersSchema, submitQuerySchema } from '../../../src/http/schemas.js';

const patternError = (name: string, pattern = '^x$'): FastifySchemaValidationError => ({
  keyword: 'pattern',
  instancePath: `/${name}`,
  schemaPath: `#/properties/${name}/pattern`,
  params: { pattern },
  message: `must match pattern "${pattern}"`,
});

describe('pattern refusals', () => {
  it('say each field’s own rule', () => {
    expect(describeValidation(patternError('idempotency-key'), 'headers')).toEqual({
      field: 'Idempotency-Key',
      message: 'Idempotency-Key: must be 1 to 255 printable ASCII characters',
    });
    expect(describeValidation(patternError('cursor'), 'querystring')).toEqual({
      field: 'cursor',
      message: 'cursor: must be the nextCursor of a previous page',
    });
  });

  it('fall back to the pattern itself for a field without a rule, never to another field’s rule', () => {
    expect(describeValidation(patternError('x-other', '^[0-9]$'), 'headers')).toEqual({
      field: 'X-Other',
      message: 'X-Other: must match pattern "^[0-9]$"',
    });
    expect(describeValidation(patternError('limit', '^[0-9]{1,4}$'), 'querystring').message).toBe('limit: must match pattern "^[0-9]{1,4}$"');
  });

  it('cover every pattern of the submission’s headers and query', () => {
    for (const [context, schema] of [
      ['headers', submitHeadersSchema],
      ['querystring', submitQuerySchema],
    ] as const) {
      const patterned = Object.entries(schema.properties)
        .filter(([, p]) => 'pattern' in p)
        .map(([name]) => name);
      for (const name of patterned) expect(PATTERN_RULES[context]?.[name], `${context} ${name}`).toBeTruthy();
    }
    expect('pattern' in submitHeadersSchema.properties['idempotency-key']).toBe(true);
  });
});
