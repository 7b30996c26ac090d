import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeBuiltin } from '../src/index.js';

describe('nodeBuiltin', () => {
  const proc = process as { getBuiltinModule?: unknown };
  const original = proc.getBuiltinModule;
  afterEach(() => {
    proc.getBuiltinModule = original;
  });

  it("returns Node's module", () => {
    expect(nodeBuiltin<typeof os>('os')?.tmpdir()).toBe(os.tmpdir());
  });

  it('falls back to require where process.getBuiltinModule is missing (Node before 20.16)', () => {
    proc.getBuiltinModule = undefined;
    const required = typeof require === 'function';
    expect(nodeBuiltin<typeof os>('os')?.tmpdir()).toBe(required ? os.tmpdir() : undefined);
  });
});
