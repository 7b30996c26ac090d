import { tf, toHostAsync, type HostTensor } from '@kiln/core';
import { Conv2d, Linear, type Module } from '@kiln/layers';
import { IMAGENET_MEAN, IMAGENET_STD } from './blocks/transform-input.js';
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

/**
 * `dst[destRow[j] · rows + i] = src[i · cols + j]`: transposes a row-major `[rows, cols]` matrix,
 * placing source column j at destination row `destRow[j]` (identity when omitted). Done in 64×64
 * tiles so both sides stay in cache.
 */
function transposeRows<T extends HostTensor['data']>(src: T, rows: number, cols: number, destRow?: Int32Array): T {
  const dst = new (src.constructor as new (n: number) => T)(src.length);
  const tile = 64;
  for (let i0 = 0; i0 < rows; i0 += tile) {
    const i1 = Math.min(rows, i0 + tile);
    for (let j0 = 0; j0 < cols; j0 += tile) {
      const j1 = Math.min(cols, j0 + tile);
      for (let j = j0; j < j1; j++) {
        const d = (destRow ? destRow[j] : j) * rows;
        for (let i = i0; i < i1; i++) dst[d + i] = src[i * cols + j];
      }
    }
  }
  return dst;
}

/** Where row (a, b, c) of an `[A, B, C]` block goes when it is re-laid out as (b, c, a): the flatten order change. */
function channelsLastRows(a: number, b: number, c: number): Int32Array {
  const rows = new Int32Array(a * b * c);
  for (let i = 0; i < a; i++) for (let y = 0; y < b; y++) for (let x = 0; x < c; x++) rows[(i * b + y) * c + x] = (y * c + x) * a + i;
  return rows;
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
      if (kind === 'conv') {
        // OIHW → HWIO: each output filter's (i, y, x) values become rows (y, x, i).
        const [o, i, kh, kw] = t.shape;
        return { dtype: t.dtype, shape: [kh, kw, i, o], data: transposeRows(t.data, o, i * kh * kw, channelsLastRows(i, kh, kw)) };
      }
      if (kind === 'dense') {
        // [out, in] → [in, out]; after a flatten, input (c, h, w) also becomes Kiln's (h, w, c).
        const [o, n] = t.shape;
        return { dtype: t.dtype, shape: [n, o], data: transposeRows(t.data, o, n, flatten ? channelsLastRows(...flatten) : undefined) };
      }
      return t;
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

/** How images must be prepared for a set of weights: torchvision's `ImageClassification` preset. */
export interface Preprocessing {
  /** Height and width of the centre crop the network sees. */
  size: [number, number];
  /** Length the shorter side is resized to before cropping. */
  resizeSize: number;
  /** Per-channel (RGB) mean subtracted from pixels in [0, 1]. */
  mean: [number, number, number];
  /** Per-channel (RGB) standard deviation divided by. */
  std: [number, number, number];
  /** Resampling used for the resize. */
  interpolation: 'bilinear';
}

/** One published set of torchvision weights. */
export interface TorchvisionWeights {
  /** The Kiln zoo model they belong to (`createModel(model)`). */
  model: string;
  /** torchvision's name for them (`ResNet18_Weights.IMAGENET1K_V1`). */
  torchvision: string;
  /** File name on download.pytorch.org (and in torch hub's cache). */
  file: string;
  /** Download address, `https://download.pytorch.org/models/<file>`. */
  url: string;
  /**
   * SHA-256 of the file as far as it is known here: torchvision publishes only the first 8 hex
   * digits (in the file name, checked by `torch.hub` with `check_hash`), so that prefix is what is
   * recorded and checked.
   */
  sha256: string;
  /** Classes the classification head predicts (1000 for ImageNet-1k). */
  numClasses: number;
  /** How input images must be resized, cropped and normalised for these weights. */
  preprocessing: Preprocessing;
  /** The model must run with `transformInput` (GoogLeNet, Inception v3). */
  transformInput?: boolean;
}

function tv(model: string, torchvision: string, file: string, extra: { crop?: number; resize?: number; transformInput?: boolean } = {}): TorchvisionWeights {
  const crop = extra.crop ?? 224;
  return {
    model,
    torchvision,
    file,
    url: `https://download.pytorch.org/models/${file}`,
    sha256: /-([0-9a-f]{8})\.pth$/.exec(file)![1],
    numClasses: 1000,
    preprocessing: { size: [crop, crop], resizeSize: extra.resize ?? 256, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD], interpolation: 'bilinear' },
    ...(extra.transformInput ? { transformInput: true } : {}),
  };
}

