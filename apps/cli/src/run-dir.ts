import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';

/** Files and folders that mark a directory as holding a run. */
const RUN_FILES = ['summary.json', 'metrics.csv', 'metrics.jsonl', 'checkpoints', 'tensorboard'];

function holdsRun(dir: string): boolean {
  return existsSync(dir) && RUN_FILES.some((f) => existsSync(path.join(dir, f)));
}

/**
 * The directory a new run writes to. A reused `--out` never overwrites an earlier run: when `dir`
 * already holds one, the run goes to the first free `dir/version_N` (as Lightning's loggers do).
 * A resume continues in the directory its checkpoint belongs to (`dir` or one of its versions).
 */
export function runDirectory(dir: string, resume: string | undefined, log: (line: string) => void): string {
  if (resume) {
    const home = path.resolve(path.dirname(path.dirname(resume)));
    const root = path.resolve(dir);
    if (home === root || path.dirname(home) === root) return path.relative(process.cwd(), home) || '.';
  }
  if (!holdsRun(dir)) return dir;
  const taken = new Set(readdirSync(dir).filter((n) => /^version_\d+$/.test(n)));
  let n = 1;
  while (taken.has(`version_${n}`) || holdsRun(path.join(dir, `version_${n}`))) n++;
  const next = path.join(dir, `version_${n}`);
  log(`out: ${dir} holds an earlier run; this run writes to ${next}`);
  return next;
}
