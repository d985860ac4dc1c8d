/**
 * The brief's "JSDoc on exported functions", checked: every function src/ exports (a declaration, or a const
 * holding an arrow function or function expression) and every public method and accessor of a class src/ exports
 * carries a JSDoc block. Files are read with TypeScript's parser only (no type checking); declaration files
 * (src/types) describe other people's libraries and are left out.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SRC = join(ROOT, 'src');

const sourceFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });

const hasJsDoc = (node: ts.Node): boolean => ts.getJSDocCommentsAndTags(node).some((d) => ts.isJSDoc(d));

const isExported = (node: ts.Node): boolean => ts.canHaveModifiers(node) && (ts.getModifiers(node) ?? []).some((m) => m.kind === ts.SyntaxKind.ExportKeyword);

const isPublicMember = (member: ts.ClassElement): boolean =>
  !(ts.getCombinedModifierFlags(member as ts.Declaration) & (ts.ModifierFlags.Private | ts.ModifierFlags.Protected)) &&
  !(member.name && ts.isPrivateIdentifier(member.name));

/** The function an initializer holds, through `as`, `satisfies` and parentheses; undefined for anything else. */
const functionValue = (init: ts.Expression | undefined): ts.Expression | undefined => {
  let e = init;
  while (e && (ts.isAsExpression(e) || ts.isSatisfiesExpression(e) || ts.isParenthesizedExpression(e))) e = e.expression;
  return e && (ts.isArrowFunction(e) || ts.isFunctionExpression(e)) ? e : undefined;
};

/**
 * `file:line name` of each exported function and public class member in `text` without a JSDoc block. A name
 * declared more than once (overloads, a get/set pair) counts as documented when one of its declarations is.
 * Local declarations exported by an `export { … }` list count as exported.
 */
function undocumentedExports(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const listed = new Set<string>();
  for (const st of sf.statements) {
    if (ts.isExportDeclaration(st) && !st.moduleSpecifier && st.exportClause && ts.isNamedExports(st.exportClause)) {
      for (const el of st.exportClause.elements) listed.add((el.propertyName ?? el.name).text);
    }
  }
  const seen = new Map<string, { line: number; documented: boolean }>();
  const note = (name: string, node: ts.Node, documented: boolean): void => {
    const line = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1;
    const prev = seen.get(name);
    seen.set(name, { line: prev?.line ?? line, documented: (prev?.documented ?? false) || documented });
  };
  for (const st of sf.statements) {
    if (ts.isFunctionDeclaration(st) && st.name && (isExported(st) || listed.has(st.name.text))) {
      note(st.name.text, st, hasJsDoc(st));
    } else if (ts.isVariableStatement(st) && isExported(st)) {
      for (const d of st.declarationList.declarations) {
        if (functionValue(d.initializer)) note(d.name.getText(sf), d, hasJsDoc(st));
      }
    } else if (ts.isVariableStatement(st)) {
      for (const d of st.declarationList.declarations) {
        if (ts.isIdentifier(d.name) && listed.has(d.name.text) && functionValue(d.initializer)) note(d.name.text, d, hasJsDoc(st));
      }
    } else if (ts.isClassDeclaration(st) && st.name && (isExported(st) || listed.has(st.name.text))) {
      for (const m of st.members) {
        const member = ts.isMethodDeclaration(m) || ts.isGetAccessorDeclaration(m) || ts.isSetAccessorDeclaration(m);
        if (member && isPublicMember(m)) note(`${st.name.text}.${m.name.getText(sf)}`, m, hasJsDoc(m));
      }
    }
  }
  return [...seen].filter(([, v]) => !v.documented).map(([name, v]) => `${file}:${v.line} ${name}`);
}

describe('JSDoc on the exported API of src/', () => {
  it('finds what it is meant to find, and nothing more', () => {
    const sample = [
      'export function bare() {}',
      '/** Documented. */ export function documented() {}',
      'export const arrow = (a: number) => a;',
      'export const table = { a: 1 };',
      'function local() {}',
      'const listedArrow = () => 1;',
      'export { local, listedArrow };',
      'export function over(a: string): string;',
      '/** Overloads: one block is enough. */ export function over(a: number): number;',
      'export function over(a: unknown) { return a; }',
      'export class Box {',
      '  constructor() {}',
      '  open() {}',
      '  /** Documented. */ shut() {}',
      '  get size() { return 1; }',
      '  private hidden() {}',
      '  protected inner() {}',
      '  #secret() {}',
      '  static make() { return new Box(); }',
      '}',
      'class Internal { run() {} }',
      'export interface Shape { area(): number }',
    ].join('\n');
    expect(undocumentedExports('sample.ts', sample)).toEqual([
      'sample.ts:1 bare',
      'sample.ts:3 arrow',
      'sample.ts:5 local',
      'sample.ts:6 listedArrow',
      'sample.ts:13 Box.open',
      'sample.ts:15 Box.size',
      'sample.ts:19 Box.make',
    ]);
  });

  it('every exported function and public method of an exported class has a JSDoc block', () => {
    const files = sourceFiles(SRC);
    expect(files.length).toBeGreaterThan(100);
    const missing = files.flatMap((f) => undocumentedExports(relative(ROOT, f), readFileSync(f, 'utf8')));
    expect(missing, 'exported without a JSDoc block (what it does, returns, throws)').toEqual([]);
  });
});
