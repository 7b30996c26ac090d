import { beforeAll, describe, it } from 'vitest';
import { L, checkAgainstTorch, fixtures, runLayerContractTest, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

describe('InstanceNorm matches PyTorch and honours the layer contract', () => {
  it('InstanceNorm with affine', () => {
    const m = new L.InstanceNorm2d({ numFeatures: 4, affine: true });
    checkAgainstTorch(m, fixtures.norms.instanceNorm, 'InstanceNorm');
    m.dispose();
  });
  it('InstanceNorm contract', () => runLayerContractTest({ make: () => new L.InstanceNorm({ numFeatures: 3, affine: true }), input: [2, 4, 3], output: [2, 4, 3], params: 6, badInput: [2, 3] }));
  it('InstanceNorm without affine has no parameters', () => runLayerContractTest({ make: () => new L.InstanceNorm2d(2), input: [2, 3, 3, 2], output: [2, 3, 3, 2], params: 0 }));
});
