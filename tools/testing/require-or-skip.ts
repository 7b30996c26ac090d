/**
 * The one way a Kiln test skips for want of something on the machine (a dataset, a generated
 * fixture, a build, PyTorch, a GPU). Outside CI it skips and records why; under CI (`CI` set, as
 * .ci/run sets it) a missing requirement fails the test instead, because a skip there would pass
 * the suite without running what it was meant to run. The only skips CI accepts are the ones in
 * ALLOWED_SKIPS, things no CI machine can have.
 *
 * The reason goes into the test's `meta`, which vitest's JSON report keeps, so
 * tools/scripts/test-summary.mjs can list every skipped test with its reason and fail CI on a skip
 * that did not come through here (a bare `it.skip`/`skipIf`).
 */
import type { TestContext } from 'vitest';
import { underCi } from './under-ci.mjs';

export { underCi };

declare module 'vitest' {
  interface TaskMeta {
    /** Why the test skipped (set by requireOrSkip). */
    skipReason?: string;
    /** The ALLOWED_SKIPS key that lets this skip stand under CI. */
    skipAllowed?: AllowedSkip;
  }
}

/**
 * Skips that stand under CI too, and why. A machine either has one of the optional native tfjs
 * packages or not, so the tests of its presence and of its absence cannot both run there.
 */
export const ALLOWED_SKIPS = {
  'tfjs-node': '@tensorflow/tfjs-node is optional and CI does not install it (its install step downloads libtensorflow from outside the npm registry); the tests of it installed skip, and where it is installed, those simulating its absence',
  'tfjs-node-gpu': '@tensorflow/tfjs-node-gpu needs an NVIDIA GPU with CUDA, which CI machines do not have; where it is installed, the tests of its absence skip instead',
  'dnnl-off': 'KILN_DNNL=0 turns the oneDNN kernels off: the CI pass that tests the WASM kernels alone',
} as const;

export type AllowedSkip = keyof typeof ALLOWED_SKIPS;

/** 'dnnl-off' when KILN_DNNL=0 turned oneDNN off on purpose, for the tests that need its kernels. */
export const whenDnnlOff: AllowedSkip | undefined = process.env.KILN_DNNL === '0' ? 'dnnl-off' : undefined;

/** The error a missing requirement raises under CI. */
export class MissingRequirementError extends Error {
  constructor(reason: string) {
    super(`${reason} (required under CI, where this test may not skip; outside CI it skips)`);
    this.name = 'MissingRequirementError';
  }
}

/**
 * Call at the start of a test (or in a `beforeEach`, for a whole `describe`) with why it cannot
 * run here, or `undefined`/`false` when it can. Skips the test with that reason, or, under CI,
 * throws MissingRequirementError unless `allowed` names an ALLOWED_SKIPS entry.
 */
export function requireOrSkip(ctx: TestContext, missing: string | undefined | false, allowed?: AllowedSkip): void {
  if (!missing) return;
  if (underCi() && !allowed) throw new MissingRequirementError(missing);
  ctx.task.meta.skipReason = allowed ? `${missing} [allowed: ${ALLOWED_SKIPS[allowed]}]` : missing;
  if (allowed) ctx.task.meta.skipAllowed = allowed;
  ctx.skip(missing);
}
