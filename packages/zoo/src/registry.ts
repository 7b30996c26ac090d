import { ConfigError, type Rng } from '@kiln/core';
import { AlexNet } from './alexnet.js';
import { GoogLeNet } from './googlenet.js';
import { InceptionV3 } from './inception-v3.js';
import { LeNet5 } from './lenet.js';
import { LeNet5Classic } from './lenet-classic.js';
import { ResNet, type ResNetDepth } from './resnet.js';
import { Vgg, type VggDepth } from './vgg.js';
import type { ZooModel } from './zoo-model.js';

/** Options every zoo constructor understands; models ignore the ones that do not apply to them. */
export interface ZooOptions {
  /** Classes predicted by the head (default: the model's, 10 for LeNet and 1000 otherwise). */
  numClasses?: number;
  /** Channels of the input image (LeNet-5 classic: always 1). */
  inChannels?: number;
  /** Dropout probability before/inside the classifier, where the model has dropout. */
  dropout?: number;
  /** AlexNet: the paper's local response normalisation. */
  lrn?: boolean;
  /** ResNet: 3×3 stem without max-pool for 28–32 px images. */
  smallInput?: boolean;
  /** GoogLeNet / Inception v3: build the auxiliary classifiers. */
  auxLogits?: boolean;
  /** Allocate zeros instead of drawing random initial weights (when loading weights next). Default false. */
  skipInit?: boolean;
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
}

/** A zoo model as the registry knows it: its default input and how to build it. */
export interface ZooEntry {
  /** Input shape [H, W, C] the model is meant for by default. */
  inputShape: [number, number, number];
  /** Smallest input height/width the architecture accepts. */
  minInputSize: number;
  /** Builds a fresh instance. */
  create(options: ZooOptions): ZooModel;
}

const vgg = (depth: VggDepth, batchNorm: boolean): ZooEntry => ({ inputShape: [224, 224, 3], minInputSize: 32, create: (o) => new Vgg({ ...o, depth, batchNorm }) });
const resnet = (depth: ResNetDepth): ZooEntry => ({ inputShape: [224, 224, 3], minInputSize: 1, create: (o) => new ResNet({ ...o, depth }) });

/** Zoo models by the names the CLI accepts. */
export const MODELS: Record<string, ZooEntry> = {
  lenet5: { inputShape: [28, 28, 1], minInputSize: 28, create: (o) => new LeNet5(o) },
  'lenet5-classic': { inputShape: [32, 32, 1], minInputSize: 28, create: (o) => new LeNet5Classic(o) },
  alexnet: { inputShape: [224, 224, 3], minInputSize: 63, create: (o) => new AlexNet(o) },
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
  googlenet: { inputShape: [224, 224, 3], minInputSize: 32, create: (o) => new GoogLeNet(o) },
  'inception-v3': { inputShape: [299, 299, 3], minInputSize: 75, create: (o) => new InceptionV3(o) },
};

/** Looks a model up by name; an unknown name lists the known ones. */
export function modelEntry(name: string): ZooEntry {
  const entry = Object.hasOwn(MODELS, name) ? MODELS[name] : undefined;
  if (!entry) throw new ConfigError('model', `one of: ${Object.keys(MODELS).join(', ')}`, name);
  return entry;
}

/** Builds the zoo model registered as `name` (`lenet5`, `resnet18`, …); throws `ConfigError` listing the names otherwise. */
export function createModel(name: string, options: ZooOptions = {}): ZooModel {
  return modelEntry(name).create(options);
}
