import { NotFoundError } from '@kiln/core';
import { SPLIT_FOLDERS, type FolderLayout, type ImageEntry } from './image-host.js';

/** A directory listing as a platform gives it: names, and whether each is a directory. */
export interface DirEntry {
  name: string;
  dir: boolean;
}

/** Lists a directory by path ('/'-joined below the root the reader was made for). */
export type ListDir = (dir: string) => Promise<DirEntry[]>;

const join = (a: string, b: string) => (a === '' ? b : `${a}/${b}`);
const byName = (a: DirEntry, b: DirEntry) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Image files under `dir`, recursively, in sorted order; hidden names (`.DS_Store`, `._x.jpg`) are left out. */
async function imagesUnder(list: ListDir, dir: string, extensions: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const e of (await list(dir)).sort(byName)) {
    if (e.name.startsWith('.')) continue;
    const p = join(dir, e.name);
    if (e.dir) out.push(...(await imagesUnder(list, p, extensions)));
    else {
      const dot = e.name.lastIndexOf('.');
      if (dot > 0 && extensions.includes(e.name.slice(dot).toLowerCase())) out.push(p);
    }
  }
  return out;
}

const subdirs = async (list: ListDir, dir: string) => (await list(dir)).filter((e) => e.dir && !e.name.startsWith('.')).sort(byName).map((e) => e.name);

/**
 * The layout of an image-classification folder, as relative paths. `ROOT/<class>/…` gives classes
 * in sorted order (images may sit in deeper sub-folders of a class). When ROOT has a `train`
 * folder and every folder in ROOT is a split name (train, val/valid/validation, test), each split
 * is such a tree and the classes are the union over splits, so a label means the same in each.
 */
export async function folderLayout(list: ListDir, rootName: string, extensions: string[]): Promise<FolderLayout> {
  const top = await subdirs(list, '');
  const isSplit = top.includes('train') && top.every((d) => d in SPLIT_FOLDERS);
  const splitDirs: [('train' | 'val' | 'test'), string][] = isSplit ? top.map((d) => [SPLIT_FOLDERS[d], d]) : [['train', '']];
  const classSet = new Set<string>();
  const perSplit: [('train' | 'val' | 'test'), string, string[]][] = [];
  for (const [split, dir] of splitDirs) {
    const classes = await subdirs(list, dir);
    classes.forEach((c) => classSet.add(c));
    perSplit.push([split, dir, classes]);
  }
  const classes = [...classSet].sort();
  if (classes.length === 0) {
    throw new NotFoundError(`class sub-folders in '${rootName}'`, [rootName], 'lay images out as ROOT/<class>/<image>, or ROOT/train/<class>/<image> with val/ and test/ beside train/');
  }
  const label = new Map(classes.map((c, i) => [c, i]));
  const splits: FolderLayout['splits'] = { train: [] };
  for (const [split, dir, cls] of perSplit) {
    const entries: ImageEntry[] = (splits[split] ??= []);
    for (const c of cls) for (const file of await imagesUnder(list, join(dir, c), extensions)) entries.push({ file, label: label.get(c) as number });
  }
  if (splits.train.length === 0) {
    throw new NotFoundError(`images (${extensions.join(', ')}) under '${rootName}${isSplit ? '/train' : ''}'`, classes.map((c) => `${rootName}/${isSplit ? 'train/' : ''}${c}`), 'pass extensions: [...] for other file types');
  }
  return { classes, splits };
}
