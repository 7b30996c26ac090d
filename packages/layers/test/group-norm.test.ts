import { beforeAll, describe, expect, it } from 'vitest';
import { L, checkAgainstTorch, fixtures, runLayerContractTest, useWasm } from './support.js';

beforeAll(useWasm, 60_000);

describe('GroupNorm matches PyTorch and honours the layer contract', () => {
  it('GroupNorm with 2 groups', () => {
    const m = new L.GroupNorm({ numGroups: 2, numChannels: 4 });
    checkAgainstTorch(m, fixtures.norms.groupNorm, 'GroupNorm');
    m.dispose();
  });
  it('GroupNorm contract', () => runLayerContractTest({ make: () => new L.GroupNorm({ numGroups: 3, numChannels: 6 }), input: [2, 3, 3, 6], output: [2, 3, 3, 6], params: 12, badInput: [2, 3, 3, 4] }));
  it('rejects a group count that does not divide the channels', () => expect(() => new L.GroupNorm({ numGroups: 4, numChannels: 6 })).toThrow(/GroupNorm.numGroups/));
});
