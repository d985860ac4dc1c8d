/**
 * Every mapping in the configuration schema refuses unknown keys: a misspelt key (`generat: true` under a DKIM key,
 * `lvel` under log) must stop start-up naming it, not be dropped so the setting silently keeps its default.
 */
import { z, type ZodTypeAny } from 'zod';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../../src/config/load.js';
import { configSchema } from '../../../src/config/schema.js';

/** Paths of the object schemas that strip or pass through unknown keys instead of refusing them. */
function lenientObjects(schema: ZodTypeAny, path: string, seen = new Set<ZodTypeAny>()): string[] {
  if (seen.has(schema)) return [];
  seen.add(schema);
  const s = schema;
  if (s instanceof z.ZodDefault) return lenientObjects(s._def.innerType, path, seen);
  if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) return lenientObjects(s.unwrap(), path, seen);
  if (s instanceof z.ZodEffects) return lenientObjects(s.innerType(), path, seen);
  if (s instanceof z.ZodPipeline) return lenientObjects(s._def.in, path, seen);
  if (s instanceof z.ZodLazy) return lenientObjects(s.schema, path, seen);
  if (s instanceof z.ZodArray) return lenientObjects(s.element, `${path}[]`, seen);
  if (s instanceof z.ZodRecord) return lenientObjects(s.valueSchema, `${path}.<name>`, seen);
  if (s instanceof z.ZodUnion || s instanceof z.ZodDiscriminatedUnion) {
    return (s.options as ZodTypeAny[]).flatMap((o) => lenientObjects(o, path, seen));
  }
  if (!(s instanceof z.ZodObject)) return [];
  const own = s._def.unknownKeys === 'strict' ? [] : [path || '(root)'];
  return [...own, ...Object.entries(s.shape as Record<string, ZodTypeAny>).flatMap(([k, v]) => lenientObjects(v, path ? `${path}.${k}` : k, seen))];
}

describe('configuration schema', () => {
  it('refuses unknown keys in every mapping', () => {
    expect(lenientObjects(configSchema, '')).toEqual([]);
  });

  it('names a misspelt key under log, a domain and a DKIM key', () => {
    const load = (env: Record<string, string>) => () => loadConfig({ file: 'config/default.yaml', env });
    expect(load({ KURIR_LOG__LVEL: 'debug' })).toThrowError(/log: unknown key\(s\) lvel \(from KURIR_LOG__LVEL\): did you mean log\.level\?/);
    const domains = (extra: string) =>
      `[{ name: example.test, ${extra} dkim: [{ selector: s1, algorithm: rsa, privateKeyFile: ./data/k.pem, generat: true }] }]`;
    expect(load({ KURIR_DOMAINS: domains('') })).toThrowError(
      /domains\.0\.dkim\.0: unknown key\(s\) generat \(from KURIR_DOMAINS\): did you mean domains\.0\.dkim\.0\.generate\?/,
    );
    expect(load({ KURIR_DOMAINS: domains('feedbackID: { senderId: k },') })).toThrowError(ConfigError);
  });
});
