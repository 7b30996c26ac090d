import { describe, expect, it } from 'vitest';
import { BackendUnavailableError, tf } from '../src/index.js';

// @kiln/core registers no tfjs backend of its own, so this file sees what a user of @kiln/data
// alone (no backend package installed) sees at the first tensor op.
describe('no backend installed', () => {
  it('the first tensor op names the backend package to install', () => {
    expect(Object.keys(tf.engine().registryFactory)).toEqual([]);
    let error: unknown;
    try {
      tf.tensor([1, 2, 3]);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(BackendUnavailableError);
    expect((error as BackendUnavailableError).message).toContain('@kiln/backend-cpu');
    expect((error as BackendUnavailableError).fix).toContain('npm install @kiln/backend-cpu');
  });

  it('once a backend is registered, tfjs picks it as before', async () => {
    class Tiny extends tf.KernelBackend {
      override dispose(): void {}
    }
    tf.registerBackend('tiny-test', () => new Tiny(), 1);
    try {
      await tf.ready();
      expect(tf.getBackend()).toBe('tiny-test');
    } finally {
      tf.removeBackend('tiny-test');
    }
  });
});
