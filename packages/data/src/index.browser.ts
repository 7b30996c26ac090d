/**
 * @kiln/data in browsers (the package's `browser` export condition): everything that needs no Node
 * API, with image folders read through the browser's own decoders (`imageFolderFromFiles`,
 * `decodeImageBlob`) instead of files and sharp. File-system readers (IDX/CIFAR/CSV files,
 * downloads, Fashion-MNIST location, `imageFolder(path)`) and the split leak check are Node-only:
 * here they keep their names and signatures and throw a `NodeOnlyError` naming the function
 * (`./node-only.browser.ts`), so shared code bundles for both hosts. PNG encoding works on both
 * (stored, uncompressed image data here).
 */
export * from './portable.js';
export * from './node-only.browser.js';
export * from './png.browser.js';
export { imageFolderFromFiles, decodeImageBlob, type FolderFile, type DecodeBlobOptions } from './images/browser-folder.js';
