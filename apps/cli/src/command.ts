/** One `kiln` sub-command. Add a command by writing `commands/<name>.ts` and listing it in `commands/index.ts`. */
export interface Command {
  /** What users type after `kiln`. */
  name: string;
  /** One line for `kiln --help`. */
  summary: string;
  /** The command's `--help` text. */
  usage: string;
  /**
   * Runs the command. `out` is stdout (results; the last line is machine-readable where a command
   * has a result), `err` is stderr (progress, diagnostics). Returns the exit code.
   */
  run(argv: string[], out: (line: string) => void, err: (line: string) => void): Promise<number>;
}
