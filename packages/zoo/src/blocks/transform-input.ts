import { tf, ConfigError } from '@kiln/core';
import type { Tensor } from '@kiln/layers';

/** ImageNet's per-channel mean and standard deviation (RGB), as torchvision normalises. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
/** ImageNet's per-channel standard deviation (R, G, B; pixels in [0, 1]), the divisor in torchvision's normalisation. */
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

/**
 * torchvision's `transform_input` for GoogLeNet and Inception v3: the weights Google trained
 * expect pixels scaled to [-1, 1] ((p - 0.5) / 0.5), while torchvision's pipelines normalise with
 * ImageNet's mean and std. Undoing one and applying the other per channel is
 * x' = x · (std / 0.5) + (mean − 0.5) / 0.5. Input is NHWC with 3 channels.
 */
export function imagenetToUnitRange(x: Tensor, model: string): Tensor {
  const c = x.shape[3];
  if (c !== 3) throw new ConfigError(`${model}.transformInput`, 'an RGB input (3 channels)', `${c} channels`);
  return tf.tidy(() => {
    const scale = tf.tensor1d(IMAGENET_STD.map((s) => s / 0.5));
    const shift = tf.tensor1d(IMAGENET_MEAN.map((m) => (m - 0.5) / 0.5));
    return tf.add(tf.mul(x, scale), shift);
  });
}

/** Checks the option at construction time, so a wrong channel count fails before any forward pass. */
export function checkTransformInput(model: string, transformInput: boolean, inChannels: number): void {
  if (transformInput && inChannels !== 3) throw new ConfigError(`${model}.transformInput`, 'inChannels = 3 (it rescales RGB channels)', inChannels);
}
