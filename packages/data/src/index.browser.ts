/**
 * @kiln/data in browsers (the package's `browser` export condition): everything that needs no Node
 * API, with image folders read through the browser's own decoders (`imageFolderFromFiles`,
 * `decodeImageBlob`) instead of files and sharp. File-system readers (IDX/CIFAR/CSV files,
 * downloads, Fashion-MNIST location, `imageFolder(path)`) are Node-only.
 */
export * from './dataset.js';
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
