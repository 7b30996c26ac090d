import { describe, expect, it } from 'vitest';
import { summaryCommand } from '../src/commands/summary.js';

async function run(...argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await summaryCommand.run(argv, (l) => out.push(l), (l) => err.push(l));
  return { code, out, err };
}

describe('kiln summary', () => {
  it('prints a per-layer table with totals for resnet50', async () => {
    const r = await run('--model', 'resnet50', '--input', '64x64x3', '--backend', 'wasm');
    expect(r.code).toBe(0);
    const text = r.out.join('\n');
    expect(text).toMatch(/^layer\s+type\s+output shape\s+params$/m);
    expect(text).toMatch(/^layer1\.0\.conv1\s+Conv2d\s+\[1, 16, 16, 64\]\s+4,096$/m);
    expect(text).toMatch(/^fc\s+Linear\s+\[1, 1000\]\s+2,049,000$/m);
    expect(text).toContain('total params: 25,557,032');
    expect(text).toMatch(/multiply-adds: [\d,]+ \(0\.34 G\)/);
  }, 60_000);

  it('--json prints one object; --num-classes resizes the head', async () => {
    const r = await run('--model', 'lenet5', '--num-classes', '3', '--json', '--backend', 'wasm');
    expect(r.code).toBe(0);
    const s = JSON.parse(r.out[r.out.length - 1]);
    expect(s).toMatchObject({ model: 'lenet5', input: [28, 28, 1], totalParams: 61_706 - 84 * 7 - 7, outputShape: [1, 3] });
    // conv 28·28·6·25 + conv 10·10·16·150 + dense 400·120 + 120·84 + 84·3
    expect(s.totalMultiplyAdds).toBe(28 * 28 * 6 * 25 + 10 * 10 * 16 * 150 + 400 * 120 + 120 * 84 + 84 * 3);
  });

  it('rejects inputs smaller than the architecture allows, naming the flag', async () => {
    await expect(run('--model', 'alexnet', '--input', '32x32x3', '--backend', 'wasm')).rejects.toThrow(/--input[\s\S]*at least 63x63/);
    await expect(run('--model', 'alexnet', '--input', '32by32', '--backend', 'wasm')).rejects.toThrow(/HxWxC/);
    await expect(run('--model', 'resnet19')).rejects.toThrow(/resnet18/);
  });
});