/**
 * torchvision's ImageNet weights for every zoo model with a torchvision counterpart, by
 * torchvision's builder name (`_v2` for the newer recipe where there is one). URLs and
 * preprocessing as in torchvision 0.14's `models/*.py`.
 */
export const TORCHVISION_WEIGHTS: Record<string, TorchvisionWeights> = /* @__PURE__ */ torchvisionWeights();

/** The table above, built by a call marked pure so that bundles which never read it drop it. */
function torchvisionWeights(): Record<string, TorchvisionWeights> {
  return {
    alexnet: tv('alexnet', 'AlexNet_Weights.IMAGENET1K_V1', 'alexnet-owt-7be5be79.pth'),
    vgg11: tv('vgg11', 'VGG11_Weights.IMAGENET1K_V1', 'vgg11-8a719046.pth'),
    vgg13: tv('vgg13', 'VGG13_Weights.IMAGENET1K_V1', 'vgg13-19584684.pth'),
    vgg16: tv('vgg16', 'VGG16_Weights.IMAGENET1K_V1', 'vgg16-397923af.pth'),
    vgg19: tv('vgg19', 'VGG19_Weights.IMAGENET1K_V1', 'vgg19-dcbb9e9d.pth'),
    vgg11_bn: tv('vgg11-bn', 'VGG11_BN_Weights.IMAGENET1K_V1', 'vgg11_bn-6002323d.pth'),
    vgg13_bn: tv('vgg13-bn', 'VGG13_BN_Weights.IMAGENET1K_V1', 'vgg13_bn-abd245e5.pth'),
    vgg16_bn: tv('vgg16-bn', 'VGG16_BN_Weights.IMAGENET1K_V1', 'vgg16_bn-6c64b313.pth'),
    vgg19_bn: tv('vgg19-bn', 'VGG19_BN_Weights.IMAGENET1K_V1', 'vgg19_bn-c79401a0.pth'),
    resnet18: tv('resnet18', 'ResNet18_Weights.IMAGENET1K_V1', 'resnet18-f37072fd.pth'),
    resnet34: tv('resnet34', 'ResNet34_Weights.IMAGENET1K_V1', 'resnet34-b627a593.pth'),
    resnet50: tv('resnet50', 'ResNet50_Weights.IMAGENET1K_V1', 'resnet50-0676ba61.pth'),
    resnet50_v2: tv('resnet50', 'ResNet50_Weights.IMAGENET1K_V2', 'resnet50-11ad3fa6.pth', { resize: 232 }),
    resnet101: tv('resnet101', 'ResNet101_Weights.IMAGENET1K_V1', 'resnet101-63fe2227.pth'),
    resnet101_v2: tv('resnet101', 'ResNet101_Weights.IMAGENET1K_V2', 'resnet101-cd907fc2.pth', { resize: 232 }),
    resnet152: tv('resnet152', 'ResNet152_Weights.IMAGENET1K_V1', 'resnet152-394f9c45.pth'),
    resnet152_v2: tv('resnet152', 'ResNet152_Weights.IMAGENET1K_V2', 'resnet152-f82ba261.pth', { resize: 232 }),
    googlenet: tv('googlenet', 'GoogLeNet_Weights.IMAGENET1K_V1', 'googlenet-1378be20.pth', { transformInput: true }),
    inception_v3: tv('inception-v3', 'Inception_V3_Weights.IMAGENET1K_V1', 'inception_v3_google-0cc3c7bd.pth', { crop: 299, resize: 342, transformInput: true }),
  };
}

/**
 * Finds a table entry by its key, torchvision's enum name (`ResNet18_Weights.IMAGENET1K_V1`), its
 * file name, or a zoo model name (that model's V1 weights); undefined when nothing matches.
 */
export function findTorchvisionWeights(name: string): (TorchvisionWeights & {
  /** The entry's key in {@link TORCHVISION_WEIGHTS} (e.g. `resnet50_v2`). */
  key: string;
}) | undefined {
  const entries = Object.entries(TORCHVISION_WEIGHTS);
  const hit =
    entries.find(([k]) => k === name) ??
    entries.find(([, w]) => w.torchvision === name || w.file === name) ??
    entries.find(([, w]) => w.model === name && w.torchvision.endsWith('IMAGENET1K_V1'));
  return hit ? { key: hit[0], ...hit[1] } : undefined;
}
