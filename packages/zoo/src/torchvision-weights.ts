import { tf, toHostAsync, type HostTensor } from '@kiln/core';
import { Conv2d, Linear, type Module } from '@kiln/layers';
import { assignChecked, type WeightConverter } from './weight-transfer.js';
import { ZooModel } from './zoo-model.js';

/**
 * How one Kiln tensor is laid out in PyTorch: convolution kernels HWIO ↔ OIHW, dense weights
 * `[in, out]` ↔ `[out, in]`, and a dense layer reading a flattened `[C, H, W]` map has its input
 * rows in (c, h, w) order in PyTorch and (h, w, c) order in Kiln. Everything else is the same.
 */
function torchLayout(model: Module, key: string): { kind: 'conv' | 'dense' | 'same'; flatten?: [number, number, number] } {
  const dot = key.lastIndexOf('.');
  const name = key.slice(dot + 1);
  if (name !== 'weight') return { kind: 'same' };
  const path = key.slice(0, Math.max(dot, 0));
  const m = model.getModule(path);
  if (m instanceof Conv2d) return { kind: 'conv' };
  if (m instanceof Linear) return { kind: 'dense', flatten: model instanceof ZooModel ? model.flattenedInputs[path] : undefined };
  return { kind: 'same' };
}

/** PyTorch → Kiln for every key of `model`'s state dict. */
export function torchvisionConverter(model: Module): WeightConverter {
  return {
    source: 'PyTorch',
    expectedShape(key, kilnShape) {
      const { kind } = torchLayout(model, key);
      if (kind === 'conv') return [kilnShape[3], kilnShape[2], kilnShape[0], kilnShape[1]];
      if (kind === 'dense') return [kilnShape[1], kilnShape[0]];
      return kilnShape;
    },
    convert(key, t) {
      const { kind, flatten } = torchLayout(model, key);
      if (kind === 'conv') return tf.transpose(t, [2, 3, 1, 0]);
      if (kind === 'dense' && flatten) {
        const [c, h, w] = flatten;
        const out = t.shape[0];
        return tf.tidy(() => tf.reshape(tf.transpose(tf.reshape(t, [out, c, h, w]), [2, 3, 1, 0]), [h * w * c, out]));
      }
      if (kind === 'dense') return tf.transpose(t);
      return tf.clone(t);
    },
  };
}

/**
 * Loads a PyTorch/torchvision state dict (as decoded from a `.safetensors` file: torchvision key
 * names, NCHW-era layouts) into a Kiln model, converting each tensor to Kiln's NHWC layouts.
 * With `strict` (default) every missing, unexpected or wrongly shaped key is reported at once in a
 * `StateDictMismatchError` (shapes as PyTorch has them); otherwise the matching keys are loaded and
 * the problems returned.
 */
export function loadTorchvisionWeights(model: Module, tensors: Record<string, HostTensor>, options: { strict?: boolean; file?: string } = {}) {
  return assignChecked(model, tensors, torchvisionConverter(model), { strict: options.strict ?? true, where: options.file ?? 'torchvision state dict' });
}

/** The model's state dict in PyTorch's names and layouts, ready for `encodeSafetensors`. */
export async function torchvisionStateDict(model: Module): Promise<Record<string, HostTensor>> {
  const out: Record<string, HostTensor> = {};
  for (const [key, v] of Object.entries(model.stateDict())) {
    const { kind, flatten } = torchLayout(model, key);
    const t = tf.tidy(() => {
      if (kind === 'conv') return tf.transpose(v, [3, 2, 0, 1]);
      if (kind === 'dense' && flatten) {
        const [c, h, w] = flatten;
        return tf.reshape(tf.transpose(tf.reshape(v, [h, w, c, -1]), [3, 2, 0, 1]), [-1, c * h * w]);
      }
      if (kind === 'dense') return tf.transpose(v);
      return tf.clone(v);
    });
    try {
      // Asynchronous reads: GPU backends (WebGPU in Node) refuse synchronous ones.
      out[key] = await toHostAsync(t);
    } finally {
      t.dispose();
    }
  }
  // PyTorch counts batches in int64.
  for (const [key, h] of Object.entries(out)) {
    if (key.endsWith('num_batches_tracked')) out[key] = { dtype: 'int64', shape: h.shape, data: BigInt64Array.from(h.data as Int32Array, (n) => BigInt(n)) };
  }
  return out;
}
