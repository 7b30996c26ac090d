import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { createModel, formatSummary, summarize, summarizeByDepth } from '../src/index.js';

beforeAll(async () => {
  await wasmBackend().init();
});

interface RefRow {
  outputShape: number[];
  params: number;
  multiplyAdds: number;
}
/** Measured with forward hooks on torchvision's models by tools/fixtures/zoo/gen_summary.py. */
const REF = JSON.parse(readFileSync(new URL('../../../tools/fixtures/zoo/summary.json', import.meta.url), 'utf8')) as Record<
  string,
  { input: [number, number, number]; rows: Record<string, RefRow>; totalParams: number; totalMultiplyAdds: number }
>;

describe('summarize', () => {
  it.each(['resnet18', 'googlenet'])('%s at 224×224 matches torchvision layer by layer', (name) => {
    const ref = REF[name];
    const model = createModel(name, { skipInit: true });
    const before = tf.memory().numTensors;
    const s = summarize(model, [224, 224, 3]);
    expect(tf.memory().numTensors).toBe(before);
    expect(s.totalParams).toBe(ref.totalParams);
    expect(s.totalMultiplyAdds).toBe(ref.totalMultiplyAdds);
    expect(s.outputShape).toEqual([1, 1000]);
    // Every layer with parameters or multiply-adds is in both, with the same numbers; shapes NCHW → NHWC.
    const weighted = (rows: [string, RefRow | (typeof s.rows)[number]][]) => rows.filter(([, r]) => r.params > 0 || r.multiplyAdds > 0).map(([p]) => p).sort();
    expect(weighted(s.rows.map((r) => [r.path, r]))).toEqual(weighted(Object.entries(ref.rows)));
    for (const row of s.rows) {
      const r = ref.rows[row.path];
      if (!r) continue;
      expect(row.params, row.path).toBe(r.params);
      expect(row.multiplyAdds, row.path).toBe(r.multiplyAdds);
      const nchw = r.outputShape;
      // Kiln's global average pool also flattens: torchvision's [1, C, 1, 1] is Kiln's [1, C].
      const folded = row.outputShape?.length === 2 && nchw.length === 4 && nchw[2] === 1 && nchw[3] === 1;
      expect(row.outputShape, row.path).toEqual(folded ? [nchw[0], nchw[1]] : nchw.length === 4 ? [nchw[0], nchw[2], nchw[3], nchw[1]] : nchw);
    }
    const text = formatSummary(s).join('\n');
    expect(text).toContain(name === 'resnet18' ? 'layer1.0.conv1' : 'inception3a.branch1.conv');
    expect(text).toContain(`total params: ${ref.totalParams.toLocaleString('en-US')}`);
    model.dispose();
  }, 60_000);

  it('lists layers that did not run (auxiliary heads in eval mode) without a shape, and restores the mode', () => {
    const model = createModel('googlenet', { auxLogits: true, numClasses: 5, skipInit: true });
    const s = summarize(model, [64, 64, 3]);
    const aux = s.rows.find((r) => r.path === 'aux1.fc1');
    expect(aux).toEqual({ path: 'aux1.fc1', type: 'Linear', outputShape: null, params: 2048 * 1024 + 1024, trainableParams: 2048 * 1024 + 1024, multiplyAdds: 0 });
    expect(model.training).toBe(true);
    expect(model.getModule('fc').forward).toBe(Object.getPrototypeOf(model.getModule('fc')).forward);
    model.dispose();
  });

  it('counts frozen parameters apart, and summarizeByDepth lists modules to a depth without running the model', () => {
    const model = createModel('resnet18', { numClasses: 4, skipInit: true }).freezeBackbone();
    const s = summarize(model, [32, 32, 3]);
    expect(s.rows.find((r) => r.path === 'fc')).toMatchObject({ params: 512 * 4 + 4, trainableParams: 512 * 4 + 4 });
    expect(s.rows.find((r) => r.path === 'conv1')).toMatchObject({ params: 7 * 7 * 3 * 64, trainableParams: 0 });
    const top = summarizeByDepth(model, 1);
    expect(top.map((r) => r.path)).toEqual(['conv1', 'bn1', 'layer1', 'layer2', 'layer3', 'layer4', 'fc']);
    expect(top.reduce((a, r) => a + r.params, 0)).toBe(model.numParameters());
    expect(top.find((r) => r.path === 'layer1')).toMatchObject({ type: 'Sequential', outputShape: null, trainableParams: 0, multiplyAdds: 0 });
    expect(summarizeByDepth(model, 2).some((r) => r.path === 'layer1.0')).toBe(true);
    expect(() => summarizeByDepth(model, 0)).toThrow(/maxDepth/);
    model.dispose();
  });
});
