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
  write(`kiln: unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  return 1;
}
