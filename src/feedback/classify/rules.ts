/**
 * Classification of remote replies by rules kept as data (config/bounce-rules.yaml, after ZoneMTA's
 * config/bounces.txt): every SMTP reply, DSN status or connection failure becomes a bounded `category`,
 * `hard` or `soft`, and `senderSide` — whether the fault lies with Kurir (its reputation, authentication,
 * setup or content) rather than with the recipient, in which case the recipient must never be suppressed.
 *
 * Rules are validated and their patterns compiled once, at load; classifying is then a linear scan of
 * pre-compiled predicates, first match wins.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z, type ZodIssue } from 'zod';
import { ConfigError } from '../../config/load.js';
import { extractEnhanced, temporaryFailure } from '../../lib/enhanced-status.js';
import { AUTH_CAUSES, DELIVERY_CATEGORIES, type AuthCause, type BounceType, type DeliveryCategory } from '../../lib/outcome-categories.js';

export { extractEnhanced } from '../../lib/enhanced-status.js';

export const DEFAULT_BOUNCE_RULES_FILE = 'config/bounce-rules.yaml';

/** Every category a rule may name: the metric label set minus `none` (which means "delivered"). */
export type BounceCategory = Exclude<DeliveryCategory, 'none'>;
export const BOUNCE_CATEGORIES = DELIVERY_CATEGORIES.filter((c): c is BounceCategory => c !== 'none');

/**
 * Categories that mean Kurir's own reputation or setup is broken, not the recipient's address: the default
 * for a rule's `senderSide`. Such failures raise alerts and are never counted against the recipient.
 */
export const SENDER_SIDE_CATEGORIES: ReadonlySet<BounceCategory> = new Set(['auth-failure', 'policy', 'spam-block', 'rate-limit', 'protocol']);

/** A rules file that cannot be used; the message names the file, the rule (index and id) and the field. */
export class BounceRulesError extends ConfigError {
  constructor(message: string) {
    super(message);
    this.name = 'BounceRulesError';
  }
}

/** One reply to classify. `code` is null when there was no SMTP reply at all (connection or DNS failure). */
export interface ReplyInput {
  code: number | null;
  /** RFC 3463 enhanced status code; taken from `text` when not given. */
  enhanced?: string | null;
  text: string;
}

export interface Classification {
  category: BounceCategory;
  type: BounceType;
  senderSide: boolean;
  ruleId: string;
  /** Which authentication check failed; set exactly when `category` is `auth-failure`. */
  cause?: AuthCause;
  /**
   * The receiver refuses Kurir itself as its client: relaying, the envelope sender or account, authentication. From a
   * smarthost that is Kurir's configuration, and the delivery is deferred, not bounced (src/delivery/stages/smarthost-refusal.ts).
   */
  refusesClient?: true;
}

const CODE_PATTERN = /^(?:[2-5]\d\d|[2-5]xx|none)$/i;
const ENHANCED_PATTERN = /^(?:none|[245*](?:\.(?:[\d?]{1,3}|\*)){0,2})$/;

const oneOrMany = (item: z.ZodString) => z.union([item, z.array(item).min(1, 'a non-empty list')]);

const matchSchema = z
  .object({
    code: oneOrMany(z.string().regex(CODE_PATTERN, 'a reply code like "550", a class like "5xx" or "4xx", or "none" (no SMTP reply)')).optional(),
    enhanced: oneOrMany(
      z.string().regex(ENHANCED_PATTERN, 'an enhanced status code or glob like "5.1.1", "5.7.*", "*.2.2", "4.7.5??", or "none" (no enhanced code)'),
    ).optional(),
    text: z.string().min(1, 'a non-empty regular expression').optional(),
  })
  .strict();

const ruleSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/i, 'letters, digits, ".", "_" or "-"'),
    match: matchSchema.default({}),
    category: z.enum(BOUNCE_CATEGORIES as [BounceCategory, ...BounceCategory[]]),
    type: z.enum(['hard', 'soft']),
    senderSide: z.boolean().optional(),
    refusesClient: z.boolean().optional(),
    cause: z.enum(AUTH_CAUSES).optional(),
    description: z.string().optional(),
  })
  .strict()
  .superRefine((rule, ctx) => {
    // An authentication refusal without its cause could not say which check to fix; a cause elsewhere means nothing.
    if (rule.category === 'auth-failure' && !rule.cause)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cause'], message: `required with category auth-failure (one of ${AUTH_CAUSES.join(', ')})` });
    if (rule.category !== 'auth-failure' && rule.cause)
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['cause'], message: 'only allowed with category auth-failure' });
    if (rule.refusesClient && (rule.senderSide ?? SENDER_SIDE_CATEGORIES.has(rule.category)) === false)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['refusesClient'],
        message: "only allowed on a sender-side rule (a refusal of Kurir is never the recipient's)",
      });
    if (rule.category === 'auth-failure' && rule.senderSide === false)
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['senderSide'],
        message: 'an authentication refusal is always sender-side (it never suppresses the recipient)',
      });
  });

