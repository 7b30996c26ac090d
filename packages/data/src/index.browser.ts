/**
 * @kiln/data in browsers (the package's `browser` export condition): everything that needs no Node
 * API, with image folders read through the browser's own decoders (`imageFolderFromFiles`,
 * `decodeImageBlob`) instead of files and sharp. File-system readers (IDX/CIFAR/CSV files,
 * downloads, Fashion-MNIST location, `imageFolder(path)`) and the split leak check are Node-only
 * (PNG encoding works here too, storing the image data uncompressed): here they keep their names and signatures and throw a `NodeOnlyError` naming
 * the function (`./node-only.browser.ts`), so shared code bundles for both hosts.
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
export { readTar, type TarEntry } from './tar.js';
export * from './node-only.browser.js';
export * from './png.browser.js';
export { storedZlib, writePng, type ZlibDeflate } from './png-writer.js';
export * from './dataset-ops.js';
export * from './idx.js';
export * from './sampler.js';
export * from './loader.js';
export * from './splits.js';
export * from './k-fold.js';
export * from './validation-size.js';
export * from './normalize.js';
export * from './augment/index.js';
export { imageFolderFromFiles, decodeImageBlob, type FolderFile, type DecodeBlobOptions } from './images/browser-folder.js';
export { ImageFolderDataset, type ImageFolder, type ImageFolderOptions, type SkippedImage } from './images/image-folder-dataset.js';
export { resizePlan, RESIZE_MODES, type ResizeMode, type ResizePlan } from './images/geometry.js';
export { DEFAULT_EXTENSIONS, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_PIXELS, type DecodedImage, type FolderLayout, type ImageEntry, type ImageLimits } from './images/image-host.js';
export type { CacheStats } from './images/byte-lru.js';
