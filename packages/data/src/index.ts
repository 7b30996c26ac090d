/**
 * @kiln/data — readers, datasets, loaders, augmentation and splits.
 */
export * from './dataset.js';
export * from './dataset-ops.js';
export * from './idx.js';
export * from './files.js';
export * from './cifar.js';
export { readTar, type TarEntry } from './tar.js';
export * from './csv.js';
export { decodeImage, type DecodedImage } from './image-decode.js';
export { imageFolder, listImageFolder, type ImageFolderOptions } from './image-folder.js';
export * from './png.js';
export * from './download.js';
export * from './fashion-mnist.js';
export * from './sampler.js';
export * from './loader.js';
export * from './splits.js';
export * from './k-fold.js';
export * from './leak-check.js';
export * from './validation-size.js';
export * from './normalize.js';
export * from './augment/index.js';
