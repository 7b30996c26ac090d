/**
 * @kiln/zoo — classic architectures built from @kiln/layers.
 */
export * from './lenet.js';
export * from './registry.js';
