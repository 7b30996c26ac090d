import { ConfigError, type Rng } from '@kiln/core';
import type { Module } from '@kiln/layers';
import { LeNet5 } from './lenet.js';

/** Options every zoo constructor understands. */
export interface ZooOptions {
  numClasses?: number;
  inChannels?: number;
  rng?: Rng;
}

export interface ZooEntry {
  /** Input shape [H, W, C] the model is meant for by default. */
  inputShape: [number, number, number];
  create(options: ZooOptions): Module;
}

/** Zoo models by the names the CLI accepts. */
export const MODELS: Record<string, ZooEntry> = {
  lenet5: { inputShape: [28, 28, 1], create: (o) => new LeNet5(o) },
};

export function createModel(name: string, options: ZooOptions = {}): Module {
  const entry = MODELS[name];
  if (!entry) throw new ConfigError('model', `one of: ${Object.keys(MODELS).join(', ')}`, name);
  return entry.create(options);
}
