/**
 * Depthwise convolution gradients for the WASM backend.
 *
 * A depthwise convolution with channel multiplier M gives output channel `ci·M + m` from input
 * channel `ci` alone:  y[n,oh,ow,ci·M+m] = Σ_{kh,kw} x[n, oh·SH−top+kh·DH, ow·SW−left+kw·DW, ci] · w[kh,kw,ci,m].
 * Each tap touches one channel, so there is no matrix product to hand to XNNPACK; both gradients
 * are single passes over dy in JavaScript, reading and writing the heap in place.
 */
import { tf } from '@kiln/core';
import { assertFloat32, f32View, type WasmKernelArgs } from './wasm-heap.js';

interface DepthwiseBackpropAttrs {
  strides: [number, number] | number;
  dilations: [number, number] | number;
  pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

interface FilterAttrs extends DepthwiseBackpropAttrs {
  filterShape: [number, number, number, number];
}

interface InputAttrs extends DepthwiseBackpropAttrs {
  inputShape: [number, number, number, number];
}

function depthwiseInfo(xShape: number[], filterShape: number[], a: DepthwiseBackpropAttrs): tf.backend_util.Conv2DInfo {
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number], filterShape as [number, number, number, number],
    a.strides, a.dilations ?? 1, a.pad, a.dimRoundingMode, true, 'channelsLast');
}

/**
 * Calls `visit(xOffset, dyOffset, wOffset)` for every (output position, in-image tap) pair:
 * the offsets of channel 0 of x at that tap, of dy at that position, and of w at that tap.
 */
function forEachTap(c: tf.backend_util.Conv2DInfo, visit: (xo: number, dyo: number, wo: number) => void): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: CI, outHeight: OH, outWidth: OW, outChannels: CO } = c;
  const { filterHeight: KH, filterWidth: KW, strideHeight: SH, strideWidth: SW, dilationHeight: DH, dilationWidth: DW } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  let dyo = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const ih0 = oh * SH - top;
      for (let ow = 0; ow < OW; ow++, dyo += CO) {
        const iw0 = ow * SW - left;
        for (let kh = 0; kh < KH; kh++) {
          const ih = ih0 + kh * DH;
          if (ih < 0 || ih >= H) continue;
          const xRow = ((n * H + ih) * W) * CI;
          for (let kw = 0; kw < KW; kw++) {
            const iw = iw0 + kw * DW;
            if (iw < 0 || iw >= W) continue;
            visit(xRow + iw * CI, dyo, (kh * KW + kw) * CO);
          }
        }
      }
    }
  }
}

/** dw[kh,kw,ci,m] = Σ_{n,oh,ow} x[tap] · dy[n,oh,ow,ci·M+m], summed in double precision. */
function depthwiseConv2dNativeBackpropFilter({ inputs, backend, attrs }: WasmKernelArgs<FilterAttrs>): tf.TensorInfo {
  const { x, dy } = inputs as { x: tf.TensorInfo; dy: tf.TensorInfo };
  assertFloat32('DepthwiseConv2dNativeBackpropFilter', x, dy);
  const c = depthwiseInfo(x.shape, attrs.filterShape, attrs);
  const CI = c.inChannels;
  const M = c.outChannels / CI;
  const sum = new Float64Array(c.filterHeight * c.filterWidth * c.outChannels);
  const out = backend.makeOutput(attrs.filterShape, 'float32');
  const xv = f32View(backend, x);
  const dyv = f32View(backend, dy);
  forEachTap(c, (xo, dyo, wo) => {
    for (let ci = 0, k = 0; ci < CI; ci++) {
      const xval = xv[xo + ci];
      for (let m = 0; m < M; m++, k++) sum[wo + k] += xval * dyv[dyo + k];
    }
  });
  f32View(backend, out).set(sum);
  return out;
}

/** dx[tap, ci] = Σ over the outputs that tap feeds of Σ_m dy[n,oh,ow,ci·M+m] · w[kh,kw,ci,m]. */
function depthwiseConv2dNativeBackpropInput({ inputs, backend, attrs }: WasmKernelArgs<InputAttrs>): tf.TensorInfo {
  const { dy, filter } = inputs as { dy: tf.TensorInfo; filter: tf.TensorInfo };
  assertFloat32('DepthwiseConv2dNativeBackpropInput', dy, filter);
  const c = depthwiseInfo(attrs.inputShape, filter.shape, attrs);
  const CI = c.inChannels;
  const M = c.outChannels / CI;
  const out = backend.makeOutput(attrs.inputShape, 'float32');
  const dx = f32View(backend, out);
  const dyv = f32View(backend, dy);
  const wv = f32View(backend, filter);
  dx.fill(0);
  if (M === 1) {
    forEachTap(c, (xo, dyo, wo) => {
      for (let ci = 0; ci < CI; ci++) dx[xo + ci] += dyv[dyo + ci] * wv[wo + ci];
    });
  } else {
    forEachTap(c, (xo, dyo, wo) => {
      for (let ci = 0, k = 0; ci < CI; ci++) {
        let s = 0;
        for (let m = 0; m < M; m++, k++) s += dyv[dyo + k] * wv[wo + k];
        dx[xo + ci] += s;
      }
    });
  }
  return out;
}

export const depthwiseConv2dNativeBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropFilter as unknown as tf.KernelFunc,
};

export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc,
};
