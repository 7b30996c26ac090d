import { readdirSync, readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * One concept, one name: no two packages may export the same name for different things (a
 * `ModelSummary` interface here and a `ModelSummary` class there). The public surface of every
 * package is read from its `src/index.ts` with the TypeScript compiler — types included, which a
 * runtime import would not see — and each exported name is resolved through re-exports to its
 * declaration; a name declared in two places is a clash.
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * Clashes kept on purpose, each with its reason. The test also fails when one stops clashing, so
 * the list cannot go stale.
 */
const ALLOWED: Record<string, string> = {
  // Keras's callback and PyTorch's scheduler share the name; the callback (trainer) drives the
  // schedule (optim), so the rule itself is implemented once.
  ReduceLROnPlateau: '@kiln/optim, @kiln/trainer',
};

interface Export {
  pkg: string;
  /** Where the name is declared, after following re-exports: `packages/zoo/src/summary.ts:1234`. */
  declaredAt: string;
  /** What it is, for the message: `class (1 constructor parameter)`, `interface`, `function (2 parameters)`. */
  shape: string;
}

function describeShape(sym: ts.Symbol): string {
  const f = sym.flags;
  const decl = sym.declarations?.[0];
  const arity = (d: ts.Declaration | undefined) => (d && ts.isFunctionLike(d) ? d.parameters.length : undefined);
  if (f & ts.SymbolFlags.Class) {
    const ctor = decl && ts.isClassDeclaration(decl) ? decl.members.find(ts.isConstructorDeclaration) : undefined;
    return `class (${ctor ? ctor.parameters.length : 0} constructor parameters)`;
  }
  if (f & ts.SymbolFlags.Function) return `function (${arity(decl)} parameters)`;
  if (f & ts.SymbolFlags.Interface) return 'interface';
  if (f & ts.SymbolFlags.TypeAlias) return 'type';
  if (f & ts.SymbolFlags.Enum) return 'enum';
  if (f & ts.SymbolFlags.Variable) return 'value';
  if (f & ts.SymbolFlags.Module) return 'namespace';
  return 'other';
}

function publicExports(): Map<string, Export[]> {
  const packages = readdirSync(path.join(ROOT, 'packages'))
    .map((d) => path.join(ROOT, 'packages', d))
    .filter((d) => existsSync(path.join(d, 'src/index.ts')));
  const entries = packages.map((d) => path.join(d, 'src/index.ts'));
  // Every `@kiln/x` import resolves to that package's source, so re-exports meet the same declaration.
  const program = ts.createProgram(entries, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    baseUrl: ROOT,
    paths: { '@kiln/*': ['packages/*/src/index.ts'] },
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const byName = new Map<string, Export[]>();
  for (const [i, entry] of entries.entries()) {
    const pkg = (JSON.parse(readFileSync(path.join(packages[i], 'package.json'), 'utf8')) as { name: string }).name;
    const source = program.getSourceFile(entry);
    const moduleSymbol = source && checker.getSymbolAtLocation(source);
    if (!moduleSymbol) throw new Error(`cannot read the exports of ${entry}`);
    for (const e of checker.getExportsOfModule(moduleSymbol)) {
      const target = e.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(e) : e;
      const decl = target.declarations?.[0];
      const declaredAt = decl ? `${path.relative(ROOT, decl.getSourceFile().fileName)}:${decl.getStart()}` : `${pkg}:${e.name}`;
      const list = byName.get(e.name) ?? [];
      list.push({ pkg, declaredAt, shape: describeShape(target) });
      byName.set(e.name, list);
    }
  }
  return byName;
}

describe('public names across packages', () => {
  it('no two packages export one name for two different declarations (types included)', () => {
    const clashes: Record<string, string> = {};
    const messages: string[] = [];
    for (const [name, list] of publicExports()) {
      if (new Set(list.map((e) => e.declaredAt)).size < 2) continue;
      clashes[name] = [...new Set(list.map((e) => e.pkg))].sort().join(', ');
      if (!ALLOWED[name]) messages.push(`${name}: ${list.map((e) => `${e.pkg} ${e.shape} at ${e.declaredAt}`).join(' vs ')}`);
    }
    expect(messages, 'rename one, or export the other package’s declaration').toEqual([]);
    // The allowed clashes are still there (else drop them from ALLOWED).
    expect(Object.fromEntries(Object.keys(ALLOWED).map((n) => [n, clashes[n]]))).toEqual(ALLOWED);
  }, 120_000);
});
