import { beforeAll, describe, expect, it } from 'vitest';
import { tf, noGrad } from '@kiln/core';
// tfjs's reference CPU backend, registered into @kiln/core's engine (see gradient-release.test.ts).
import '@tensorflow/tfjs-backend-cpu';

const FLAG = 'KILN_TAPE_RELEASE';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Nodes on the tape being recorded now (0 outside any gradient). */
function tapeLength(): number {
  const state = (tf.engine() as unknown as { state: { activeTape: unknown[] | null } }).state;
  return state.activeTape?.length ?? 0;
}

/** Runs `fn` under Kiln's releasing gradient pass and under tfjs's original one. */
function forBothPasses(fn: (release: boolean) => void): void {
  const before = tf.env().getBool(FLAG);
  try {
    for (const release of [true, false]) {
      tf.env().set(FLAG, release);
      fn(release);
    }
  } finally {
    tf.env().set(FLAG, before);
  }
}

const bits = (t: tf.Tensor) => Array.from(new Uint32Array(Float32Array.from(t.dataSync() as Float32Array).buffer));

describe('noGrad', () => {
  it('keeps the kernels it runs off the enclosing gradient tape', () => {
    const x = tf.variable(tf.tensor1d([0.5, -1.25, 2, 3.5]));
    const recorded: Record<string, number> = {};
    const { value, grads } = tf.variableGrads(() => {
      const loss = tf.sum(tf.square(x)) as tf.Scalar;
      const n0 = tapeLength();
      tf.keep(tf.mean(tf.cast(tf.greater(x, 0), 'float32')));
      recorded.taped = tapeLength() - n0;
      const n1 = tapeLength();
      tf.keep(noGrad(() => tf.mean(tf.cast(tf.greater(x, 0), 'float32'))));
      recorded.untaped = tapeLength() - n1;
      return loss;
    }, [x]);
    // greater, cast, mean (mean runs as several kernels): recorded without noGrad, none with it.
    expect(recorded.taped).toBeGreaterThanOrEqual(3);
    expect(recorded.untaped).toBe(0);
    tf.dispose([value, ...Object.values(grads), x]);
  });

  it('leaves the gradient bit-identical and treats what it returns as a constant', () => {
    forBothPasses(() => {
      const x = tf.variable(tf.tensor1d([0.3, -1.7, 2.2, 0.9]));
      const plain = tf.variableGrads(() => tf.sum(tf.mul(tf.sin(x), x)) as tf.Scalar, [x]);
      const withMetric = tf.variableGrads(() => {
        const loss = tf.sum(tf.mul(tf.sin(x), x)) as tf.Scalar;
        tf.keep(noGrad(() => tf.max(tf.abs(x))));
        return loss;
      }, [x]);
      expect(bits(withMetric.grads[x.name])).toEqual(bits(plain.grads[x.name]));
      // d/dx sum(x · c) with c = noGrad(x) is c = x, where d/dx sum(x · x) would be 2x.
      const constant = tf.variableGrads(() => tf.sum(tf.mul(x, noGrad(() => tf.clone(x)))) as tf.Scalar, [x]);
      expect(bits(constant.grads[x.name])).toEqual(bits(x));
      tf.dispose([plain.value, withMetric.value, constant.value, ...Object.values(plain.grads), ...Object.values(withMetric.grads), ...Object.values(constant.grads), x]);
    });
  });

  it('leaks no tensors: the kernels it runs leave no saved copies behind', () => {
    forBothPasses(() => {
      const x = tf.variable(tf.randomNormal([16, 8], 0, 1, 'float32', 7));
      const n0 = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) {
        let metric: tf.Scalar | undefined;
        const { value, grads } = tf.variableGrads(() => {
          metric = tf.keep(noGrad(() => tf.mean(tf.cast(tf.equal(tf.argMax(x, -1), 0), 'float32')) as tf.Scalar));
          return tf.sum(tf.relu(x)) as tf.Scalar;
        }, [x]);
        tf.dispose([value, metric!, ...Object.values(grads)]);
        expect(tf.memory().numTensors).toBe(n0);
      }
      x.dispose();
    });
  });

  it('lets a gradient taken inside it run on its own tape and restores the enclosing one', () => {
    forBothPasses(() => {
      const x = tf.variable(tf.tensor1d([1.5, -0.5]));
      const outer = tf.variableGrads(() => {
        const y = tf.sum(tf.mul(x, x)) as tf.Scalar; // recorded before noGrad
        const inner = noGrad(() => tf.grad((v: tf.Tensor) => tf.sum(tf.pow(v, 3)))(tf.tensor1d([2, 3])));
        // d/dv Σ v³ = 3v² at (2, 3).
        expect(Array.from(inner.dataSync())).toEqual([12, 27]);
        inner.dispose();
        return tf.add(y, tf.sum(x)) as tf.Scalar; // recorded after noGrad
      }, [x]);
      // d/dx (Σ x² + Σ x) = 2x + 1: both parts of the tape survived.
      expect(Array.from(outer.grads[x.name].dataSync())).toEqual([4, 0]);
      tf.dispose([outer.value, ...Object.values(outer.grads), x]);
    });
  });

  it('restores recording when its function throws, and is just a call outside a gradient', () => {
    const x = tf.variable(tf.tensor1d([2, 5]));
    const { value, grads } = tf.variableGrads(() => {
      expect(() =>
        noGrad(() => {
          throw new Error('boom');
        }),
      ).toThrow('boom');
      const n0 = tapeLength();
      const y = tf.sum(tf.square(x)) as tf.Scalar;
      expect(tapeLength()).toBeGreaterThan(n0);
      return y;
    }, [x]);
    expect(Array.from(grads[x.name].dataSync())).toEqual([4, 10]);
    expect(noGrad(() => 42)).toBe(42);
    tf.dispose([value, ...Object.values(grads), x]);
  });
});
