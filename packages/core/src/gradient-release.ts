/**
 * Kiln's gradient pass: tfjs-core 4.22's `Engine.gradients` with a tape walk that frees memory as
 * it goes. Installed once, on the engine's prototype, by `./tfjs-core.ts` when it loads the engine; every
 * `tf.grad`, `tf.grads`, `tf.valueAndGrads`, `tf.variableGrads` and `optimizer.minimize` runs it.
 *
 * Why: tfjs's pass (`engine.gradients` + `tape.backpropagateGradients`) keeps every tensor a kernel
 * saved for its gradient (`node.saved`) and the accumulated gradient of every intermediate until
 * the whole backward pass has ended, so the backward pass peaks at all saved activations plus the
 * gradients of all of them. On the WASM backend that peak becomes the heap's size for good (a
 * WebAssembly memory never shrinks): training ResNet-18 peaked at ~1.6× PyTorch's RSS. PyTorch's
 * autograd frees a node's saved tensors and its incoming gradient once the node's backward has run;
 * this pass does the same:
 *
 * - after a tape node's backward has run, the tensors it saved are disposed, and so are the
 *   accumulated gradients of its outputs: an output's gradient is read only by the node that
 *   produced it (a tape is in creation order, so no node processed later can take it as input);
 * - before the walk, the saved tensors of nodes that are not on a path from the `xs` to `y` (they
 *   never run backward) are disposed.
 *
 * Only tensors this backward pass's own scope would have disposed at its end are released early
 * (a gradient tensor is released when it belongs to that scope and is not kept; the caller's `dy`,
 * a tensor a custom gradient returns from outside, and the `xs`' gradients stay), and a tensor that
 * more than one gradient slot holds (a custom gradient may return `dy` itself for two inputs) goes
 * only when the last slot lets go of it. The kernels run are tfjs's, in tfjs's order, so gradients
 * are bit-identical; only when tensors are freed changes.
 *
 * Where releasing is not safe, tfjs's own pass runs: a gradient taken inside another gradient's
 * function (`gradientDepth > 0`, e.g. the inner `tf.grad` of `tf.grad(tf.grad(f))`) records its
 * backward kernels on the enclosing tape, whose backward pass still needs them. The outer pass of
 * a higher-order gradient is an ordinary first-order pass over that tape and releases as it goes.
 *
 * `KILN_TAPE_RELEASE=0` in the environment (or `tf.env().set('KILN_TAPE_RELEASE', false)`, or the
 * URL flag `?tfjsflags=KILN_TAPE_RELEASE:false` in a browser) runs tfjs's original pass instead.
 */
import { ENGINE } from '@tensorflow/tfjs-core/dist/engine.js';
import type { Environment } from '@tensorflow/tfjs-core/dist/environment.js';
import { add } from '@tensorflow/tfjs-core/dist/ops/add.js';
import { fill } from '@tensorflow/tfjs-core/dist/ops/fill.js';
import { ones } from '@tensorflow/tfjs-core/dist/ops/ones.js';
import { getFilteredNodesXToY, type TapeNode } from '@tensorflow/tfjs-core/dist/tape.js';
import { Tensor } from '@tensorflow/tfjs-core/dist/tensor.js';
import { arraysEqual, assert } from '@tensorflow/tfjs-core/dist/util_base.js';

/** The tfjs flag (and environment variable, `0` = off) that selects this pass; on by default. */
export const TAPE_RELEASE_FLAG = 'KILN_TAPE_RELEASE';

type Gradients = (f: () => Tensor, xs: Tensor[], dy?: Tensor, allowNoGradients?: boolean) => { value: Tensor; grads: Tensor[] };

/** The parts of tfjs-core 4.22's `Engine` this pass uses; most are private in its declarations. */
interface EngineInternals {
  ENV: Environment;
  state: { activeTape: TapeNode[] | null; gradientDepth: number; activeScope: { id: number } };
  scopedRun<R>(start: () => void, end: () => void, f: () => R): R;
  startTape(): void;
  endTape(): void;
  tidy<R>(nameOrFn: string | (() => R), fn?: () => R): R;
  gradients: Gradients;
}

/** Marks a prototype already patched, so two loaded copies of @kiln/core install the pass once. */
const INSTALLED = Symbol.for('kiln.gradientRelease');

/**
 * The accumulated gradient of each tensor on the tape, by tensor id, with a count of the slots
 * that hold each gradient tensor (one tensor may fill several slots).
 */
class GradientSlots {
  private readonly byId = new Map<number, Tensor>();
  private readonly holders = new Map<Tensor, number>();

  get(id: number): Tensor | undefined {
    return this.byId.get(id);
  }

  set(id: number, t: Tensor): void {
    const old = this.byId.get(id);
    if (old !== undefined) this.unhold(old);
    this.byId.set(id, t);
    this.holders.set(t, (this.holders.get(t) ?? 0) + 1);
  }

  /** Whether some slot holds `t`. */
  holds(t: Tensor): boolean {
    return this.holders.has(t);
  }

  /** Empties slot `id`; returns its tensor when no other slot holds it. */
  take(id: number): Tensor | undefined {
    const t = this.byId.get(id);
    if (t === undefined) return undefined;
    this.byId.delete(id);
    return this.unhold(t) ? t : undefined;
  }

  private unhold(t: Tensor): boolean {
    const n = (this.holders.get(t) ?? 1) - 1;
    if (n > 0) {
      this.holders.set(t, n);
      return false;
    }
    this.holders.delete(t);
    return true;
  }
}

