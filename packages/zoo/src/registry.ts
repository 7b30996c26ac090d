import { ConfigError, type Rng } from '@kiln/core';
import { AlexNet } from './alexnet.js';
import { GoogLeNet } from './googlenet.js';
import { InceptionV3 } from './inception-v3.js';
import { LeNet5, lenet5MapSize } from './lenet.js';
import { LeNet5Classic } from './lenet-classic.js';
import { ResNet, type ResNetDepth } from './resnet.js';
import { Vgg, type VggDepth } from './vgg.js';
import type { ZooModel } from './zoo-model.js';

/** Options every zoo constructor understands; models ignore the ones that do not apply to them. */
export interface ZooOptions {
  /** Classes predicted by the head (default: the model's, 10 for LeNet and 1000 otherwise). */
  numClasses?: number;
  /** Channels of the input image (default: the model's; taken from `inputShape` when that is given). */
  inChannels?: number;
  /**
   * Shape `[H, W, C]` of the images the model will see. Given to `createModel`, it sets
   * `inChannels` from C and picks the architecture's variant for that size (see
   * {@link chooseVariant}); a size the architecture cannot take throws a `ConfigError`.
   */
  inputShape?: [number, number, number];
  /** Dropout probability before/inside the classifier, where the model has dropout. */
  dropout?: number;
  /** AlexNet: the paper's local response normalisation. */
  lrn?: boolean;
  /**
   * ResNet: 3×3 stride-1 stem without max-pool; VGG: no fifth max-pool. Chosen from `inputShape`
   * when not given (see {@link chooseVariant}).
   */
  smallInput?: boolean;
  /** GoogLeNet / Inception v3: build the auxiliary classifiers. */
  auxLogits?: boolean;
  /** GoogLeNet / Inception v3: torchvision's `transform_input` (for the weights Google trained). */
  transformInput?: boolean;
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/** Which form of an architecture was built for an input, and why (for the CLI to print). */
export interface ModelVariant {
  /** The zoo model's name, a key of {@link MODELS} (e.g. `resnet18`). */
  model: string;
  /** The input the choice was made for. */
  inputShape: [number, number, number];
  /** `standard`: the published layout; `small-input`: the model's variant for small images. */
  variant: 'standard' | 'small-input';
  /** One sentence on the choice, e.g. "28×28 is below 64 px: 3×3 stride-1 stem without max-pool (CIFAR-style)". */
  reason: string;
  /** The options the model is built with (`inChannels` and the variant's flag set). */
  options: ZooOptions;
}

/** A zoo model as the registry knows it: its default input and how to build it. */
export interface ZooEntry {
  /** Input shape [H, W, C] the model is meant for by default. */
  inputShape: [number, number, number];
  /** Smallest input height/width the architecture accepts (with its small-input variant, if it has one, and default options). */
  minInputSize: number;
  /** Builds the model; with `inputShape` in the options, adapted to it as {@link chooseVariant} says. */
  create(options: ZooOptions): ZooModel;
}

/** How one architecture adapts to an input size. */
interface Adaptation {
  /** Smallest side for these options (the variant they would pick included). */
  minSize(options: ZooOptions): number;
  /** Sides the architecture is defined for when it takes only a few (LeNet-5 classic). */
  sizes?: number[];
  /** The variant for an h×w input at least `minSize`: options to set and why. */
  choose?(h: number, w: number, options: ZooOptions): { set?: ZooOptions; variant?: ModelVariant['variant']; reason: string };
}

interface Spec extends Adaptation {
  inputShape: [number, number, number];
  build(options: ZooOptions): ZooModel;
}

/** No variant: the published network, which needs at least `min` px per side. */
const fixed = (min: number, why: string): Adaptation => ({ minSize: () => min, choose: () => ({ reason: `the published layout (${why})` }) });

/**
 * ResNet's torchvision stem divides the image by 4 before the first stage, which leaves
 * CIFAR-sized images 1×1 at the last stage; below this side the CIFAR stem of He et al. (2016,
 * §4.2) — 3×3 stride 1, no max-pool — is used instead.
 */
export const RESNET_SMALL_INPUT_BELOW = 64;

const resnetAdaptation: Adaptation = {
  minSize: () => 1,
  choose(h, w, o) {
    const side = Math.min(h, w);
    if (o.smallInput !== undefined) return { variant: o.smallInput ? 'small-input' : 'standard', reason: `smallInput: ${o.smallInput} as requested` };
    if (side < RESNET_SMALL_INPUT_BELOW)
      return { set: { smallInput: true }, variant: 'small-input', reason: `${h}×${w} is below ${RESNET_SMALL_INPUT_BELOW} px: 3×3 stride-1 stem without max-pool (CIFAR-style), so the last stage is not shrunk to 1×1` };
    return { variant: 'standard', reason: `${h}×${w} is at least ${RESNET_SMALL_INPUT_BELOW} px: torchvision's 7×7 stride-2 stem with max-pool` };
  },
};

/** VGG's five 2×2 pools need 32 px; without the fifth (its small-input variant), 16 px. */
const vggAdaptation: Adaptation = {
  minSize: (o) => (o.smallInput === false ? 32 : 16),
  choose(h, w, o) {
    if (o.smallInput !== undefined) return { variant: o.smallInput ? 'small-input' : 'standard', reason: `smallInput: ${o.smallInput} as requested` };
    if (Math.min(h, w) < 32) return { set: { smallInput: true }, variant: 'small-input', reason: `${h}×${w} is below 32 px: the fifth max-pool is left out so a 1×1 map reaches the classifier` };
    return { variant: 'standard', reason: `${h}×${w} is at least 32 px: all five max-pools` };
  },
};

const vgg = (depth: VggDepth, batchNorm: boolean): Spec => ({ inputShape: [224, 224, 3], ...vggAdaptation, build: (o) => new Vgg({ ...o, depth, batchNorm }) });
const resnet = (depth: ResNetDepth): Spec => ({ inputShape: [224, 224, 3], ...resnetAdaptation, build: (o) => new ResNet({ ...o, depth }) });

// Built by a call marked pure (as MODELS below), so bundles that use neither keep no architecture.
const SPECS: Record<string, Spec> = /* @__PURE__ */ specs();

function specs(): Record<string, Spec> {
  return {
    lenet5: {
      inputShape: [28, 28, 1],
      minSize: () => 12,
      choose: (h, w) => ({ reason: h === 28 && w === 28 ? 'the usual 28×28 layout' : `the first dense layer reads the 16×${lenet5MapSize(h)}×${lenet5MapSize(w)} map of a ${h}×${w} image` }),
      build: (o) => new LeNet5({ ...o, inputSize: o.inputShape ? [o.inputShape[0], o.inputShape[1]] : undefined }),
    },
    'lenet5-classic': {
      inputShape: [32, 32, 1],
      minSize: () => 28,
      sizes: [28, 32],
      choose: (h) => ({ reason: h === 32 ? 'the paper’s 32×32 input' : '28×28 images are zero-padded to the paper’s 32×32 field' }),
      build: (o) => new LeNet5Classic(o),
    },
    alexnet: { inputShape: [224, 224, 3], ...fixed(63, 'its 11×11 stride-4 stem and three max-pools need 63 px'), build: (o) => new AlexNet(o) },
    vgg11: vgg(11, false),
    vgg13: vgg(13, false),
    vgg16: vgg(16, false),
    vgg19: vgg(19, false),
    'vgg11-bn': vgg(11, true),
    'vgg13-bn': vgg(13, true),
    'vgg16-bn': vgg(16, true),
    'vgg19-bn': vgg(19, true),
    resnet18: resnet(18),
    resnet34: resnet(34),
    resnet50: resnet(50),
    resnet101: resnet(101),
    resnet152: resnet(152),
    googlenet: { inputShape: [224, 224, 3], ...fixed(15, 'its ceil-mode pools leave a map down to 15 px'), build: (o) => new GoogLeNet(o) },
    'inception-v3': {
      inputShape: [299, 299, 3],
      // The auxiliary head's 5×5/3 pool and 5×5 convolution need Mixed_6e's full 17×17 grid.
      minSize: (o) => (o.auxLogits ? 299 : 75),
      choose: (_h, _w, o) => ({ reason: `the published layout (it needs ${o.auxLogits ? '299 px with the auxiliary head' : '75 px'})` }),
      build: (o) => new InceptionV3(o),
    },
  };
}

function entryOf(name: string, spec: Spec): ZooEntry {
  return {
    inputShape: spec.inputShape,
    minInputSize: spec.minSize({}),
    create: (options) => spec.build(options.inputShape ? chooseVariant(name, options).options : options),
  };
}

/**
 * Zoo models by the names the CLI accepts. (Built by a call marked pure, so a bundle that never
 * reads MODELS, such as a page importing one model class, drops every other architecture.)
 */
export const MODELS: Record<string, ZooEntry> = /* @__PURE__ */ entries();

function entries(): Record<string, ZooEntry> {
  return Object.fromEntries(Object.entries(SPECS).map(([name, spec]) => [name, entryOf(name, spec)]));
}

/** Looks a model up by name; an unknown name lists the known ones. */
export function modelEntry(name: string): ZooEntry {
  const entry = Object.hasOwn(MODELS, name) ? MODELS[name] : undefined;
  if (!entry) throw new ConfigError('model', `one of: ${Object.keys(MODELS).join(', ')}`, name);
  return entry;
}

/**
 * How `name` adapts to `options.inputShape` (default: the model's own input shape): `inChannels`
 * follows the image's channels, and architectures with a small-input variant use it for small
 * images (ResNet below {@link RESNET_SMALL_INPUT_BELOW} px, VGG below 32 px) unless
 * `smallInput` is given. Throws a `ConfigError` naming the model, the size and the minimum when
 * the architecture cannot take the input, with the hint to resize (`--image-size`).
 */
export function chooseVariant(name: string, options: ZooOptions = {}): ModelVariant {
  modelEntry(name);
  const spec = SPECS[name];
  const shape = options.inputShape ?? spec.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new ConfigError(`${name} inputShape`, '[height, width, channels] of positive integers', shape);
  }
  const [h, w, c] = shape;
  if (options.inChannels !== undefined && options.inChannels !== c) {
    throw new ConfigError(`${name} inChannels`, `${c}, the channels of the ${h}×${w}×${c} input`, options.inChannels, 'leave inChannels out: it follows inputShape');
  }
  const usual = `${spec.inputShape[0]}×${spec.inputShape[1]}`;
  if (spec.sizes && !(h === w && spec.sizes.includes(h))) {
    const sizes = spec.sizes.map((s) => `${s}×${s}`).join(' or ');
    throw new ConfigError(`${name} input size`, sizes, `${h}×${w}`, `resize the images with --image-size ${spec.inputShape[0]}`);
  }
  const min = spec.minSize(options);
  if (Math.min(h, w) < min) {
    throw new ConfigError(`${name} input size`, `at least ${min}×${min} (usually ${usual})`, `${h}×${w}`, `resize the images with --image-size ${Math.max(min, 32)} or larger`);
  }
  const choice = spec.choose?.(h, w, options) ?? { reason: 'the published layout' };
  return {
    model: name,
    inputShape: [h, w, c],
    variant: choice.variant ?? 'standard',
    reason: choice.reason,
    options: { ...options, ...choice.set, inputShape: [h, w, c], inChannels: c },
  };
}

/** Builds a zoo model by name; with `inputShape`, adapted to it (see {@link chooseVariant}). */
export function createModel(name: string, options: ZooOptions = {}): ZooModel {
  return modelEntry(name).create(options);
}
