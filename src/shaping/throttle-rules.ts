/**
 * The rules that recognise "too fast" replies (config/throttle-rules.yaml): data, not code. `ignore`
 * rules are checked first; the first matching `throttle` rule names the signal.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../lib/errors.js';

const ruleSchema = z
  .object({
    name: z.string().min(1),
    code: z.number().int().min(400).max(499).optional(),
    enhanced: z
      .string()
      .regex(/^4\.(\d{1,3}|\*)\.(\d{1,3}|\*)$/, 'an enhanced status code such as 4.7.28 or 4.7.*')
      .optional(),
    match: z.string().min(1).optional(),
    network: z.boolean().optional(),
    afterSuccesses: z.number().int().min(1).optional(),
  })
  .strict();

const fileSchema = z.object({ ignore: z.array(ruleSchema).default([]), throttle: z.array(ruleSchema).min(1) }).strict();

type RuleSpec = z.infer<typeof ruleSchema>;

interface CompiledRule {
  spec: RuleSpec;
  enhanced?: RegExp;
  match?: RegExp;
}

/** A "too fast" signal: the rule's name, and how many clean deliveries must precede it (0: any). */
export interface ThrottleSignal {
  rule: string;
  afterSuccesses: number;
}

/** What the rules need of an outcome: the reply code (null without an SMTP reply) and text. */
export interface ReplyOutcome {
  kind: 'delivered' | 'temp' | 'perm' | 'expired';
  code: number | null;
  reply: string;
}

export interface ThrottleRules {
  /** The signal of the first temporary outcome that a throttle rule matches (and no ignore rule), or null. */
  classify(outcomes: readonly ReplyOutcome[]): ThrottleSignal | null;
}

function compile(spec: RuleSpec, where: string): CompiledRule {
  let match: RegExp | undefined;
  if (spec.match !== undefined) {
    try {
      match = new RegExp(spec.match, 'i');
    } catch (err) {
      throw new Error(`${where}.match: invalid regular expression (${(err as Error).message})`);
    }
  }
  const enhanced = spec.enhanced ? new RegExp(`^${spec.enhanced.replace(/\./g, '\\.').replace(/\*/g, '\\d{1,3}')}$`) : undefined;
  if (spec.code === undefined && !enhanced && !match && spec.network === undefined) {
    throw new Error(`${where}: a rule needs at least one of code, enhanced, match, network`);
  }
  return { spec, enhanced, match };
}

const ENHANCED = /\b([245]\.\d{1,3}\.\d{1,3})\b/;

function matches(rule: CompiledRule, o: ReplyOutcome): boolean {
  const s = rule.spec;
  if (s.code !== undefined && o.code !== s.code) return false;
  if (s.network !== undefined && (o.code === null) !== s.network) return false;
  if (rule.enhanced) {
    const e = ENHANCED.exec(o.reply);
    if (!e || !rule.enhanced.test(e[1])) return false;
  }
  if (rule.match && !rule.match.test(o.reply)) return false;
  return true;
}

/** Builds the rules from the file's parsed content; throws naming the rule at fault. */
export function compileThrottleRules(input: unknown, source = 'throttle rules'): ThrottleRules {
  const parsed = fileSchema.safeParse(input);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(root)'}: ${i.message}`).join('\n');
    throw new ConfigError(`${source}: invalid rules file:\n${issues}`);
  }
  const ignore = parsed.data.ignore.map((r, i) => compile(r, `${source}: ignore.${i}`));
  const throttle = parsed.data.throttle.map((r, i) => compile(r, `${source}: throttle.${i}`));
  return {
    classify(outcomes) {
      for (const o of outcomes) {
        if (o.kind !== 'temp') continue;
        if (ignore.some((r) => matches(r, o))) continue;
        const hit = throttle.find((r) => matches(r, o));
        if (hit) return { rule: hit.spec.name, afterSuccesses: hit.spec.afterSuccesses ?? 0 };
      }
      return null;
    },
  };
}

/** Reads and compiles a rules file (YAML). */
export function loadThrottleRules(file: string): ThrottleRules {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConfigError(`shaping.throttleRulesFile = ${JSON.stringify(file)}: cannot read (${e.code ?? e.message})`);
  }
  return compileThrottleRules(parseYaml(text), file);
}
