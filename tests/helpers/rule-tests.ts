/**
 * promtool unit-test files cut to what each test reads. `promtool test rules` evaluates every rule of the rule files
 * at every evaluation step of every test: the 173-hour confirmation-baseline test evaluated all 60-odd rules some
 * 2,600 times (31 s of the suite's 50 s of promtool). Here each test of a file becomes a file of its own whose rule
 * files hold only the rules it names (the alerts in `alert_rule_test`, the series in `promql_expr_test`) and the
 * recording rules those read, transitively: rule text, group names, group intervals and order are copied as they are,
 * so each rule is evaluated exactly as Prometheus would, only the unrelated ones are left out. A rule that reads
 * `ALERTS` keeps every rule (it could depend on any alert).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';

interface Rule {
  record?: string;
  alert?: string;
  expr: string;
}
interface RuleGroup {
  name: string;
  rules: Rule[];
  [key: string]: unknown;
}
interface UnitTest {
  alert_rule_test?: Array<{ alertname: string }>;
  promql_expr_test?: Array<{ expr: string }>;
  [key: string]: unknown;
}
interface TestFile {
  rule_files: string[];
  tests: UnitTest[];
  [key: string]: unknown;
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/g;

/** The names of rules (recorded series or alerts) in `wanted` and every recording rule they read, transitively. */
function closure(rules: Rule[], wanted: Set<string>): Set<string> {
  const byName = new Map<string, Rule>();
  for (const r of rules) byName.set((r.record ?? r.alert) as string, r);
  const keep = new Set<string>();
  const todo = [...wanted].filter((n) => byName.has(n));
  while (todo.length) {
    const name = todo.pop() as string;
    if (keep.has(name)) continue;
    keep.add(name);
    for (const word of byName.get(name)?.expr.match(NAME) ?? []) if (byName.has(word) && !keep.has(word)) todo.push(word);
  }
  return keep;
}

/**
 * Writes one promtool test file per test of `testFile` into `outDir`, each with rule files cut to what that test
 * reads; answers their paths, in the order of the tests.
 */
export function splitRuleTests(testFile: string, outDir: string): string[] {
  const source = parse(readFileSync(testFile, 'utf8')) as TestFile;
  const ruleFiles = source.rule_files.map((f) => resolve(dirname(testFile), f));
  const groupsOf = ruleFiles.map((f) => (parse(readFileSync(f, 'utf8')) as { groups: RuleGroup[] }).groups);
  const allRules = groupsOf.flatMap((groups) => groups.flatMap((g) => g.rules));
  const readsAlerts = allRules.some((r) => /\bALERTS(_FOR_STATE)?\b/.test(r.expr));
  const stem = basename(testFile, '.yml');
  return source.tests.map((test, i) => {
    const wanted = new Set<string>([
      ...(test.alert_rule_test ?? []).map((t) => t.alertname),
      ...(test.promql_expr_test ?? []).flatMap((t) => t.expr.match(NAME) ?? []),
    ]);
    const keep = closure(allRules, wanted);
    const files = groupsOf.map((groups, f) => {
      const cut = groups
        .map((g) => ({ ...g, rules: readsAlerts ? g.rules : g.rules.filter((r) => keep.has((r.record ?? r.alert) as string)) }))
        .filter((g) => g.rules.length > 0);
      const file = join(outDir, `${stem}-${i}-rules-${f}.yml`);
      writeFileSync(file, stringify({ groups: cut }));
      return file;
    });
    const out = join(outDir, `${stem}-${i}.yml`);
    writeFileSync(out, stringify({ ...source, rule_files: files, tests: [test] }));
    return out;
  });
}
