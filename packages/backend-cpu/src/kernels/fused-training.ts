/**
 * Kiln's fused training kernels for the WASM backend that need no library: the softmax
 * cross-entropy and its gradient (@kiln/core's `SOFTMAX_CROSS_ENTROPY_KERNEL`,
 * `SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL`: [N, K] values, small enough for JavaScript), and the dense
 * layer's forward (`LINEAR_KERNEL`) over tfjs's `_FusedMatMul` (oneDNN's when the addon is on). Each
 * replaces several small kernels; on a step of a small network such as LeNet-5 each kernel call
 * costs tens of µs of tfjs bookkeeping (tape, reference counts, heap allocation) whatever it
 * computes, so fewer calls is most of the gain (docs/benchmarks.md, "Round two"). Plain loops over
 * the tensors on the WebAssembly heap: they run in browsers as in Node.
 */
import { tf, KilnError, LINEAR_KERNEL, SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, SOFTMAX_CROSS_ENTROPY_KERNEL, ShapeMismatchError } from '@kiln/core';
import { alias, f32View, type WasmKernelArgs } from './wasm-heap.js';

/** Attributes of the cross-entropy kernels (see @kiln/core's `SOFTMAX_CROSS_ENTROPY_KERNEL`). */
interface CrossEntropyAttrs {
  labelSmoothing: number;
  ignoreIndex: number | null;
  reduction: 'mean' | 'sum' | 'none';
}

/** Checked shapes of a cross-entropy call: N rows of K float32 logits and N int32 labels. */
function crossEntropyShapes(kernel: string, logits: tf.TensorInfo, labels: tf.TensorInfo): [number, number] {
  if (logits.dtype !== 'float32' || logits.shape.length !== 2) throw new ShapeMismatchError(`${kernel}(logits)`, 'float32 [batch, classes]', logits.shape);
  const [n, k] = logits.shape;
  if (labels.dtype !== 'int32' || labels.shape.length !== 1 || labels.shape[0] !== n) throw new ShapeMismatchError(`${kernel}(labels)`, `int32 [${n}]`, labels.shape);
  return [n, k];
}

/**
 * Walks the rows in double precision, handing `onRow` each kept row's log-softmax and label and
 * its loss: with p = softmax(x_i) and ε the label smoothing, (1−ε)·(−log p_y) + ε/K·Σ_c (−log p_c).
 * Ignored rows get label −1 and loss 0.
 */
function forEachRow(
  kernel: string, x: Float32Array, labels: Int32Array, n: number, k: number, a: CrossEntropyAttrs,
  onRow: (i: number, loss: number, logp: Float64Array, label: number) => void,
): void {
  const logp = new Float64Array(k);
  const eps = a.labelSmoothing;
  for (let i = 0; i < n; i++) {
    const label = labels[i];
    if (a.ignoreIndex !== null && label === a.ignoreIndex) {
      onRow(i, 0, logp, -1);
      continue;
    }
    if (!(label >= 0 && label < k)) {
      const expected = `0..${k - 1}${a.ignoreIndex === null ? '' : ` or ignoreIndex ${a.ignoreIndex}`}`;
      throw new KilnError('E_LABEL', `label ${label} of sample ${i} is not a class`, { where: `${kernel}(labels)`, expected, found: String(label) });
    }
    const row = i * k;
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, x[row + c]);
    let sum = 0;
    for (let c = 0; c < k; c++) sum += Math.exp(x[row + c] - max);
    const logSum = Math.log(sum) + max;
    let smooth = 0;
    for (let c = 0; c < k; c++) {
      logp[c] = x[row + c] - logSum;
      smooth -= logp[c];
    }
    onRow(i, (1 - eps) * -logp[label] + (eps / k) * smooth, logp, label);
  }
}