const fileSchema = z.object({ rules: z.array(z.unknown()).min(1, 'at least one rule') }).strict();

type Predicate = (reply: { code: number | null; enhanced: string | null; text: string }) => boolean;

interface CompiledRule {
  id: string;
  category: BounceCategory;
  type: BounceType;
  senderSide: boolean;
  refusesClient?: true;
  cause?: AuthCause;
  description?: string;
  test: Predicate;
}

/** Loaded, validated and compiled rules: pass to {@link classifyReply}. */
export interface BounceRules {
  readonly source: string;
  readonly rules: ReadonlyArray<Readonly<Omit<CompiledRule, 'test'>>>;
  /** @internal compiled predicates, same order as `rules`. */
  readonly compiled: ReadonlyArray<CompiledRule>;
}

function codePredicate(patterns: string[]): Predicate {
  const tests = patterns.map((p): ((code: number | null) => boolean) => {
    const v = p.toLowerCase();
    if (v === 'none') return (code) => code === null;
    if (v.endsWith('xx')) return (code) => code !== null && Math.floor(code / 100) === Number(v[0]);
    return (code) => code === Number(v);
  });
  return (r) => tests.some((t) => t(r.code));
}

function enhancedPredicate(patterns: string[]): Predicate {
  const tests = patterns.map((p): ((enhanced: string | null) => boolean) => {
    if (p === 'none') return (e) => e === null;
    // Glob: `*` spans one or more segments, `?` is one digit.
    const re = new RegExp(
      `^${p
        .split('*')
        .map((s) => s.replace(/\./g, '\\.').replace(/\?/g, '\\d'))
        .join('[\\d.]+')}$`,
    );
    return (e) => e !== null && re.test(e);
  });
  return (r) => tests.some((t) => t(r.enhanced));
}

function label(index: number, raw: unknown): string {
  const id = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? ` (id "${(raw as { id: string }).id}")` : '';
  return `rules[${index}]${id}`;
}

function describeIssue(issue: ZodIssue): string {
  const field = issue.path.join('.') || '(rule)';
  if (issue.code === 'unrecognized_keys') return `${field === '(rule)' ? '' : `${field}: `}unknown field(s) ${issue.keys.join(', ')}`;
  if (issue.code === 'invalid_enum_value') return `${field}: ${JSON.stringify(issue.received)} is not one of ${issue.options.join(', ')}`;
  if (issue.code === 'invalid_union') {
    // Report the string branch's message (the one operators mean to write), not zod's "invalid input".
    const inner = issue.unionErrors.flatMap((e) => e.issues).find((i) => i.code !== 'invalid_type') ?? issue.unionErrors[0]?.issues[0];
    if (inner) return describeIssue({ ...inner, path: [...issue.path, ...inner.path.slice(issue.path.length)] } as ZodIssue);
  }
  if (issue.code === 'invalid_type' && issue.received === 'undefined') return `${field}: required`;
  return `${field}: ${issue.message}`;
}

/**
 * Validates and compiles a rules document (the parsed YAML). `source` names it in error messages.
 * Throws {@link BounceRulesError} listing every problem by rule index, id and field.
 */
