/**
 * The trainer's host adapter in browsers, compiled in place of `./node.ts` into the browser build
 * (see there). Checkpoints and logs go to IndexedDB; what needs a file system throws a
 * `NodeOnlyError` naming the function and the browser way instead. Each export is typed as its
 * Node twin, so the two builds cannot drift apart.
 */
import { NodeOnlyError } from '@kiln/core';
import type * as NodeHost from './node.js';
import { IndexedDbStorage } from '../storage/indexeddb-storage.js';

/** Files need Node: in a browser, constructing one says so. */
export const FileStorage = class FileStorage {
  constructor() {
    throw new NodeOnlyError('FileStorage', "use new IndexedDbStorage() (the default storage in browsers)");
  }
} as unknown as typeof NodeHost.FileStorage;

let shared: IndexedDbStorage | undefined;
/** One connection to the database `kiln`, shared by every user of the default. */
export const defaultStorage: typeof NodeHost.defaultStorage = () => (shared ??= new IndexedDbStorage());

export const readFileSyncOnHost: typeof NodeHost.readFileSyncOnHost = (file) => {
  throw new NodeOnlyError(`readCheckpoint('${file}')`, 'use readCheckpointFrom(storage, name), which reads from IndexedDB');
};

export const processLabel: typeof NodeHost.processLabel = () => 'browser';
