/**
 * @kiln/cli — the `kiln` command. `runCli(argv)` is the whole program, so tests drive it in-process.
 */
import { reportError, UsageError } from './errors.js';
import { COMMANDS } from './commands/index.js';

export { UsageError, COMMANDS };
export type { Command } from './command.js';
export { train, TRAIN_USAGE } from './commands/train.js';
export type { TrainSummary } from './commands/train.js';

function usage(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return `usage: kiln <command> [options]\n\ncommands:\n${COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}\n\nrun 'kiln <command> --help' for a command's options\n`;
}

const line = (write: (s: string) => unknown) => (l: string) => {
  write(l.endsWith('\n') ? l : l + '\n');
};

/** Runs the `kiln` command line `argv` (without `node kiln`); resolves to the exit code. */
export async function runCli(
  argv: string[],
  out: (line: string) => void = line((s) => process.stdout.write(s)),
  err: (line: string) => void = line((s) => process.stderr.write(s)),
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command '${name}'`, usage());
    if (rest.includes('--help') || rest.includes('-h')) {
      out(command.usage);
      return 0;
    }
    return await command.run(rest, out, err);
  } catch (e) {
    if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      return reportError(new UsageError(e.message, command?.usage ?? usage()), err);
    }
    return reportError(e, err);
  }
}
