/**
 * @kiln/core/node — host adapters for Node: checked file reads, crash-safe writes, paths confined
 * to a directory. Only Node code paths import this entry.
 */
export * from './files.js';
