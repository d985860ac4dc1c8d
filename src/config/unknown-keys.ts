import { z, type ZodTypeAny } from 'zod';

/** The object schema behind defaults, optionals, nullables, refinements and pipes, else the schema itself. */
function unwrap(schema: ZodTypeAny): ZodTypeAny {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodDefault) s = s._def.innerType;
    else if (s instanceof z.ZodOptional || s instanceof z.ZodNullable) s = s.unwrap();
    else if (s instanceof z.ZodEffects) s = s.innerType();
    else if (s instanceof z.ZodPipeline) s = s._def.in;
    else if (s instanceof z.ZodLazy) s = s.schema;
    else return s;
  }
}

/** The keys the schema allows in the mapping at `path`; empty when it cannot tell (unions, records). */
export function allowedKeys(schema: ZodTypeAny, path: ReadonlyArray<string | number>): string[] {
  let s = unwrap(schema);
  for (const p of path) {
    if (s instanceof z.ZodObject) s = unwrap(s.shape[p] ?? z.never());
    else if (s instanceof z.ZodArray) s = unwrap(s.element);
    else if (s instanceof z.ZodRecord) s = unwrap(s.valueSchema);
    else return [];
  }
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length];
}

/** The allowed key `key` was probably meant as: same letters ignoring case and `_`/`-`, else at most two edits away. */
export function closestKey(key: string, allowed: readonly string[]): string | undefined {
  const norm = (k: string) => k.toLowerCase().replace(/[_-]/g, '');
  const same = allowed.find((k) => norm(k) === norm(key));
  if (same) return same;
  const scored = allowed.map((k) => ({ k, d: distance(norm(key), norm(k)) })).sort((x, y) => x.d - y.d);
  return scored[0] && scored[0].d <= Math.min(2, Math.floor(key.length / 2)) ? scored[0].k : undefined;
}

/** `['smtp', 'maxRecipients']` → `KURIR_SMTP__MAX_RECIPIENTS`, the variable `envOverrides` reads it from. */
export function envName(path: ReadonlyArray<string | number>): string {
  return `KURIR_${path
    .map((p) =>
      String(p)
        .replace(/([A-Z])/g, '_$1')
        .toUpperCase(),
    )
    .join('__')}`;
}
