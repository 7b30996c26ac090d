import type { ResizeMode } from './geometry.js';

/**
 * What a platform provides to read images: Node's is `sharp` on files (sharp-host.ts), a browser's
 * is its own decoder on `File`s (canvas-host.ts). Everything else (layout, labels, laziness, cache,
 * bad-file policy) is the same code on both.
 */
export interface ImageHost {
  /** The oriented size of an image from its header, without decoding pixels. Throws a DataFormatError naming the file. */
  probe(file: string): Promise<{ height: number; width: number }>;
  /**
   * The image brought to `spec.size` as 8-bit pixels, HWC, in `compactPixels` form (one byte per
   * pixel when the image is grey, else RGB); `pixelsToFloat` makes the `spec.channels` values in
   * [0, 1] of it. Throws a DataFormatError naming the file.
   */
  decode(file: string, spec: DecodeSpec): Promise<Uint8Array>;
  /**
   * Optional: several images with one spec, decoded and converted straight into model input where
   * the host decodes (its threads), answered together. A host with threads implements it so that a
   * batch costs the calling thread one request and one answer, and no work per image. `wanted`
   * settles when the caller starts waiting for the answer: a host may then decode the images its
   * threads have not started on the calling thread (see `WorkerPoolHost`).
   */
  decodeRows?(items: DecodeItem[], spec: Omit<DecodeSpec, 'source'>, keep: boolean, wanted?: Promise<void>): Promise<DecodedRows>;
  /**
   * Optional: decodes `items` once on every thread that will decode, the results unused, so that
   * the first batches do not pay for the threads' warm-up; never throws (a bad file is found later).
   */
  warmUp?(items: DecodeItem[], spec: Omit<DecodeSpec, 'source'>): Promise<void>;
  /** Releases what the host holds (threads); later calls fail. */
  close?(): void;
}

/** What `ImageHost.decode` makes of a file. */
export interface DecodeSpec {
  /** Output `[height, width]`. */
  size: [number, number];
  /** How an image of another size is brought to `size`. */
  resize: ResizeMode;
  /** 1 (BT.601 luma) or 3 (RGB): what the pixels will be converted to (decoders keep RGB so that the conversion is exact). */
  channels: 1 | 3;
  /** The oriented size found by `probe`, when known, so decoding need not read the header again. */
  source?: { height: number; width: number };
}

/** One image of a `decodeRows` request. */
export interface DecodeItem {
  /** The image's file, as `decode` takes it. */
  file: string;
  /** Its oriented size from the probe, when known. */
  source?: { height: number; width: number };
}

/** What `ImageHost.decodeRows` gives for `n` items. */
export interface DecodedRows {
  /**
   * `n` rows of `height × width × channels` float32 values, in the items' order: `pixelsToFloat` of
   * each image's pixels; a failed image's row is zeros.
   */
  rows: Float32Array;
  /** With `keep`: each image's 8-bit pixels, as `decode` gives them (for a cache); undefined where it failed. */
  pixels?: (Uint8Array | undefined)[];
  /** The failed items: position → the error `decode` would have thrown (a DataFormatError naming the file, …). */
  errors: Map<number, Error>;
  /** How many of the images the calling thread decoded itself (successfully), while waiting; the others: the host's threads. */
  byCaller: number;
}

/** A decoded image: `height × width × channels` values in [0, 1], row-major, channels last. */
export interface DecodedImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Values per pixel: 1 (luma) or 3 (RGB). */
  channels: 1 | 3;
  /** `height × width × channels` values in [0, 1], HWC row-major. */
  data: Float32Array;
}

/** Limits that keep a hostile or broken file from costing unbounded memory or time. */
export interface ImageLimits {
  /** Images with more pixels (width × height, as declared) are refused before decoding (default 50 megapixels). */
  maxPixels?: number;
  /** Files larger than this are refused before reading (default 256 MiB). */
  maxFileBytes?: number;
}

/**
 * 50 MP admits today's largest phone photos (48 MP, 8064×6048) and refuses the classic decompression
 * bomb: a few-KB PNG declaring 8192×8192 (67 MP) or more.
 */
export const DEFAULT_MAX_PIXELS = 50_000_000;
/** Default `maxFileBytes`: 256 MiB. */
export const DEFAULT_MAX_FILE_BYTES = 256 * 1024 * 1024;

/** One image of a folder and its class. */
export interface ImageEntry {
  /** The image's path: '/'-separated below the folder's root, or joined to the root by `listImageFolder`. */
  file: string;
  /** Its class: an index into the layout's `classes`. */
  label: number;
}

/** A folder's files by split; `train` holds everything when there are no split sub-folders. */
export interface FolderLayout {
  /** Class folder names, sorted; label `i` is `classes[i]` in every split. */
  classes: string[];
  /** The images of each split present, sorted by class, then path. */
  splits: {
    /** The training images (every image when there are no split folders). */
    train: ImageEntry[];
    /** The images under `val/` (or `valid/`, `validation/`), when there is one. */
    val?: ImageEntry[];
    /** The images under `test/`, when there is one. */
    test?: ImageEntry[];
  };
}

/** Names taken as split folders; `valid` and `validation` count as `val`. */
export const SPLIT_FOLDERS: Record<string, 'train' | 'val' | 'test'> = { train: 'train', val: 'val', valid: 'val', validation: 'val', test: 'test' };

/** File name endings taken as images when `extensions` is not given (matched case-insensitively). */
export const DEFAULT_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp'];
