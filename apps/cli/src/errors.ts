import { KilnError } from '@kiln/core';

/** Exit codes: 0 ok, 1 run failed, 2 bad usage or environment (no stack trace printed). */
export class UsageError extends KilnError {
  constructor(message: string, hint?: string) {
    super('E_USAGE', message, { hint });
  }
}

/** Prints a Kiln error as the user should see it: message and fix, no stack. */
export function reportError(e: unknown, write: (s: string) => void = (s) => process.stderr.write(s)): number {
  if (e instanceof KilnError) {
    write(`kiln: error: ${e.message}\n`);
    return e instanceof UsageError || e.code === 'E_CONFIG' ? 2 : 1;
  }
  if (e instanceof WebAssembly.RuntimeError && /memory access out of bounds|out of memory/i.test(e.message)) {
    // tfjs-backend-wasm reports an exhausted heap (at most 4 GiB) this way, e.g. VGG's 130M
    // parameters with Adam's two slots and their gradients.
    write(
      `kiln: error: the WebAssembly backend ran out of memory (${e.message})\n` +
        '  fix: a smaller --batch-size or --image-size, an optimizer with less state (--optimizer sgd), or another backend (--backend cpu, cpu-native, cuda)\n',
    );
    return 1;
  }
  write(`kiln: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}
