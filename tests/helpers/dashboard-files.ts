/**
 * The dashboards folder as the dashboard tests read it: its paths and the Prometheus rule files (alerts and
 * recording rules) parsed from YAML.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';

export const ROOT = resolve(import.meta.dirname, '../..');
export const DASH = join(ROOT, 'dashboards');
export const GRAFANA = join(DASH, 'grafana');

/** One alert or recording rule. */
export interface Rule {
  record?: string;
  alert?: string;
  expr: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  for?: string;
}

export interface RuleFile {
  groups: Array<{ name: string; rules: Rule[] }>;
}

/** A rule file of dashboards/ (`alerts.yml`, `recording-rules.yml`), parsed. */
export function ruleFile(file: string): RuleFile {
  return parse(readFileSync(join(DASH, file), 'utf8')) as RuleFile;
}
