/**
 * `Conv2DBackpropFilter` for the WASM backend: the filter gradient of a 2-D convolution.
 *
 * With the input unrolled into patches (im2col: one row per output position, one column per
 * filter tap and input channel), a convolution is the product `cols · W`, so its filter gradient
 * is `colsᵀ · dy` ([KH·KW·CI, N·OH·OW] × [N·OH·OW, CO]). The patches are written already
 * transposed, by a tight JavaScript loop over the heap, so that the product is the plain form
 * XNNPACK runs; it goes through the WASM backend's own BatchMatMul kernel.
 */
import { tf } from '@kiln/core';
import { alias, assertFloat32, f32View, imagesPerBlock, matMul, release, type WasmKernelArgs } from './wasm-heap.js';

interface Conv2DBackpropFilterAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  filterShape: [number, number, number, number];
  /** Not among tfjs's attrs (its conv2d gradient refuses dilations); honoured when present. */
  dilations?: [number, number] | number;
}

/**
 * Writes the transposed patch matrix of images [n0, n1) into `colsT` ([KH·KW·CI, rows]): one row
 * per filter tap and input channel, gathered along the output positions. Taps that fall into the
 * padding are written as zeros, since heap memory from malloc is not cleared.
 */
function im2colT(x: Float32Array, colsT: Float32Array, c: tf.backend_util.Conv2DInfo, n0: number, n1: number): void {
  const { inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW } = c;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = c;
  const { dilationHeight: DH, dilationWidth: DW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const step = SW * CI;
  let o = 0;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const shift = kw * DW - left;
      // Output columns ow in [owLo, owHi) read inside the image: 0 <= ow·SW + shift < W.
      const owLo = Math.min(OW, Math.max(0, Math.ceil(-shift / SW)));
      const owHi = Math.max(owLo, Math.min(OW, Math.ceil((W - shift) / SW)));
      for (let ci = 0; ci < CI; ci++) {
        for (let n = n0; n < n1; n++) {
          for (let oh = 0; oh < OH; oh++, o += OW) {
            const ih = oh * SH - top + kh * DH;
            if (ih < 0 || ih >= H) {
              colsT.fill(0, o, o + OW);
              continue;
            }
            if (owLo > 0) colsT.fill(0, o, o + owLo);
            let src = ((n * H + ih) * W + owLo * SW + shift) * CI + ci;
            for (let i = o + owLo, end = o + owHi; i < end; i++, src += step) colsT[i] = x[src];
            if (owHi < OW) colsT.fill(0, o + owHi, o + OW);
          }
        }
      }
    }
  }
}

function conv2DBackpropFilter({ inputs, backend, attrs }: WasmKernelArgs<Conv2DBackpropFilterAttrs>): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  if (dataFormat === 'NCHW') {
    throw new Error("Conv2DBackpropFilter on the wasm backend supports dataFormat 'NHWC' only; transpose NCHW inputs to NHWC (Kiln's layout) first");
  }
  assertFloat32('Conv2DBackpropFilter', x, dy);
  const c = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, attrs.dilations ?? 1, pad, dimRoundingMode, false, 'channelsLast');
  const { batchSize: N, outChannels: CO } = c;
  const K = c.filterHeight * c.filterWidth * c.inChannels;
  const rowsPerImage = c.outHeight * c.outWidth;
  const block = imagesPerBlock(c);

  if (block === N) {
    const colsT = backend.makeOutput([K, N * rowsPerImage], 'float32');
    im2colT(f32View(backend, x), f32View(backend, colsT), c, 0, N);
    const dW = matMul(backend, colsT, alias(dy, [N * rowsPerImage, CO]));
    release(backend, colsT);
    return alias(dW, filterShape);
  }

  // Blocked over images: dW = Σ_blocks colsᵀ·dy, accumulated in double precision so the result
  // does not depend on the block size.
  const sum = new Float64Array(K * CO);
  for (let n0 = 0; n0 < N; n0 += block) {
    const n1 = Math.min(N, n0 + block);
    const rows = (n1 - n0) * rowsPerImage;
    const colsT = backend.makeOutput([K, rows], 'float32');
    const dyBlock = backend.makeOutput([rows, CO], 'float32');
    im2colT(f32View(backend, x), f32View(backend, colsT), c, n0, n1);
    f32View(backend, dyBlock).set(f32View(backend, dy).subarray(n0 * rowsPerImage * CO, n1 * rowsPerImage * CO));
    const part = matMul(backend, colsT, dyBlock);
    const p = f32View(backend, part);
    for (let i = 0; i < p.length; i++) sum[i] += p[i];
    release(backend, colsT, dyBlock, part);
  }
  const out = backend.makeOutput(filterShape, 'float32');
  f32View(backend, out).set(sum);
  return out;
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropFilter as unknown as tf.KernelFunc,
};
