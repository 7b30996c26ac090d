/**
 * @kiln/core — the engine facade every other Kiln package builds on.
 *
 * `tf` is TensorFlow.js's core with gradients and chained ops registered, loaded once however Kiln
 * itself was loaded. The rest is Kiln's own: backend plugins and their registry, typed errors,
 * the seeded generator, leak checks, DI tokens and tensor file formats.
 */
import 'reflect-metadata';
import * as tf from './tfjs-core.js';

export { tf };
export type { Tensor, Variable, Rank, NamedTensorMap, TensorLike } from './tfjs-core.js';
export * from './errors.js';
export * from './rng.js';
export * from './backend.js';
export * from './memory.js';
export * from './tokens.js';
export * from './accelerator.js';
export * from './tensor-files.js';
export * from './torch-file.js';
export { unpickle, unpickleFirst, UnsafePickleError, PickleGlobal, type PickleValue, type PickleKey, type UnpickleOptions } from './pickle.js';
export { ZipArchive, type ZipEntry, type ZipLimits } from './zip-reader.js';
export * from './host.js';
export * from './node-builtins.js';
export * from './no-backend.js';
export * from './global-rng.js';
export * from './fused-kernels.js';
export * from './no-grad.js';
