import { tf, ConfigError } from '@kiln/core';
import { Conv2d, Linear, withoutFusion, type Module, type Tensor } from '@kiln/layers';
import { ConnectionTableConv2d } from './lenet-classic.js';

/**
 * One module of a model summary: a layer of {@link summarize}'s table, or a module down to a
 * depth in {@link summarizeByDepth}'s (the trainer's `ModelSummary` callback prints either).
 */
export interface SummaryRow {
  /** Dotted module path (`layer1.0.conv1`). */
  path: string;
  /** Module type (`Conv2d`). */
  type: string;
  /** Output shape for one image, NHWC with the batch dimension first; null if it did not run (auxiliary heads in eval mode, or no forward pass was made). */
  outputShape: number[] | null;
  /** Parameters in the module (a layer's own; for a container, everything beneath it). */
  params: number;
  /** Those of `params` that are trainable (not frozen). */
  trainableParams: number;
  /** Multiply-adds for one image (convolutions and dense layers; 0 for the rest, and when no forward pass was made). */
  multiplyAdds: number;
}

/** {@link summarize}'s result: every layer run on one image, and the totals. */
export interface ModelSummaryReport {
  /** Input shape [H, W, C]. */
  input: [number, number, number];
  /** One row per layer, in execution order. */
  rows: SummaryRow[];
  /** Parameter values in the model. */
  totalParams: number;
  /** Parameter values gradients reach (frozen ones excluded). */
  trainableParams: number;
  /** Output shape of the whole model for one image. */
  outputShape: number[];
  /** Multiply-adds of one forward pass for one image. */
  totalMultiplyAdds: number;
}

/** Multiply-adds one call of a layer performs, from its output shape (one image). */
function multiplyAdds(m: Module, out: number[]): number {
  const spatial = out.length === 4 ? out[1] * out[2] : 1;
  if (m instanceof Conv2d) {
    const { kernelSize, inChannels, outChannels, groups } = m.config;
    return spatial * outChannels * kernelSize[0] * kernelSize[1] * (inChannels / groups);
  }
  if (m instanceof ConnectionTableConv2d) return spatial * m.weight.size;
  if (m instanceof Linear) return m.config.inFeatures * m.config.outFeatures;
  return 0;
}

/**
 * Runs one zero image of `input` ([H, W, C]) through `model` in eval mode and records, for every
 * leaf layer, its output shape, own parameters and multiply-adds (as torchinfo and Keras's
 * `summary()` do). The model's training mode is restored afterwards; no tensors are kept.
 */
export function summarize(model: Module, input: [number, number, number]): ModelSummaryReport {
  if (input.length !== 3 || input.some((d) => !Number.isInteger(d) || d < 1)) throw new ConfigError('input', 'three positive integers [H, W, C]', input);
  const leaves = model.namedModules().filter(([, m]) => m.children().length === 0);
  const seen = new Map<Module, SummaryRow>();
  const rows: SummaryRow[] = [];
  const wasTraining = model.training;
  const ownParams = (m: Module) => m.namedParameters().filter(([n]) => !n.includes('.'));
  const own = (m: Module) => ownParams(m).reduce((s, [, p]) => s + p.size, 0);
  const ownTrainable = (m: Module) => ownParams(m).reduce((s, [, p]) => s + (p.trainable ? p.size : 0), 0);
  for (const [path, m] of leaves) {
    const forward = m.forward;
    // Shadow the prototype's forward on this instance; deleting the property restores it.
    (m as { forward: Module['forward'] }).forward = function (this: Module, x: Tensor, ...rest: unknown[]) {
      const y = forward.call(this, x, ...rest);
      if (!seen.has(m)) {
        const row: SummaryRow = { path, type: m.typeName, outputShape: y.shape, params: own(m), trainableParams: ownTrainable(m), multiplyAdds: multiplyAdds(m, y.shape) };
        seen.set(m, row);
        rows.push(row);
      }
      return y;
    };
  }
  let outputShape: number[];
  try {
    model.eval();
    // Fused conv+ReLU kernels would bypass the recording wrappers; run each layer on its own.
    outputShape = withoutFusion(() => tf.tidy(() => model.forward(tf.zeros([1, ...input])).shape));
  } finally {
    for (const [, m] of leaves) delete (m as { forward?: unknown }).forward;
    model.train(wasTraining);
  }
  for (const [path, m] of leaves) if (!seen.has(m) && own(m) > 0) rows.push({ path, type: m.typeName, outputShape: null, params: own(m), trainableParams: ownTrainable(m), multiplyAdds: 0 });
  return {
    input,
    rows,
    totalParams: model.numParameters(),
    trainableParams: model.numParameters({ trainableOnly: true }),
    outputShape,
    totalMultiplyAdds: rows.reduce((s, r) => s + r.multiplyAdds, 0),
  };
}

/**
 * Rows for the modules down to `maxDepth` levels below the model (1: its children, as
 * Lightning's `ModelSummary` lists them), each counting every parameter beneath it. No forward
 * pass is made, so output shapes are null and multiply-adds 0.
 */
export function summarizeByDepth(model: Module, maxDepth = 1): SummaryRow[] {
  if (!Number.isInteger(maxDepth) || maxDepth < 1) throw new ConfigError('maxDepth', 'a positive integer', maxDepth);
  const params = model.namedParameters();
  const prefixes = new Set<string>();
  for (const [name] of params) {
    const parts = name.split('.').slice(0, -1);
    for (let d = 1; d <= Math.min(maxDepth, parts.length); d++) prefixes.add(parts.slice(0, d).join('.'));
  }
  return [...prefixes].map((path) => {
    const mine = params.filter(([n]) => n.startsWith(`${path}.`)).map(([, p]) => p);
    return {
      path,
      type: model.getModule(path).typeName,
      outputShape: null,
      params: mine.reduce((a, p) => a + p.size, 0),
      trainableParams: mine.reduce((a, p) => a + (p.trainable ? p.size : 0), 0),
      multiplyAdds: 0,
    };
  });
}

const group = (n: number) => n.toLocaleString('en-US');

/** The summary as a text table: path, type, output shape, parameters; then the totals. */
export function formatSummary(s: ModelSummaryReport): string[] {
  const cells = s.rows.map((r) => [r.path, r.type, r.outputShape ? `[${r.outputShape.join(', ')}]` : '(not run)', group(r.params)]);
  const head = ['layer', 'type', 'output shape', 'params'];
  const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((v, i) => (i === 3 ? v.padStart(widths[i]) : v.padEnd(widths[i]))).join('  ');
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  return [
    line(head),
    rule,
    ...cells.map(line),
    rule,
    `input: [${s.input.join(', ')}] (H, W, C)   output: [${s.outputShape.join(', ')}]`,
    `total params: ${group(s.totalParams)}`,
    `trainable params: ${group(s.trainableParams)}`,
    `non-trainable params: ${group(s.totalParams - s.trainableParams)}`,
    `multiply-adds: ${group(s.totalMultiplyAdds)} (${(s.totalMultiplyAdds / 1e9).toFixed(2)} G)`,
  ];
}
