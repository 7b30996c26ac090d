/**
 * `MaxPoolGrad` for the WASM backend. Each output's gradient goes to the input that won its
 * window — the first maximum in row-major window order, as in tfjs's reference CPU kernel, which
 * matters after a ReLU where whole windows tie at zero. tfjs's own WASM kernel takes about 17 ns
 * per input element on LeNet's pools; this single pass, scanning all channels of a tap together
 * (contiguous in NHWC), takes a fraction of that.
 */
import { tf } from '@kiln/core';
import { windowMaxima } from './max-pool-argmax.js';
import { assertFloat32, f32View, type WasmKernelArgs } from './wasm-heap.js';

interface MaxPoolGradAttrs {
  filterSize: [number, number] | number;
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

function maxPoolGrad({ inputs, backend, attrs }: WasmKernelArgs<MaxPoolGradAttrs>): tf.TensorInfo {
  const { dy, input } = inputs as { dy: tf.TensorInfo; input: tf.TensorInfo };
  assertFloat32('MaxPoolGrad', dy, input);
  const c = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], attrs.filterSize, attrs.strides, 1, attrs.pad, attrs.dimRoundingMode);
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = c;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = c;

  const out = backend.makeOutput(input.shape, 'float32');
  const dx = f32View(backend, out);
  const g = f32View(backend, dy);
  // The winner of each window (−1 where none: a window in the padding), then its gradient there.
  const where = new Int32Array(N * OH * OW * C);
  windowMaxima(f32View(backend, input), [N, H, W, C, OH, OW, KH, KW, SH, SW, c.padInfo.top, c.padInfo.left], where, undefined, false);
  dx.fill(0);
  const perIn = H * W * C;
  const perOut = OH * OW * C;
  for (let n = 0, o = 0; n < N; n++) {
    for (let end = o + perOut; o < end; o++) if (where[o] >= 0) dx[n * perIn + where[o]] += g[o];
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
