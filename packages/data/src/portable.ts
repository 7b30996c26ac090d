/**
 * What @kiln/data offers on every host: both entries (`index.ts` for Node, `index.browser.ts` for
 * browsers) re-export this, and add their host's readers.
 */
export * from './dataset.js';
export {
  InvalidExampleError,
  collateExamples,
  declaredSchema,
  describeSchema,
  inferSchema,
  isTensorSpec,
  isTensorValue,
  toTensors,
  type Collated,
  type CollateOptions,
  type ExampleDType,
  type ExampleSchema,
  type ExampleValue,
  type HostBatch,
  type HostArray,
  type HostTree,
  type NumericArray,
  type Schema,
  type TensorData,
  type TensorSpec,
  type TensorTree,
  type TensorValue,
} from './collate.js';
export * from './dataset-ops.js';
export * from './idx.js';
export { readTar, type TarEntry } from './tar.js';
export { ImageFolderDataset, type DecodeStats, type ImageFolder, type ImageFolderOptions, type SkippedImage } from './images/image-folder-dataset.js';
export { resizePlan, RESIZE_MODES, type ResizeMode, type ResizePlan } from './images/geometry.js';
export { DEFAULT_EXTENSIONS, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, type DecodedImage, type FolderLayout, type ImageEntry, type ImageLimits } from './images/image-host.js';
export type { CacheStats } from './images/byte-lru.js';
export { storedZlib, writePng, type ZlibDeflate } from './png-writer.js';
export * from './sampler.js';
export * from './loader.js';
export * from './splits.js';
export * from './k-fold.js';
export * from './validation-size.js';
export * from './normalize.js';
export * from './augment/index.js';