function crossEntropy({ inputs, backend, attrs }: WasmKernelArgs<CrossEntropyAttrs>): tf.TensorInfo {
  const { logits, labels } = inputs;
  const [n, k] = crossEntropyShapes(SOFTMAX_CROSS_ENTROPY_KERNEL, logits, labels);
  const out = backend.makeOutput(attrs.reduction === 'none' ? [n] : [], 'float32');
  const o = f32View(backend, out);
  let total = 0;
  let kept = 0;
  forEachRow(SOFTMAX_CROSS_ENTROPY_KERNEL, f32View(backend, logits), backend.typedArrayFromHeap(labels) as Int32Array, n, k, attrs, (i, loss, _logp, label) => {
    if (attrs.reduction === 'none') o[i] = loss;
    total += loss;
    if (label >= 0) kept++;
  });
  // The mean is over the rows not ignored (0/0 when all are, as PyTorch's).
  if (attrs.reduction !== 'none') o[0] = attrs.reduction === 'mean' ? total / kept : total;
  return out;
}

/**
 * d loss_i / d x_ic = (1−ε)·(p_c − [c = y]) + ε/K·(K·p_c − 1) = p_c − (1−ε)·[c = y] − ε/K, times
 * dy (per row for 'none'; else the scalar, divided by the kept rows for 'mean'); 0 for ignored rows.
 */
function crossEntropyGrad({ inputs, backend, attrs }: WasmKernelArgs<CrossEntropyAttrs>): tf.TensorInfo {
  const { logits, labels, dy } = inputs;
  const [n, k] = crossEntropyShapes(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, logits, labels);
  const perRow = attrs.reduction === 'none';
  if (dy.dtype !== 'float32' || !tf.util.arraysEqual(dy.shape, perRow ? [n] : [])) {
    throw new ShapeMismatchError(`${SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL}(dy)`, perRow ? `float32 [${n}]` : 'a float32 scalar', dy.shape);
  }
  const out = backend.makeOutput([n, k], 'float32');
  const o = f32View(backend, out);
  const ids = backend.typedArrayFromHeap(labels) as Int32Array;
  const g = f32View(backend, dy);
  const eps = attrs.labelSmoothing;
  let scale = g[0];
  if (attrs.reduction === 'mean') {
    let kept = 0;
    for (let i = 0; i < n; i++) if (attrs.ignoreIndex === null || ids[i] !== attrs.ignoreIndex) kept++;
    scale /= kept;
  }
  forEachRow(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, f32View(backend, logits), ids, n, k, attrs, (i, _loss, logp, label) => {
    const row = i * k;
    if (label < 0) {
      o.fill(0, row, row + k);
      return;
    }
    const s = perRow ? g[i] : scale;
    for (let c = 0; c < k; c++) o[row + c] = s * (Math.exp(logp[c]) - (c === label ? 1 - eps : 0) - eps / k);
  });
  return out;
}

/**
 * `LINEAR_KERNEL` through the backend's `_FusedMatMul` (looked up at each call, so oneDNN's wrapper
 * when it is registered), handing it rank-3 views of the 2-D operands: a view shares the data, so
 * no copy and no reshape kernel is run.
 */
function linear({ inputs, backend, attrs }: WasmKernelArgs<{ activation: 'linear' | 'relu' }>): tf.TensorInfo {
  const { x, weight, bias } = inputs;
  if (x.shape.length !== 2 || weight.shape.length !== 2 || x.shape[1] !== weight.shape[0]) {
    throw new ShapeMismatchError(`${LINEAR_KERNEL}(x)`, `[batch, ${weight.shape[0]}] against weight [${weight.shape}]`, x.shape);
  }
  const [n, k] = x.shape;
  const m = weight.shape[1];
  const fused = tf.getKernel(tf._FusedMatMul, 'wasm')!.kernelFunc;
  const y = fused({
    inputs: { a: alias(x, [1, n, k]), b: alias(weight, [1, k, m]), ...(bias ? { bias } : {}) },
    backend: backend as unknown as tf.KernelBackend,
    attrs: { transposeA: false, transposeB: false, activation: attrs.activation },
  }) as tf.TensorInfo;
  return alias(y, [n, m]);
}

/** The kernels above, for backend 'wasm'. */
export const fusedTrainingConfigs: tf.KernelConfig[] = [
  { kernelName: SOFTMAX_CROSS_ENTROPY_KERNEL, backendName: 'wasm', kernelFunc: crossEntropy as unknown as tf.KernelFunc },
  { kernelName: SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, backendName: 'wasm', kernelFunc: crossEntropyGrad as unknown as tf.KernelFunc },
  { kernelName: LINEAR_KERNEL, backendName: 'wasm', kernelFunc: linear as unknown as tf.KernelFunc },
];
