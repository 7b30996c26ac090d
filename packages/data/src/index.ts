/**
 * @kiln/data — readers, datasets, loaders, augmentation and splits (Node: files, sharp, workers).
 */
export * from './portable.js';
export * from './files.js';
export * from './cifar.js';
export * from './csv.js';
export { decodeImage, type DecodeImageOptions } from './image-decode.js';
export { imageFolder, listImageFolder, loadImages, type LoadImagesOptions } from './image-folder.js';
export * from './png.js';
export * from './download.js';
export * from './fashion-mnist.js';
export * from './leak-check.js';
