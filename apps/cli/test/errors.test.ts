import { describe, expect, it } from 'vitest';
import { ConfigError } from '@kiln/core';
import { reportError } from '../src/errors.js';

function report(e: unknown): { code: number; text: string } {
  let text = '';
  const code = reportError(e, (s) => (text += s));
  return { code, text };
}

describe('reportError', () => {
  it('explains an exhausted WebAssembly heap and what to change, without a stack', () => {
    const r = report(new WebAssembly.RuntimeError('memory access out of bounds'));
    expect(r.code).toBe(1);
    expect(r.text).toMatch(/WebAssembly backend ran out of memory/);
    expect(r.text).toMatch(/--batch-size/);
    expect(r.text).toMatch(/--backend cpu/);
    expect(r.text).not.toMatch(/^\s+at /m);
  });

  it('keeps usage errors at exit code 2 and other crashes with their stack', () => {
    expect(report(new ConfigError('--epochs', 'an integer >= 1', 'zero')).code).toBe(2);
    const other = report(new WebAssembly.RuntimeError('unreachable'));
    expect(other.text).toMatch(/unexpected error: RuntimeError: unreachable/);
  });
});
