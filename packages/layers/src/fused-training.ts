/**
 * Training-mode fusion: a convolution or dense layer with its bias and ReLU as one forward kernel,
 * the softmax cross-entropy as one kernel each way, and max pooling that keeps its argmax so that
 * its gradient is a scatter. On a small network most of a training step is tfjs's bookkeeping per
 * kernel call (tape node, saved-tensor clones, reference counts), so fewer calls is what makes it
 * faster (docs/benchmarks.md, "Round two"); the pool's gradient no longer searches its windows
 * again ("Round 16").
 *
 * tfjs fuses under a gradient tape only without an activation, and its fused ops' gradients
 * compute every input's gradient eagerly (the first layer's input gradient too, which nothing
 * needs). Here the forward kernels are run directly and their gradients registered by kernel
 * name, so the tape asks only for the gradients on the path to the variables, and the ReLU's
 * and bias gradients are one kernel where the backend has `BIAS_RELU_GRAD_KERNEL`.
 */
import {
  tf, BIAS_RELU_GRAD_KERNEL, LINEAR_KERNEL, MAX_POOL_ARGMAX_GRAD_KERNEL, MAX_POOL_ARGMAX_KERNEL, SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, SOFTMAX_CROSS_ENTROPY_KERNEL,
} from '@kiln/core';
import type { Tensor } from './module.js';

/** The activations the fused kernels apply. */
export type FusedActivation = 'linear' | 'relu';

/** Whether the active backend registers `kernel`. */
export function backendHas(kernel: string): boolean {
  return tf.getKernel(kernel, tf.getBackend()) != null;
}

/**
 * The gradient through act(z + b) given the output y: dz, and db when one kernel computed it with
 * dz (the backend's `BIAS_RELU_GRAD_KERNEL`); otherwise the bias gradient is left to the caller.
 */
function activationGrad(dy: Tensor, y: Tensor, activation: FusedActivation): [Tensor, Tensor | undefined] {
  if (activation === 'linear') return [dy, undefined];
  if (backendHas(BIAS_RELU_GRAD_KERNEL)) return tf.engine().runKernel(BIAS_RELU_GRAD_KERNEL, { dy, y }) as [Tensor, Tensor];
  return [tf.mul(dy, tf.step(y)), undefined];
}

interface ConvAttrs {
  strides: [number, number];
  pad: 'valid' | 'same' | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC';
  dilations: [number, number];
  activation: FusedActivation;
}

/** Gradients of tfjs's `FusedConv2D` (NHWC, undilated, linear or ReLU) and of `LINEAR_KERNEL`. */
const gradients: tf.GradConfig[] = [
  {
    kernelName: tf.FusedConv2D,
    inputsToSave: ['x', 'filter'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter, y] = saved;
      const { strides, pad, activation } = attrs as unknown as ConvAttrs;
      const [d, db] = activationGrad(dy as Tensor, y, activation);
      const conv = { strides, pad, dataFormat: 'NHWC', dilations: [1, 1] } as const;
      return {
        x: () => tf.engine().runKernel(tf.Conv2DBackpropInput, { dy: d, filter }, { ...conv, inputShape: x.shape }) as Tensor,
        filter: () => tf.engine().runKernel(tf.Conv2DBackpropFilter, { x, dy: d }, { ...conv, filterShape: filter.shape }) as Tensor,
        bias: () => db ?? tf.sum(d, [0, 1, 2]),
      };
    },
  },
  {
    kernelName: LINEAR_KERNEL,
    inputsToSave: ['x', 'weight'],
    outputsToSave: [true],
    gradFunc: (dy, saved, attrs) => {
      const [x, weight, y] = saved;
      const [d, db] = activationGrad(dy as Tensor, y, (attrs as { activation: FusedActivation }).activation);
      return {
        x: () => tf.matMul(d, weight, false, true),
        weight: () => tf.matMul(x, d, true, false),
        bias: () => db ?? tf.sum(d, 0),
      };
    },
  },
  {
    kernelName: SOFTMAX_CROSS_ENTROPY_KERNEL,
    inputsToSave: ['logits', 'labels'],
    gradFunc: (dy, saved, attrs) => {
      const [logits, labels] = saved;
      return {
        logits: () => tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL, { logits, labels, dy: dy as Tensor }, attrs) as Tensor,
        // Labels are integers: nothing flows back to them (the tape only asks when they come from a variable).
        labels: () => tf.zerosLike(labels),
      };
    },
  },
  {
    // Only the argmax is kept (not x and y, as for tfjs's MaxPool), and the gradient adds dy there.
    kernelName: MAX_POOL_ARGMAX_KERNEL,
    outputsToSave: [false, true],
    gradFunc: (dys, saved, attrs) => {
      const [argmax] = saved;
      const [dy] = dys as Tensor[];
      const { inputShape } = attrs as { inputShape: number[] };
      return { x: () => tf.engine().runKernel(MAX_POOL_ARGMAX_GRAD_KERNEL, { dy, argmax }, { inputShape }) as Tensor };
    },
  },
];

