/**
 * The import rule of lib/ (README, Development): folders are layers, and imports run down this
 * list only, never in a cycle.
 *
 * What it checks, on every lib/**\/*.ts as TypeScript parses it (import and export ... from, both
 * value and `import type` / `export type`, side-effect imports, `import('…')` calls and
 * `import('…').T` type references; specifiers from packages are not ours and pass):
 * (a) no upward import: a file imports only from its own layer or the layers before it;
 * (b) no import cycle between files, inside a folder too (type-only imports count: a cycle of
 *     types is still two modules that cannot be read one without the other);
 * (c) lib/ imports nothing outside lib/ (not scripts/, not test/), and every relative import
 *     names a file that exists; every file sits in a known layer.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ts from 'typescript';
import { PACKAGE_ROOT } from '../../lib/core/package.js';

const LAYERS = ['core', 'config', 'formats', 'process', 'postgres', 'storage', 'runtime', 'fleet', 'offsite', 'backup', 'pitr', 'restore', 'deployments', 'commands'];
const LIB = path.join(PACKAGE_ROOT, 'lib');

interface Edge {
  from: string;
  to: string;
  typeOnly: boolean;
}

function libFiles(dir = LIB): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return libFiles(p);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [p] : [];
  });
}

/** Every module specifier a file names, with whether it is for types only. */
function specifiers(file: string): { spec: string; typeOnly: boolean }[] {
  const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: { spec: string; typeOnly: boolean }[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier)) {
      const c = n.importClause;
      const allTypes = !!c && (c.isTypeOnly || (!c.name && !!c.namedBindings && ts.isNamedImports(c.namedBindings) && c.namedBindings.elements.length > 0 && c.namedBindings.elements.every((e) => e.isTypeOnly)));
      out.push({ spec: n.moduleSpecifier.text, typeOnly: allTypes });
    } else if (ts.isExportDeclaration(n) && n.moduleSpecifier && ts.isStringLiteral(n.moduleSpecifier)) {
      out.push({ spec: n.moduleSpecifier.text, typeOnly: n.isTypeOnly });
    } else if (ts.isImportEqualsDeclaration(n) && ts.isExternalModuleReference(n.moduleReference) && ts.isStringLiteral(n.moduleReference.expression)) {
      out.push({ spec: n.moduleReference.expression.text, typeOnly: n.isTypeOnly });
    } else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument) && ts.isStringLiteral(n.argument.literal)) {
      out.push({ spec: n.argument.literal.text, typeOnly: true });
    } else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword && n.arguments[0] && ts.isStringLiteral(n.arguments[0])) {
      out.push({ spec: n.arguments[0].text, typeOnly: false });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** The import graph of a lib/ folder, and what could not be placed in it. */
function graph(lib = LIB) {
  const rel = (p: string) => path.relative(path.dirname(lib), p);
  const layerOf = (file: string) => LAYERS.indexOf(path.relative(lib, file).split(path.sep)[0]);
  const files = libFiles(lib);
  const edges: Edge[] = [];
  const problems: string[] = [];
  for (const f of files) {
    if (layerOf(f) < 0) problems.push(`${rel(f)}: not in a known layer (${LAYERS.join(', ')})`);
    for (const { spec, typeOnly } of specifiers(f)) {
      if (!spec.startsWith('.') && !spec.startsWith('/')) continue; // a package (or node:)
      const target = path.resolve(path.dirname(f), spec).replace(/\.js$/, '.ts');
      if (!target.startsWith(lib + path.sep)) {
        problems.push(`${rel(f)} imports ${spec}: outside lib/ (${rel(target)})`);
        continue;
      }
      if (!existsSync(target)) {
        problems.push(`${rel(f)} imports ${spec}: no such file`);
        continue;
      }
      edges.push({ from: f, to: target, typeOnly });
    }
  }
  const show = (e: Edge) => `${rel(e.from)} → ${rel(e.to)}${e.typeOnly ? ' (type)' : ''}`;
  return {
    files,
    edges,
    problems,
    upward: edges.filter((e) => layerOf(e.to) > layerOf(e.from)).map(show),
    cycles: cycles(files, edges).map((c) => c.map(rel).join(' ⇄ ')),
  };
}

/** Every cycle's files, one list per strongly connected component of more than one file (or a file importing itself). */
function cycles(files: string[], edges: Edge[]): string[][] {
  const next = new Map(files.map((f) => [f, [] as string[]]));
  for (const e of edges) next.get(e.from)!.push(e.to);
  // Tarjan's algorithm.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const on = new Set<string>();
  const out: string[][] = [];
  const strong = (v: string) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of next.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v)!, idx.get(w)!));
    }
    if (low.get(v) === idx.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || next.get(v)!.includes(v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) strong(f);
  return out;
}

