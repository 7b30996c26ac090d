/**
 * `MaxPoolGrad` for the WASM backend. Each output's gradient goes to the input that won its
 * window — the first maximum in row-major window order, as in tfjs's reference CPU kernel, which
 * matters after a ReLU where whole windows tie at zero. tfjs's own WASM kernel takes about 17 ns
 * per input element on LeNet's pools; this single pass, scanning all channels of a tap together
 * (contiguous in NHWC), takes a fraction of that.
 */
import { tf } from '@kiln/core';
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
  const top = c.padInfo.top;
  const left = c.padInfo.left;

  const out = backend.makeOutput(input.shape, 'float32');
  const dx = f32View(backend, out);
  const x = f32View(backend, input);
  const g = f32View(backend, dy);
  dx.fill(0);
  const best = new Float32Array(C);
  const where = new Int32Array(C);
  let o = 0;
  for (let n = 0; n < N; n++) {
    const xImage = n * H * W * C;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * SH - top;
      const ihLo = Math.max(0, ih0);
      const ihHi = Math.min(H, ih0 + KH);
      for (let ow = 0; ow < OW; ow++, o += C) {
        const iw0 = ow * SW - left;
        const iwLo = Math.max(0, iw0);
        const iwHi = Math.min(W, iw0 + KW);
        best.fill(-Infinity);
        where.fill(-1);
        for (let ih = ihLo; ih < ihHi; ih++) {
          for (let iw = iwLo; iw < iwHi; iw++) {
            const at = xImage + (ih * W + iw) * C;
            for (let ch = 0; ch < C; ch++) {
              const v = x[at + ch];
              if (v > best[ch]) {
                best[ch] = v;
                where[ch] = at + ch;
              }
            }
          }
        }
        for (let ch = 0; ch < C; ch++) if (where[ch] >= 0) dx[where[ch]] += g[o + ch];
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: maxPoolGrad as unknown as tf.KernelFunc,
};