let registered = false;

/** Registers the gradients above once, on first use (importing @kiln/layers changes no global state). */
function registerGradients(): void {
  if (registered) return;
  registered = true;
  for (const g of gradients) tf.registerGradient(g);
}

/**
 * act(conv2d(x, filter) + bias) as tfjs's `FusedConv2D` kernel, differentiable. NHWC, float32,
 * undilated; `pad` as tfjs takes it.
 */
export function fusedConv2d(x: Tensor, filter: Tensor, bias: Tensor | undefined, strides: [number, number], pad: ConvAttrs['pad'], activation: FusedActivation): Tensor {
  registerGradients();
  const attrs = { strides, pad, dataFormat: 'NHWC', dilations: [1, 1], activation };
  return tf.engine().runKernel(tf.FusedConv2D, { x, filter, ...(bias ? { bias } : {}) }, attrs as unknown as tf.NamedAttrMap) as Tensor;
}

/** act(x·W + b) as `LINEAR_KERNEL`, differentiable; only where the backend registers that kernel. */
export function fusedLinear(x: Tensor, weight: Tensor, bias: Tensor | undefined, activation: FusedActivation): Tensor {
  registerGradients();
  return tf.engine().runKernel(LINEAR_KERNEL, { x, weight, ...(bias ? { bias } : {}) }, { activation }) as Tensor;
}

/**
 * Max pooling of NHWC float32 `x` as `MAX_POOL_ARGMAX_KERNEL`, differentiable; only where the
 * backend registers it and its gradient. `pad` is [top, left]; windows are clipped to the input.
 */
export function fusedMaxPool(x: Tensor, filterSize: [number, number], strides: [number, number], pad: [number, number], outShape: [number, number]): Tensor {
  registerGradients();
  const attrs = { filterSize, strides, pad, outShape, inputShape: x.shape };
  const [y, argmax] = tf.engine().runKernel(MAX_POOL_ARGMAX_KERNEL, { x }, attrs as unknown as tf.NamedAttrMap) as Tensor[];
  // The tape keeps its own reference to the argmax for the gradient; without a tape nothing does.
  argmax.dispose();
  return y;
}

/** Whether the active backend runs max pooling with its argmax both ways. */
export function hasFusedMaxPool(): boolean {
  return backendHas(MAX_POOL_ARGMAX_KERNEL) && backendHas(MAX_POOL_ARGMAX_GRAD_KERNEL);
}

/** Options the fused cross-entropy covers (no class weights). */
export interface FusedCrossEntropyOptions {
  /** ε of label smoothing. */
  labelSmoothing: number;
  /** Label whose samples count for nothing, or null. */
  ignoreIndex: number | null;
  /** How per-sample losses are combined. */
  reduction: 'mean' | 'sum' | 'none';
}

/**
 * Softmax cross-entropy of logits [N, K] against int32 labels [N] as `SOFTMAX_CROSS_ENTROPY_KERNEL`,
 * differentiable; only where the backend registers it and its gradient.
 */
export function fusedCrossEntropy(logits: Tensor, labels: Tensor, options: FusedCrossEntropyOptions): Tensor {
  registerGradients();
  return tf.engine().runKernel(SOFTMAX_CROSS_ENTROPY_KERNEL, { logits, labels }, options as unknown as tf.NamedAttrMap) as Tensor;
}

/** Whether the active backend runs the fused cross-entropy both ways. */
export function hasFusedCrossEntropy(): boolean {
  return backendHas(SOFTMAX_CROSS_ENTROPY_KERNEL) && backendHas(SOFTMAX_CROSS_ENTROPY_GRAD_KERNEL);
}
