import { beforeAll, describe, expect, it } from 'vitest';
import { L, checkAgainstTorch, fixtures, runLayerContractTest, useWasm, core } from './support.js';

beforeAll(useWasm, 60_000);

describe('LayerNorm matches PyTorch and honours the layer contract', () => {
  it('LayerNorm over channels', () => {
    const m = new L.LayerNorm({ normalizedShape: 4, eps: fixtures.norms.layerNorm.eps });
    checkAgainstTorch(m, fixtures.norms.layerNorm, 'LayerNorm');
    m.dispose();
  });
  it('LayerNorm contract', () => runLayerContractTest({ make: () => new L.LayerNorm([3, 4]), input: [2, 5, 3, 4], output: [2, 5, 3, 4], params: 24, badInput: [2, 5, 4, 3] }));
  it('rejects an empty normalized shape', () => expect(() => new L.LayerNorm([])).toThrow(core.ConfigError));
});
