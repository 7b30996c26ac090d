// node --test tools/scripts/test/
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { repositorySources, resolves, tokensDeclared, unresolvedTokens } from '../check-tokens.mjs';

test("every token exported from a package's tokens.ts is resolved in the repository's sources", () => {
  const sources = repositorySources();
  // The check reads the real token files (it would pass vacuously on none).
  assert.ok(tokensDeclared(sources['packages/core/src/tokens.ts']).includes('BACKENDS'));
  assert.ok(tokensDeclared(sources['packages/trainer/src/tokens.ts']).includes('CALLBACKS'));
  assert.deepEqual(unresolvedTokens(sources), []);
});

test('a token nobody resolves is reported; one named only in a comment or another token still is', () => {
  const sources = {
    'packages/x/src/tokens.ts': [
      "export const USED: InjectionToken<A> = Symbol('used');",
      "export const UNUSED: InjectionToken<B> = Symbol('unused');",
      "export const UNUSED_TOO: InjectionToken<C> = Symbol('unused-too');",
    ].join('\n'),
    'packages/x/src/thing.ts': [
      '// resolves UNUSED: @inject(UNUSED) in a comment does not count',
      'class Thing { constructor(@injectAll(USED, { isOptional: true }) a: A[]) {} }',
      '/** container.resolve(UNUSED) */',
    ].join('\n'),
    'apps/y/src/main.ts': 'const z = run.resolve(UNUSED_TOO_NOT);',
  };
  assert.deepEqual(unresolvedTokens(sources), [
    'packages/x/src/tokens.ts: UNUSED is exported but nothing in src resolves it (@inject/@injectAll/resolve)',
    'packages/x/src/tokens.ts: UNUSED_TOO is exported but nothing in src resolves it (@inject/@injectAll/resolve)',
  ]);
});

test('resolution through a composition root counts', () => {
  assert.ok(resolves('const t = run.resolve(TRAINER);', 'TRAINER'));
  assert.ok(resolves('const all = c.resolveAll<Callback>(CALLBACKS);', 'CALLBACKS'));
  assert.ok(!resolves('c.register(CALLBACKS, { useValue: cb });', 'CALLBACKS'));
});
