#!/usr/bin/env node
// The `kiln` command. This launcher is committed (dist/ is built), so that npm links the command
// when it installs the workspace, before `npm run build` has produced dist/cli.js.
import { existsSync } from 'node:fs';
import { TRAINING_COMMANDS, growYoungGenerationAtOnce } from './young-generation.mjs';

const cli = new URL('../dist/cli.js', import.meta.url);
if (!existsSync(cli)) {
  console.error('kiln: the command is not built yet: run `npm run build` in the repository first');
  process.exit(1);
}
// Before Kiln loads: V8 then grows its young generation to the working size in one step, so a
// training run's RSS is at its steady level by the end of epoch 1 (see young-generation.mjs).
if (TRAINING_COMMANDS.has(process.argv[2])) growYoungGenerationAtOnce();
await import(cli.href);
