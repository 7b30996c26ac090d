import { tf, ShapeMismatchError } from '@kiln/core';
import type { ChannelStats } from '../normalize.js';
import type { Augmentation } from './augmentation.js';

/**
 * Standardises every channel: (x − mean) / std with statistics from `channelStats` on the training
 * split. Store those numbers with the model (they are plain JSON) and pass the same ones at
 * evaluation, so held-out data never influences preprocessing.
 */
export function normalize(stats: ChannelStats): Augmentation {
  return (x) => {
    const c = x.shape[3];
    if (stats.mean.length !== c || stats.std.length !== c) throw new ShapeMismatchError('normalize', `statistics for ${stats.mean.length} channels`, x.shape);
    return tf.tidy(() => tf.div(tf.sub(x, tf.tensor1d(stats.mean)), tf.tensor1d(stats.std)) as tf.Tensor4D);
  };
}
