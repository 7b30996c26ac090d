// A vitest setup file (tools/testing/vitest.config.mjs): every test file gets its own temporary
// directory, and everything written there is removed when the file's tests end.
//
// Tests make run directories, checkpoints and fixtures under os.tmpdir(); one CLI test alone used to
// leave 17 run directories of 384 MB behind, and a CI machine with a smaller disk than a developer's
// ran out of space part-way through the suite. os.tmpdir() reads TMPDIR on every call, and child
// processes inherit it, so pointing TMPDIR at a per-file directory bounds what the suite holds at
// once to what the files running at that moment write.
//
// KILN_KEEP_TEST_TMP=1 keeps the directories (their paths are printed) for looking at what a test drew.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';

const previous = process.env.TMPDIR;
const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-test-'));
process.env.TMPDIR = dir;

afterAll(() => {
  if (previous === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previous;
  if (process.env.KILN_KEEP_TEST_TMP === '1') console.log(`kept the test file's temporary directory: ${dir}`);
  else rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
});
