import { ConfigError } from '@kiln/core';
import type { Logger } from '../logger.js';
import { defaultStorage, processLabel } from '../host/node.js';
import type { Storage } from '../storage/storage.js';
import { WriteQueue } from './write-queue.js';
import { maskedCrc32c } from './crc32c.js';
import { ProtoWriter } from './protobuf.js';

/** Options of `TensorBoardLogger`. */
export interface TensorBoardLoggerOptions {
  /** Directory TensorBoard is pointed at (`tensorboard --logdir DIR`). */
  dir: string;
  /** Where to write (default the host's: files in Node, IndexedDB in browsers). */
  storage?: Storage;
  /** Buckets per histogram (default 30). */
  histogramBuckets?: number;
}

/**
 * Frames one record as TFRecord: uint64 length, masked CRC-32C of those 8 bytes, the data, masked
 * CRC-32C of the data (all little-endian).
 */
export function tfRecord(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16 + data.length);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(data.length), true);
  dv.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(data, 12);
  dv.setUint32(12 + data.length, maskedCrc32c(data), true);
  return out;
}

/** tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5. */
function event(step: number, fill: (e: ProtoWriter) => void): Uint8Array {
  const e = new ProtoWriter().double(1, Date.now() / 1000).int(2, step);
  fill(e);
  return e.finish();
}

/** HistogramProto: min 1, max 2, num 3, sum 4, sum_squares 5, bucket_limit 6, bucket 7 (packed doubles). */
export function histogramProto(values: ArrayLike<number>, buckets = 30): ProtoWriter {
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let sq = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum += v;
    sq += v * v;
  }
  if (values.length === 0) min = max = 0;
  const width = (max - min) / buckets || 1;
  const counts = new Float64Array(buckets);
  for (let i = 0; i < values.length; i++) counts[Math.min(buckets - 1, Math.floor((values[i] - min) / width))]++;
  // bucket_limit[i] is the right edge of bucket i; the last edge is the maximum itself.
  const limits = Array.from({ length: buckets }, (_, i) => (i === buckets - 1 ? max : min + (i + 1) * width));
  return new ProtoWriter().double(1, min).double(2, max).double(3, values.length).double(4, sum).double(5, sq).packedDoubles(6, limits).packedDoubles(7, counts);
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Size and TensorBoard colorspace (1 grey, 2 grey+alpha, 3 RGB, 4 RGBA) from a PNG's IHDR chunk. */
function pngHeader(png: Uint8Array, tag: string): { width: number; height: number; colorspace: number } {
  if (png.length < 29 || PNG_SIGNATURE.some((b, i) => png[i] !== b)) throw new ConfigError(`TensorBoardLogger.logImage(${JSON.stringify(tag)}).png`, 'the bytes of a PNG file', `${png.length} bytes without the PNG signature`);
  const dv = new DataView(png.buffer, png.byteOffset, png.byteLength);
  // PNG colour types: 0 grey, 2 RGB, 3 palette (decoded as RGB), 4 grey+alpha, 6 RGBA.
  const colorspace = ({ 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 } as Record<number, number>)[png[25]] ?? 3;
  return { width: dv.getUint32(16), height: dv.getUint32(20), colorspace };
}

/**
 * Writes TensorBoard event files by hand (no TensorFlow needed): scalars as `simple_value`,
 * histograms as `HistogramProto`, hyper-parameters once as a text summary. Records are appended
 * and flushed as they are logged.
 */
export class TensorBoardLogger implements Logger {
  readonly name = 'tensorboard';
  /** Path of the event file written. */
  readonly file: string;
  /** Where the event file is written. */
  readonly storage: Storage;
  private readonly queue = new WriteQueue();

  constructor(private readonly options: TensorBoardLoggerOptions) {
    this.storage = options.storage ?? defaultStorage();
    this.file = this.storage.join(options.dir, `events.out.tfevents.${Math.floor(Date.now() / 1000)}.${processLabel()}`);
    void this.write(event(0, (e) => e.string(3, 'brain.Event:2'))).catch(() => {
      // Reported again by the next write (the same storage, the same file) or by finalize.
    });
  }

  /** Appends one record; records reach the file in call order. */
  private write(data: Uint8Array): Promise<void> {
    const record = tfRecord(data);
    return this.queue.run(() => this.storage.append(this.file, record));
  }

  /** Summary { value = 1: Value { tag = 1, simple_value = 2 } } per metric, one event per call. */
  logMetrics(metrics: Record<string, number>, step: number): Promise<void> {
    const summary = new ProtoWriter();
    for (const [tag, v] of Object.entries(metrics)) summary.message(1, new ProtoWriter().string(1, tag).float(2, v));
    return this.write(event(step, (e) => e.message(5, summary)));
  }

  /** One histogram per named array (Value.histo = 5). */
  logHistograms(named: Record<string, ArrayLike<number>>, step: number): Promise<void> {
    const summary = new ProtoWriter();
    for (const [tag, vs] of Object.entries(named)) summary.message(1, new ProtoWriter().string(1, tag).message(5, histogramProto(vs, this.options.histogramBuckets)));
    return this.write(event(step, (e) => e.message(5, summary)));
  }

  /**
   * One PNG image (Value.image = 4: Image { height = 1, width = 2, colorspace = 3, encoded_image_string
   * = 4 }), shown in TensorBoard's Images tab. Width and height are read from the PNG's IHDR chunk.
   */
  logImage(tag: string, png: Uint8Array, step: number): Promise<void> {
    const { width, height, colorspace } = pngHeader(png, tag);
    const image = new ProtoWriter().int(1, height).int(2, width).int(3, colorspace).bytes(4, png);
    return this.write(event(step, (e) => e.message(5, new ProtoWriter().message(1, new ProtoWriter().string(1, tag).message(4, image)))));
  }

  /**
   * As a text summary (Value.metadata = 9 naming the `text` plugin, Value.tensor = 8 holding a
   * DT_STRING scalar), which TensorBoard's Text tab shows as a table.
   */
  logHyperparams(params: Record<string, unknown>): Promise<void> {
    const md = ['| name | value |', '|---|---|', ...Object.entries(params).map(([k, v]) => `| ${k} | ${typeof v === 'string' ? v : JSON.stringify(v)} |`)].join('\n');
    const tensor = new ProtoWriter().int(1, 7).message(2, new ProtoWriter()).string(8, md);
    const metadata = new ProtoWriter().message(1, new ProtoWriter().string(1, 'text'));
    const value = new ProtoWriter().string(1, 'hparams/text_summary').message(9, metadata).message(8, tensor);
    return this.write(event(0, (e) => e.message(5, new ProtoWriter().message(1, value))));
  }

  /**
   * Marks a resume: an Event with `session_log` = 7 { status = 1 (START) } at step + 1. TensorBoard
   * purges, on reading it, every event of earlier files at that step or later, which the interrupted
   * run logged and the resumed run logs again. (A checkpoint taken inside an epoch may leave that
   * epoch's point at `step` shown twice, with the same value: purging `step` would also purge the
   * step-level point logged before the checkpoint, which is not logged again.)
   */
  onResume(step: number): Promise<void> {
    return this.write(event(step + 1, (e) => e.message(7, new ProtoWriter().int(1, 1))));
  }

  /** Waits for every record logged so far to be written. */
  finalize(): Promise<void> {
    return this.queue.run(async () => undefined);
  }
}
