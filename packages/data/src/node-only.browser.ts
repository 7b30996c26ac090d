/**
 * The browser build's stand-ins for @kiln/data's Node-only functions (they read files, spawn worker
 * threads, download, hash with `node:crypto` or decode with `sharp`). Each keeps its Node
 * signature, so code written for both hosts type-checks and bundles, and throws a `NodeOnlyError`
 * naming the function and the browser way, when there is one. The modules themselves are imported
 * for their types only, so none of them reaches a browser bundle.
 */
import { NodeOnlyError } from '@kiln/core';
import type * as Files from './files.js';
import type * as Cifar from './cifar.js';
import type * as Csv from './csv.js';
import type * as Download from './download.js';
import type * as FashionMnist from './fashion-mnist.js';
import type * as LeakCheck from './leak-check.js';
import type * as ImageDecode from './image-decode.js';
import type * as ImageFolder from './image-folder.js';

/** A function that throws `NodeOnlyError(name)` when called, typed as the Node function it replaces. */
function nodeOnly<F>(name: string, instead?: string): F {
  return (() => {
    throw new NodeOnlyError(name, instead);
  }) as F;
}

const FETCH = 'fetch the bytes yourself and build an ArrayDataset (see apps/playground/src/subset.ts)';
const FILES = 'use imageFolderFromFiles(files) with File objects from an <input type="file" webkitdirectory>';

export const readIdxFile = nodeOnly<typeof Files.readIdxFile>('readIdxFile', 'fetch the file and parse it with parseIdx(bytes, name)');
export const readIdxFileAsync = nodeOnly<typeof Files.readIdxFileAsync>('readIdxFileAsync', 'fetch the file and parse it with parseIdx(bytes, name)');
export const readCifarFiles = nodeOnly<typeof Cifar.readCifarFiles>('readCifarFiles', FETCH);
export const locateCifar = nodeOnly<typeof Cifar.locateCifar>('locateCifar', FETCH);
export const unpackCifarArchive = nodeOnly<typeof Cifar.unpackCifarArchive>('unpackCifarArchive');
export const readCifarClassNames = nodeOnly<typeof Cifar.readCifarClassNames>('readCifarClassNames');
export const cifar = nodeOnly<typeof Cifar.cifar>('cifar', FETCH);
export const readCsvDataset = nodeOnly<typeof Csv.readCsvDataset>('readCsvDataset', 'fetch the text and use parseCsv + csvDataset');
export const sha256File = nodeOnly<typeof Download.sha256File>('sha256File');
export const ensureDownloaded = nodeOnly<typeof Download.ensureDownloaded>('ensureDownloaded', 'fetch() the file; the browser caches it');
export const locateFashionMnist = nodeOnly<typeof FashionMnist.locateFashionMnist>('locateFashionMnist', FETCH);
export const readIdxImageDataset = nodeOnly<typeof FashionMnist.readIdxImageDataset>('readIdxImageDataset', FETCH);
export const fashionMnist = nodeOnly<typeof FashionMnist.fashionMnist>('fashionMnist', FETCH);
export const findLeaks = nodeOnly<typeof LeakCheck.findLeaks>('findLeaks', 'run the split leak check in Node');
export const decodeImage = nodeOnly<typeof ImageDecode.decodeImage>('decodeImage', 'use decodeImageBlob(blob)');
export const listImageFolder = nodeOnly<typeof ImageFolder.listImageFolder>('listImageFolder', FILES);
export const imageFolder = nodeOnly<typeof ImageFolder.imageFolder>('imageFolder', FILES);
export const loadImages = nodeOnly<typeof ImageFolder.loadImages>('loadImages', FILES);