describe('the layers of lib/', () => {
  const g = graph();

  it('the check sees the code: every file in a layer, the imports found', () => {
    expect(g.files.length).toBeGreaterThan(30);
    expect(g.edges.length).toBeGreaterThan(100);
    expect(g.edges.some((e) => e.typeOnly)).toBe(true);
  });

  it('(a) imports run down the layers only: ' + LAYERS.join(' → '), () => {
    expect(g.upward).toEqual([]);
  });

  it('(b) no import cycle, between folders or inside one', () => {
    expect(g.cycles).toEqual([]);
  });

  it('(c) lib/ imports only lib/ and packages (never scripts/ or test/), and each relative import exists', () => {
    expect(g.problems).toEqual([]);
  });
});

describe('the checker itself, on a made-up lib/', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'pgfleet-unit-layers-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const put = (file: string, text: string) => {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  };

  it('reads value, type, re-export, side-effect and dynamic imports, and knows which are for types only', () => {
    put(
      'forms.ts',
      `import a from './a.js';
import type { T } from './t.js';
import { type U } from './u.js';
import { type V, w } from './vw.js';
export { x } from './x.js';
export type { Y } from './y.js';
export * from './star.js';
import './side.js';
import pino from 'pino';
const m = await import('./dyn.js');
let z: import('./typeref.js').Z;
`,
    );
    expect(specifiers(path.join(root, 'forms.ts'))).toEqual([
      { spec: './a.js', typeOnly: false },
      { spec: './t.js', typeOnly: true },
      { spec: './u.js', typeOnly: true },
      { spec: './vw.js', typeOnly: false },
      { spec: './x.js', typeOnly: false },
      { spec: './y.js', typeOnly: true },
      { spec: './star.js', typeOnly: false },
      { spec: './side.js', typeOnly: false },
      { spec: 'pino', typeOnly: false },
      { spec: './dyn.js', typeOnly: false },
      { spec: './typeref.js', typeOnly: true },
    ]);
  });

  it('reports an upward import (a type one too), a cycle across folders and inside one, and imports from scripts/, test/ or nowhere', () => {
    const lib = path.join(root, 'lib');
    put('lib/core/errors.ts', `import type { Context } from '../runtime/context.js';\nexport const E = 1;\n`);
    put('lib/runtime/context.ts', `import { E } from '../core/errors.js';\nimport { a } from './a.js';\n`);
    put('lib/runtime/a.ts', `export { b } from './b.js';\n`);
    put('lib/runtime/b.ts', `import { a } from './a.js';\nimport { x } from '../../scripts/sandbox/tenants.js';\nimport { h } from '../../test/helpers.js';\nimport { gone } from './gone.js';\n`);
    put('lib/commands/list.ts', `import { E } from '../core/errors.js';\n`);
    put('lib/misc/loose.ts', `export {};\n`);
    const g = graph(lib);
    expect(g.upward).toEqual(['lib/core/errors.ts → lib/runtime/context.ts (type)']);
    expect(g.cycles.sort()).toEqual(['lib/core/errors.ts ⇄ lib/runtime/context.ts', 'lib/runtime/a.ts ⇄ lib/runtime/b.ts']);
    expect(g.problems.sort()).toEqual([
      'lib/misc/loose.ts: not in a known layer (' + LAYERS.join(', ') + ')',
      'lib/runtime/b.ts imports ../../scripts/sandbox/tenants.js: outside lib/ (scripts/sandbox/tenants.ts)',
      'lib/runtime/b.ts imports ../../test/helpers.js: outside lib/ (test/helpers.ts)',
      'lib/runtime/b.ts imports ./gone.js: no such file',
    ]);
  });

  it('a chain is no cycle; a file importing itself is one', () => {
    const [a, b, c] = ['/l/a.ts', '/l/b.ts', '/l/c.ts'];
    const e = (from: string, to: string): Edge => ({ from, to, typeOnly: false });
    expect(cycles([a, b, c], [e(a, b), e(b, c), e(a, c)])).toEqual([]);
    expect(cycles([a, b, c], [e(a, b), e(b, c), e(c, a)])).toEqual([[a, b, c]]);
    expect(cycles([a, b], [e(a, a)])).toEqual([[a]]);
  });
});
