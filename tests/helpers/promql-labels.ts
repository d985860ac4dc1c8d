/**
 * A small PromQL tokenizer for the static label checks of tests/unit/dashboards/metric-labels.test.ts:
 * selectors with their matchers, grouping labels, the labels a legend or an alert annotation shows, and
 * what `sum` aggregates directly. Regular expressions, not a parser: good for the shapes Kurir's rules and
 * panels use, and promtool checks the syntax.
 */

/** What the registry says about one metric (or, with type "record", a recording rule). */
export interface MetricInfo {
  type: string;
  labels: string[];
  /** The label values the code is known to set, per label (absent: not enumerated). */
  values: Map<string, Set<string>>;
  /** The label sets of the series a fresh registry already has (pre-set at zero). */
  series: Array<Record<string, string>>;
}

/** One expression and the texts that show its labels (legend format, alert annotations). */
export interface Expr {
  where: string;
  expr: string;
  shown: string[];
}

export interface Matcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
  regex: boolean;
  /** The top-level alternatives of a regex value (`a|b|` → a, b, ''), else the value. */
  alternatives: string[];
}

export interface Selector {
  name: string;
  /** The name without a histogram's _bucket/_sum/_count suffix. */
  base: string;
  matchers: Matcher[];
}

const NAME = /([a-zA-Z_:][\w:]*)/;
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;
const AGGREGATION = /\b(sum|min|max|avg|count|stddev|stdvar|topk|bottomk|quantile|group|count_values)\s*(?:(by|without)\s*\(([^)]*)\)\s*)?\(/g;

function splitTop(value: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (let i = 0; i < value.length; i++) {
    const c = value[i];
    if (c === '\\') {
      cur += c + (value[i + 1] ?? '');
      i++;
      continue;
    }
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === '|' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += c;
  }
  out.push(cur);
  return out;
}

/** Every `name{…}` or bare `name` that looks like a metric or recording rule (callers keep the ones they know). */
export function kurirSelectors(expr: string): Selector[] {
  const out: Selector[] = [];
  const re = new RegExp(`${NAME.source}\\s*(\\{([^}]*)\\})?`, 'g');
  for (const m of expr.matchAll(re)) {
    const name = m[1];
    const matchers: Matcher[] = [];
    for (const [, label, op, raw] of (m[3] ?? '').matchAll(/([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"/g)) {
      // A PromQL string: \\ is one backslash.
      const value = raw.replace(/\\(.)/g, '$1');
      const regex = op === '=~' || op === '!~';
      matchers.push({ label, op: op as Matcher['op'], value, regex, alternatives: regex ? splitTop(value) : [value] });
    }
    out.push({ name, base: name.replace(/_(bucket|sum|count)$/, ''), matchers });
  }
  return out;
}

function infoOf(reg: Map<string, MetricInfo>, s: Selector): MetricInfo | undefined {
  return reg.get(s.name) ?? reg.get(s.base);
}

/** The labels the expression's series can carry: every referenced metric's, job and instance, le for _bucket. */
function inputLabels(expr: string, reg: Map<string, MetricInfo>): Set<string> {
  const labels = new Set(['job', 'instance']);
  for (const s of kurirSelectors(expr)) {
    const info = infoOf(reg, s);
    if (!info) continue;
    for (const l of info.labels) labels.add(l);
    if (s.name.endsWith('_bucket') && info.type === 'histogram') labels.add('le');
  }
  return labels;
}

/**
 * The labels the result can carry, as far as a tokenizer can tell: when every aggregation keeps labels with
 * `by`, only those (and a recording rule's level labels); otherwise the input labels.
 */
export function outputLabels(expr: string, reg: Map<string, MetricInfo>): Set<string> {
  const aggs = [...expr.matchAll(AGGREGATION)];
  if (aggs.length === 0 || aggs.some((a) => a[2] !== 'by')) return inputLabels(expr, reg);
  const out = new Set(aggs.flatMap((a) => a[3].split(',').map((l) => l.trim())).filter(Boolean));
  for (const s of kurirSelectors(expr)) if (reg.get(s.name)?.type === 'record') for (const l of reg.get(s.name)!.labels) out.add(l);
  return out;
}

/** Labels grouped on, or shown by a legend (`{{label}}`) or an annotation (`$labels.label`), that the expression cannot carry. */
export function unknownLabels(e: Expr, reg: Map<string, MetricInfo>): string[] {
  const problems: string[] = [];
  const input = inputLabels(e.expr, reg);
  for (const [, kw, list] of e.expr.matchAll(GROUPING)) {
    for (const l of list
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)) {
      if (!input.has(l)) problems.push(`${e.where}: ${kw} (${l}): no referenced metric has "${l}"`);
    }
  }
  const output = outputLabels(e.expr, reg);
  for (const text of e.shown) {
    const shown = [...text.matchAll(/\$labels\.([a-zA-Z_]\w*)/g), ...text.matchAll(/\{\{\s*([a-zA-Z_]\w*)\s*\}\}/g)].map((m) => m[1]);
    for (const l of shown) if (!output.has(l)) problems.push(`${e.where}: shows "${l}", which the result does not carry (${[...output].join(', ')})`);
  }
  return problems;
}

/** Metric names that `sum` (with or without `by`) aggregates directly, not through a function such as rate(). */
export function sumsOf(expr: string): string[] {
  const re = new RegExp(`\\bsum\\s*(?:(?:by|without)\\s*\\([^)]*\\)\\s*)?\\(\\s*${NAME.source}(?!\\s*\\()`, 'g');
  return [...expr.matchAll(re)].map((m) => m[1]);
}

/** Whether a series with these labels matches every matcher (a missing label is the empty string, as in Prometheus). */
export function matches(labels: Record<string, string>, matchers: Matcher[]): boolean {
  return matchers.every((mt) => {
    const v = labels[mt.label] ?? '';
    if (mt.op === '=') return v === mt.value;
    if (mt.op === '!=') return v !== mt.value;
    const hit = new RegExp(`^(?:${mt.value})$`).test(v);
    return mt.op === '=~' ? hit : !hit;
  });
}

/** The selectors that the range functions `fns` (default rate(), irate(), increase()) read. */
export function rangeSelectors(expr: string, fns: readonly string[] = ['rate', 'irate', 'increase']): Selector[] {
  return expr
    .split(new RegExp(`\\b(?:${fns.join('|')})\\s*\\(`))
    .slice(1)
    .map((part) => kurirSelectors(part)[0])
    .filter((s): s is Selector => s !== undefined);
}
