// V8's young generation, sized for training from its first growth.
//
// V8 starts each semi-space of the young generation at 1 MiB and doubles it (the
// --semi-space-growth-factor, 2) whenever a scavenge finds more alive than it holds, up to its cap
// (--max-semi-space-size, 16 MiB on 64-bit Node 20). A training loop allocates short-lived objects
// every step, so a `kiln train` process reaches that cap anyway, but by doubling over its first
// epochs: RSS steps up by ~16 MiB after the end of epoch 1 (1 → 8 MiB per semi-space during it,
// 16 in epoch 2), which the soak measured as +20% against epoch 1 with nothing live growing.
//
// Growing in one step to the cap puts that step before the first epoch ends. The flag is read by
// V8 each time it grows the young generation, so unlike --min-semi-space-size (read once when the
// heap is configured, and not allowed in NODE_OPTIONS) it can be set from inside the process, for
// `kiln` started through npm's link, `node bin/kiln.mjs` or `npx` alike, and it never raises the cap:
// a user's --max-semi-space-size still bounds it.
//
// The cost: a process that would have grown its young generation to a few MiB grows it to the cap
// instead (2 × 16 MiB, resident as it is used). Loading Kiln alone grows it, so `kiln train --help`
// peaks at 104–114 MiB instead of 90–92 MiB. Only the commands that train in their own process get it,
// where the cap is reached within minutes anyway; the others keep V8's doubling.

import v8 from 'node:v8';

/** How much V8 multiplies a semi-space by when it grows it: 1 MiB to the 16 MiB cap in one step. */
export const SEMI_SPACE_GROWTH_FACTOR = 16;

/** The `kiln` commands that train in their own process (search's in-process trials included). */
export const TRAINING_COMMANDS = new Set(['train', 'fine-tune', 'tune', 'search']);

/** Flags that mean the user sized the young generation's growth themselves. */
const OWN_FLAG = /^--(semi[-_]space[-_]growth[-_]factor|min[-_]semi[-_]space[-_]size)(=|$)/;

/**
 * Makes V8 grow the young generation to its cap at its first growth, unless the user opted out
 * (`KILN_V8_DEFAULTS=1`) or chose the growth or the starting size themselves (in node's arguments
 * or NODE_OPTIONS). Call it before loading Kiln. Returns whether it changed the flag.
 */
export function growYoungGenerationAtOnce(env = process.env, execArgv = process.execArgv) {
  if (env.KILN_V8_DEFAULTS === '1') return false;
  const given = [...execArgv, ...(env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (given.some((arg) => OWN_FLAG.test(arg))) return false;
  v8.setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
  return true;
}
