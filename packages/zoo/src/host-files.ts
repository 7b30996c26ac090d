import { NotFoundError } from '@kiln/core';

/** Held in a variable so that browser bundlers neither resolve nor warn about it. */
const NODE_FS = 'node:fs/promises';

/**
 * The zoo's only contact with the host: reading a weight file by path. Node's `fs` is imported on
 * demand, so bundles for browsers (which pass bytes instead of paths) never load it.
 */
export async function readWeightFile(file: string): Promise<Uint8Array> {
  const fs = (await import(/* @vite-ignore */ NODE_FS)) as typeof import('node:fs/promises');
  try {
    return new Uint8Array(await fs.readFile(file));
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw new NotFoundError(`weight file '${file}'`, [file]);
    throw e;
  }
}