export function compileBounceRules(doc: unknown, source = 'bounce rules'): BounceRules {
  const top = fileSchema.safeParse(doc);
  if (!top.success) {
    throw new BounceRulesError(
      `${source}: ${top.error.issues.map((i) => describeIssue(i).replace(/^\(rule\): /, '')).join('; ')} (expected a mapping with a "rules:" list)`,
    );
  }
  const problems: string[] = [];
  const compiled: CompiledRule[] = [];
  const ids = new Map<string, number>();
  top.data.rules.forEach((raw, index) => {
    const where = label(index, raw);
    const parsed = ruleSchema.safeParse(raw);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push(`${where}: ${describeIssue(issue)}`);
      return;
    }
    const rule = parsed.data;
    if (ids.has(rule.id)) problems.push(`${where}: id: duplicate of rules[${ids.get(rule.id)}]`);
    ids.set(rule.id, index);
    const predicates: Predicate[] = [];
    const { code, enhanced, text } = rule.match;
    if (code !== undefined) predicates.push(codePredicate(typeof code === 'string' ? [code] : code));
    if (enhanced !== undefined) predicates.push(enhancedPredicate(typeof enhanced === 'string' ? [enhanced] : enhanced));
    if (text !== undefined) {
      try {
        const re = new RegExp(text, 'i');
        predicates.push((r) => re.test(r.text));
      } catch (err) {
        problems.push(`${where}: match.text: not a valid regular expression (${(err as Error).message})`);
      }
    }
    compiled.push({
      id: rule.id,
      category: rule.category,
      type: rule.type,
      senderSide: rule.senderSide ?? SENDER_SIDE_CATEGORIES.has(rule.category),
      ...(rule.refusesClient ? { refusesClient: true as const } : {}),
      ...(rule.cause ? { cause: rule.cause } : {}),
      ...(rule.description ? { description: rule.description } : {}),
      test: (r) => predicates.every((p) => p(r)),
    });
  });
  const last = top.data.rules.at(-1) as { match?: Record<string, unknown> } | undefined;
  const lastIsCatchAll =
    !!last &&
    typeof last === 'object' &&
    (last.match === undefined || (typeof last.match === 'object' && last.match !== null && Object.keys(last.match).length === 0));
  if (!lastIsCatchAll)
    problems.push(`${label(top.data.rules.length - 1, last)}: match: the last rule must be a catch-all (match: {}) so every reply gets a category`);
  if (problems.length) throw new BounceRulesError(`${source}: invalid bounce rules:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return Object.freeze({
    source,
    compiled: Object.freeze(compiled),
    rules: Object.freeze(compiled.map(({ test: _test, ...rest }) => Object.freeze(rest))),
  });
}

/** Reads, validates and compiles a rules file (YAML). Throws {@link BounceRulesError} naming what is wrong. */
export function loadBounceRules(file: string = DEFAULT_BOUNCE_RULES_FILE): BounceRules {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new BounceRulesError(`${file}: cannot read bounce rules: ${e.code === 'ENOENT' ? 'file not found' : e.message}`);
  }
  return compileBounceRules(doc, file);
}

/**
 * Splits a reply as printed (`550 5.1.1 <x@y>: Recipient address rejected`, a DSN Diagnostic-Code
 * `smtp; 550-5.7.26 …`, or a bare error such as `connect ECONNREFUSED`) into code, enhanced code and text.
 */
export function parseReply(line: string): Required<ReplyInput> {
  const text = line.trim();
  const m = /^(?:smtp\s*;\s*)?([2-5]\d\d)(?:[\s-]|$)/i.exec(text);
  return { code: m ? Number(m[1]) : null, enhanced: extractEnhanced(text), text };
}

const FALLBACK: Omit<Classification, 'type'> = { category: 'other', senderSide: false, ruleId: '(none)' };

/**
 * Classifies one reply: the first rule whose every condition holds wins. A temporary reply is always `soft`
 * whatever the rule says (the receiver asked to try again, so it says nothing final about the recipient): a 4xx, and a
 * 5xx whose enhanced code has class 4 (`550 4.2.2`; see `temporaryFailure`, src/lib/enhanced-status.ts).
 */
export function classifyReply(rules: BounceRules, input: ReplyInput): Classification {
  const enhanced = input.enhanced?.trim() || extractEnhanced(input.text);
  const reply = { code: input.code, enhanced, text: input.text };
  const temporary = temporaryFailure(input.code, input.text, enhanced);
  for (const rule of rules.compiled) {
    if (!rule.test(reply)) continue;
    return {
      category: rule.category,
      type: temporary ? 'soft' : rule.type,
      senderSide: rule.senderSide,
      ruleId: rule.id,
      ...(rule.cause ? { cause: rule.cause } : {}),
      ...(rule.refusesClient ? { refusesClient: true as const } : {}),
    };
  }
  // Unreachable with a validated file (it ends in a catch-all); kept total for hand-built rule sets.
  return { ...FALLBACK, type: temporary || input.code === null ? 'soft' : 'hard' };
}

/** Classifies one reply; the gateway builds it from the loaded rules file. */
export type ReplyClassifier = (reply: ReplyInput) => Classification;

/** A classifier over a loaded rules file. */
export function rulesClassifier(rules: BounceRules): ReplyClassifier {
  return (reply) => classifyReply(rules, reply);
}
