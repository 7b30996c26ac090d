/** The Fashion-MNIST subset written by scripts/prepare-assets.mjs. */
export interface Split {
  /** uint8 pixels, N×28×28. */
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

export interface Subset {
  train: Split;
  test: Split;
  classes: string[];
  height: number;
  width: number;
  /** Mean and standard deviation of the training pixels scaled to [0, 1], for standardising. */
  mean: number;
  std: number;
}

interface Meta {
  height: number;
  width: number;
  classes: string[];
  counts: { train: number; test: number };
}

/** Fetches and splits the subset; `base` is the URL prefix the page is served under. */
export async function loadSubset(base: string): Promise<Subset> {
  const [metaRes, binRes] = await Promise.all([fetch(`${base}data/fashion-mnist-subset.json`), fetch(`${base}data/fashion-mnist-subset.bin`)]);
  if (!metaRes.ok || !binRes.ok) throw new Error(`could not fetch the data subset (HTTP ${metaRes.status}/${binRes.status}); run npm run prepare-assets`);
  const meta = (await metaRes.json()) as Meta;
  const bytes = new Uint8Array(await binRes.arrayBuffer());
  const px = meta.height * meta.width;
  const expected = (meta.counts.train + meta.counts.test) * (px + 1);
  if (bytes.length !== expected) throw new Error(`data subset is ${bytes.length} bytes, expected ${expected}`);
  let offset = 0;
  const take = (n: number) => bytes.subarray(offset, (offset += n));
  const train = { images: take(meta.counts.train * px), labels: take(meta.counts.train), count: meta.counts.train };
  const test = { images: take(meta.counts.test * px), labels: take(meta.counts.test), count: meta.counts.test };
  let sum = 0;
  let sq = 0;
  for (const v of train.images) {
    sum += v / 255;
    sq += (v / 255) ** 2;
  }
  const mean = sum / train.images.length;
  const std = Math.sqrt(sq / train.images.length - mean * mean);
  return { train, test, classes: meta.classes, height: meta.height, width: meta.width, mean, std };
}
