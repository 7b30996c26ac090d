import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
// tfjs's reference CPU backend and tfjs's own ReLU gradient, to compare against. The backend loads
// a second copy of tfjs-core; kernels, gradients and the engine live on globalThis, shared.
import '@tensorflow/tfjs-backend-cpu';
import { reluGradConfig } from '@tensorflow/tfjs-core/dist/gradients/Relu_grad.js';

const kilnGradient = tf.getGradient('Relu');

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => {
  tf.registerGradient(kilnGradient);
});

/** Runs `fn` with tfjs's ReLU gradient registered instead of Kiln's. */
function withTfjsGradient<T>(fn: () => T): T {
  tf.registerGradient(reluGradConfig);
  try {
    return fn();
  } finally {
    tf.registerGradient(kilnGradient);
  }
}

describe("Kiln's ReLU gradient", () => {
  it('saves the output, not the input', () => {
    expect(kilnGradient.outputsToSave).toEqual([true]);
    expect(kilnGradient.inputsToSave ?? []).toEqual([]);
  });

  it("is tfjs's gradient bit for bit, and dy where x > 0 else 0", () => {
    const xs = [-3, -1e-30, -0, 0, 1e-30, 1e-7, 0.5, 2, -0.5, 7, -7, 1e30];
    const x = tf.tensor1d(xs);
    const dy = tf.tensor1d(xs.map((_, i) => ((i * 37) % 11) / 3 - 1.5));
    const grad = (t: tf.Tensor) => tf.grad((u: tf.Tensor) => tf.relu(u))(t, dy);
    const ours = grad(x);
    const theirs = withTfjsGradient(() => grad(x));
    expect(new Uint32Array(ours.dataSync().buffer)).toEqual(new Uint32Array(theirs.dataSync().buffer));
    const dyv = dy.dataSync();
    // (+0 and -0 alike: dy · 0 keeps dy's sign.)
    expect(Array.from(ours.dataSync(), (v) => v + 0)).toEqual(xs.map((v, i) => (v > 0 ? dyv[i] : 0)));
    tf.dispose([x, dy, ours, theirs]);
  });

  it('keeps one activation buffer fewer alive between the forward and the backward pass', () => {
    const x = tf.randomNormal([64, 32], 0, 1, 'float32', 5);
    const w1 = tf.variable(tf.randomNormal([32, 32], 0, 0.3, 'float32', 6));
    const w2 = tf.variable(tf.randomNormal([32, 8], 0, 0.3, 'float32', 7));
    // An identity on the loss whose gradient runs first in the backward pass: the data buffers
    // alive there are what the forward pass kept for the backward pass (tensors saved by several
    // ops share one buffer, so buffers, not tensor bytes, are what memory holds).
    let atBackward = 0;
    const mark = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => ({
      value: tf.clone(args[0] as tf.Tensor),
      gradFunc: (dy: tf.Tensor) => {
        atBackward = tf.memory().numDataBuffers;
        return dy;
      },
    }));
    // matMul(relu(x·w1), w2): the second product saves the ReLU's output as its input, so a ReLU
    // that saves its output adds no buffer, while tfjs's keeps x·w1 alive for its gradient alone.
    const step = () => {
      const before = tf.memory().numDataBuffers;
      const { value, grads } = tf.variableGrads(() => mark(tf.sum(tf.matMul(tf.relu(tf.matMul(x, w1)), w2))) as tf.Scalar);
      const g = [w1, w2].map((w) => Array.from(grads[w.name].dataSync()));
      tf.dispose([value, grads]);
      return { kept: atBackward - before, g };
    };
    const ours = step();
    const theirs = withTfjsGradient(step);
    expect(ours.g).toEqual(theirs.g);
    expect(theirs.kept - ours.kept).toBe(1);
    tf.dispose([x, w1, w2]);
  });
});