/**
 * `Engine.gradients` (tfjs-core 4.22, engine.ts) with `backpropagateGradients` (tape.ts) inlined
 * and releasing as it goes; the checks and their messages are tfjs's. Falls back to `original`
 * where releasing is not safe or is turned off.
 */
function releasingGradients(original: Gradients): Gradients {
  return function gradients(this: EngineInternals, f, xs, dy, allowNoGradients = false) {
    if (this.state.gradientDepth > 0 || !this.ENV.getBool(TAPE_RELEASE_FLAG)) return original.call(this, f, xs, dy, allowNoGradients);
    assert(xs.length > 0, () => 'gradients() received an empty list of xs.');
    if (dy != null && dy.dtype !== 'float32') throw new Error(`dy must have 'float32' dtype, but has '${dy.dtype}'`);
    const y = this.scopedRun(
      () => this.startTape(),
      () => this.endTape(),
      () => this.tidy('forward', f),
    );
    assert(y instanceof Tensor, () => 'The result y returned by f() must be a tensor.');
    const tape = this.state.activeTape ?? [];
    const filteredTape = getFilteredNodesXToY(tape, xs, y);
    if (!allowNoGradients && filteredTape.length === 0 && xs.length > 0) {
      throw new Error('Cannot compute gradient of y=f(x) with respect to x. Make sure that the f you passed encloses all operations that lead from x to y.');
    }
    return this.tidy('backward', () => {
      const scope = this.state.activeScope.id;
      // Released early: what this scope would dispose at its end anyway.
      const release = (t: Tensor | undefined) => {
        if (t !== undefined && !t.kept && t.scopeId === scope) t.dispose();
      };
      const onPath = new Set(filteredTape.map((n) => n.id));
      for (const node of tape) if (!onPath.has(node.id)) for (const t of node.saved ?? []) t.dispose();

      const slots = new GradientSlots();
      slots.set(y.id, dy == null ? ones(y.shape) : dy);
      const returned = new Set(xs.map((x) => x.id));
      for (let i = filteredTape.length - 1; i >= 0; i--) {
        const node = filteredTape[i];
        // An output outside the backward subgraph (the argmax of a max pool that keeps it) gets
        // zeros. tfjs makes them from a zeroed JavaScript array copied to the backend (~0.1 ms for
        // LeNet-5's first pool's argmax on WASM); the backend's Fill kernel writes them in place.
        const filled: Tensor[] = [];
        const dys = node.outputs.map((o) => {
          const g = slots.get(o.id);
          if (g !== undefined || (o.dtype !== 'float32' && o.dtype !== 'int32')) return g ?? null;
          const zeros = fill(o.shape, 0, o.dtype);
          filled.push(zeros);
          return zeros;
        }) as Tensor[];
        if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
        const inputGradients = node.gradient(dys);
        for (const inputName in node.inputs) {
          if (!(inputName in inputGradients)) {
            throw new Error(`Cannot backprop through input ${inputName}. Available gradients found: ${Object.keys(inputGradients)}.`);
          }
          const dx = this.tidy(() => inputGradients[inputName]());
          if (dx.dtype !== 'float32') {
            throw new Error(`Error in gradient for op ${node.kernelName}. The gradient of input ${inputName} must have 'float32' dtype, but has '${dx.dtype}'`);
          }
          const x = node.inputs[inputName];
          if (!arraysEqual(dx.shape, x.shape)) {
            throw new Error(
              `Error in gradient for op ${node.kernelName}. The gradient of input '${inputName}' has shape '${dx.shape}', which does not match the shape of the input '${x.shape}'`,
            );
          }
          const current = slots.get(x.id);
          if (current === undefined) {
            slots.set(x.id, dx);
          } else {
            slots.set(x.id, add(current, dx));
            current.dispose();
          }
        }
        // This node's backward has run: nothing reads its saved tensors or its outputs' gradients again.
        for (const t of node.saved ?? []) if (!slots.holds(t)) t.dispose();
        for (const t of filled) if (!slots.holds(t)) t.dispose();
        for (const o of node.outputs) if (!returned.has(o.id)) release(slots.take(o.id));
      }
      const grads = xs.map((x) => slots.get(x.id)) as Tensor[];
      // What is left of the tape's saved tensors (tfjs disposes all of them here).
      for (const node of tape) for (const t of node.saved ?? []) t.dispose();
      this.state.activeTape = null;
      return { value: y, grads };
    });
  };
}

/**
 * Replaces the engine's `gradients` with the releasing pass, once per engine class. Called by
 * `./tfjs-core.ts` when it loads the engine.
 */
export function installGradientRelease(engine = ENGINE as unknown as EngineInternals): void {
  const proto = Object.getPrototypeOf(engine) as EngineInternals & { [INSTALLED]?: true };
  // An engine from another tfjs-core version may lack what the pass relies on: keep its own.
  const needs = ['gradients', 'scopedRun', 'startTape', 'endTape', 'tidy'] as const;
  if (proto[INSTALLED] || !needs.every((k) => typeof proto[k] === 'function')) return;
  engine.ENV.registerFlag(TAPE_RELEASE_FLAG, () => (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[TAPE_RELEASE_FLAG] !== '0');
  proto.gradients = releasingGradients(proto.gradients);
  proto[INSTALLED] = true;
}
