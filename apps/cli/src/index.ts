/**
 * @kiln/cli — the `kiln` command. `runCli(argv)` is the whole program, so tests drive it in-process.
 */
import { reportError, UsageError } from './errors.js';
import { train, TRAIN_USAGE } from './commands/train.js';

export { train, TRAIN_USAGE, UsageError };
export type { TrainSummary } from './commands/train.js';

const USAGE = `usage: kiln <command> [options]

commands:
  train     train a zoo model on a dataset and print test accuracy as JSON
${''}
run 'kiln <command> --help' for a command's options
`;

export async function runCli(
  argv: string[],
  out: (line: string) => void = (l) => process.stdout.write(l.endsWith('\n') ? l : l + '\n'),
  err: (line: string) => void = (l) => process.stderr.write(l.endsWith('\n') ? l : l + '\n'),
): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'train': {
        const summary = await train(rest, out, err);
        // The last line on stdout is the machine-readable result.
        out(JSON.stringify(summary));
        return 0;
      }
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        out(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'`, USAGE);
    }
  } catch (e) {
    if (e instanceof TypeError && (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      return reportError(new UsageError(e.message, command === 'train' ? TRAIN_USAGE : USAGE), (s) => err(s));
    }
    return reportError(e, (s) => err(s));
  }
}
