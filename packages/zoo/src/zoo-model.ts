import { tf, ConfigError, type Rng } from '@kiln/core';
import { Linear, Module, Sequential, init, type FreezeOptions, type Initializer, type Tensor } from '@kiln/layers';

/**
 * A zoo architecture: a plain `Module` whose last layer is a linear classification head at a known
 * path, so it can be fine-tuned (swap the head, freeze the backbone) and can hand out the
 * backbone's output as features. `forward(x)` is `head(features(x))`.
 */
export abstract class ZooModel extends Module {
  /** Dotted path of the final `Linear` layer (`fc`, `classifier.6`). */
  abstract readonly headPath: string;

  /**
   * Dense layers that read a flattened convolutional map, by path, with that map's shape
   * `[C, H, W]`. Kiln flattens NHWC (h, w, c) where PyTorch flattens NCHW (c, h, w), so importing
   * PyTorch weights permutes these layers' input rows.
   */
  readonly flattenedInputs: Record<string, [number, number, number]> = {};

  /** The backbone's output for a batch of NHWC images: the `[N, D]` input of the head. */
  abstract features(x: Tensor): Tensor;

  forward(x: Tensor): Tensor {
    return tf.tidy(() => this.head().forward(this.features(x)));
  }

  /** The classification layer. */
  head(): Linear {
    const m = this.getModule(this.headPath);
    if (!(m instanceof Linear)) throw new ConfigError(`${this.typeName}.headPath`, 'the path of a Linear layer', `${this.headPath} (${m.typeName})`);
    return m;
  }

  /** Number of classes the head predicts. */
  get numClasses(): number {
    return this.head().config.outFeatures;
  }

  /**
   * Replaces the head with a freshly initialised `Linear` for `numClasses` classes (PyTorch's
   * default init), keeping its input size; the old head is disposed. Returns the new head.
   */
  replaceHead(numClasses: number, options: { rng?: Rng } = {}): Linear {
    if (!Number.isInteger(numClasses) || numClasses < 1) throw new ConfigError('numClasses', 'a positive integer', numClasses);
    const old = this.head();
    const fresh = new Linear({ inFeatures: old.config.inFeatures, outFeatures: numClasses, bias: old.config.bias, rng: options.rng });
    const dot = this.headPath.lastIndexOf('.');
    const parent = dot < 0 ? this : this.getModule(this.headPath.slice(0, dot));
    const name = this.headPath.slice(dot + 1);
    // A Sequential keeps its own list of items beside the registered children.
    if (parent instanceof Sequential) parent.set(Number(name), fresh);
    else parent.replaceModule(name, fresh);
    return fresh;
  }

  /**
   * Freezes everything except the head (feature extraction / linear probing); the backbone's
   * batch-norm layers keep their statistics unless `trainBn` (see `Module.freeze`).
   */
  freezeBackbone(options: FreezeOptions = {}): this {
    this.freeze('', options);
    return this.unfreeze(this.headPath);
  }
}

/** Runs `seq`'s items `[0, end)` on `x` (a classifier without its last layer). */
export function forwardUpTo(seq: Sequential, x: Tensor, end: number): Tensor {
  return tf.tidy(() => {
    const h = seq.forwardTo(x, end);
    return h === x ? tf.clone(x) : h;
  });
}

/**
 * Initializer overrides for `skipInit`: zeros instead of random draws, for models whose weights are
 * about to be loaded (random fills of 100M+ values take seconds). Spread last into layer options.
 */
export function skipInitOptions(skip: boolean | undefined): {
  /** Zeros for the weights, when skipping. */
  weightInit?: Initializer;
  /** Zeros for the bias, when skipping. */
  biasInit?: Initializer;
} {
  return skip ? { weightInit: init.zeros(), biasInit: init.zeros() } : {};
}

/** What every layer of one model is built with: the weight generator and whether to skip random init. */
export interface BuildOptions {
  /** Generator for the initial weights (default: the global one). */
  rng?: Rng;
  /** Allocate zeros instead of drawing random weights (weights are about to be loaded). */
  skipInit?: boolean;
}
