/**
 * `Conv2DBackpropInput` for the WASM backend: the input gradient of a 2-D convolution.
 *
 * tfjs's own WASM kernel is a direct scalar loop, ten times slower than the forward convolution.
 * Here the gradient of every patch is one matrix product, `dy · Wᵀ` ([N·OH·OW, CO] × [CO,
 * KH·KW·CI]), run by XNNPACK through the WASM backend's BatchMatMul kernel; a JavaScript loop then
 * adds each patch back where it was read from (col2im, the adjoint of im2col).
 */
import { tf } from '@kiln/core';
import { alias, assertFloat32, f32View, imagesPerBlock, matMul, release, type WasmKernelArgs } from './wasm-heap.js';

interface Conv2DBackpropInputAttrs {
  strides: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
  inputShape: [number, number, number, number];
  /** Not among tfjs's attrs (its conv2d gradient refuses dilations); honoured when present. */
  dilations?: [number, number] | number;
}

/**
 * Adds the patch gradients of images [n0, n1) (`cols`, [rows, KH·KW·CI]) into `dx` at the input
 * positions their taps read; taps in the padding are dropped.
 */
function col2im(cols: Float32Array, dx: Float32Array, c: tf.backend_util.Conv2DInfo, n0: number, n1: number): void {
  const { inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW } = c;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW } = c;
  const { dilationHeight: DH, dilationWidth: DW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const rowLen = KW * CI;
  let o = 0;
  for (let n = n0; n < n1; n++) {
    const xImage = n * H * W * CI;
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * SH - top;
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * SW - left;
        // Taps kw in [kwLo, kwHi) land inside the image; the rest are padding.
        const kwLo = iw0 >= 0 ? 0 : Math.min(KW, Math.ceil(-iw0 / DW));
        const kwHi = Math.max(kwLo, Math.min(KW, Math.ceil((W - iw0) / DW)));
        for (let kh = 0; kh < KH; kh++, o += rowLen) {
          const ih = ih0 + kh * DH;
          if (ih < 0 || ih >= H) continue;
          const xRow = xImage + ih * W * CI;
          let src = o + kwLo * CI;
          if (DW === 1) {
            // Undilated taps of one filter row are contiguous in NHWC: one straight pass.
            let dst = xRow + (iw0 + kwLo) * CI;
            for (const end = o + kwHi * CI; src < end; ) dx[dst++] += cols[src++];
          } else {
            for (let kw = kwLo; kw < kwHi; kw++) {
              let dst = xRow + (iw0 + kw * DW) * CI;
              for (const end = src + CI; src < end; ) dx[dst++] += cols[src++];
            }
          }
        }
      }
    }
  }
}

function conv2DBackpropInput({ inputs, backend, attrs }: WasmKernelArgs<Conv2DBackpropInputAttrs>): tf.TensorInfo {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  if (dataFormat === 'NCHW') {
    throw new Error("Conv2DBackpropInput on the wasm backend supports dataFormat 'NHWC' only; transpose NCHW inputs to NHWC (Kiln's layout) first");
  }
  assertFloat32('Conv2DBackpropInput', dy, filter);
  const c = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, attrs.dilations ?? 1, pad, dimRoundingMode, false, 'channelsLast');
  const { batchSize: N, outChannels: CO } = c;
  const K = c.filterHeight * c.filterWidth * c.inChannels;
  const rowsPerImage = c.outHeight * c.outWidth;
  const block = imagesPerBlock(c);

  // Wᵀ ([CO, K]) so that the product is the untransposed form XNNPACK runs; the filter is small.
  const wT = backend.makeOutput([CO, K], 'float32');
  const dx = backend.makeOutput(inputShape, 'float32');
  {
    const w = f32View(backend, filter);
    const t = f32View(backend, wT);
    for (let k = 0; k < K; k++) for (let co = 0; co < CO; co++) t[co * K + k] = w[k * CO + co];
    f32View(backend, dx).fill(0);
  }
  for (let n0 = 0; n0 < N; n0 += block) {
    const n1 = Math.min(N, n0 + block);
    const rows = (n1 - n0) * rowsPerImage;
    let dyBlock = alias(dy, [rows, CO]);
    if (block < N) {
      dyBlock = backend.makeOutput([rows, CO], 'float32');
      f32View(backend, dyBlock).set(f32View(backend, dy).subarray(n0 * rowsPerImage * CO, n1 * rowsPerImage * CO));
    }
    const cols = matMul(backend, dyBlock, wT);
    col2im(f32View(backend, cols), f32View(backend, dx), c, n0, n1);
    release(backend, cols, block < N ? dyBlock : undefined);
  }
  release(backend, wT);
  return dx;
}

export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: conv2DBackpropInput as unknown as tf.KernelFunc,
};
