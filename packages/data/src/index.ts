/**
 * @kiln/data — readers, datasets, loaders and splits.
 */
export * from './dataset.js';
export * from './idx.js';
export * from './files.js';
export * from './download.js';
export * from './fashion-mnist.js';
export * from './loader.js';
export * from './splits.js';
export * from './normalize.js';
