import { tf, ConfigError } from '@kiln/core';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';

/** Options of {@link DeviceStatsMonitor}. */
export interface DeviceStatsMonitorOptions {
  /** Also log every N optimizer steps (default 0: only at the end of each epoch). */
  everyNSteps?: number;
  /** Prefix of the logged names (default `device/`). */
  prefix?: string;
}

/** What the host reports about the process, in bytes (Node's `process.memoryUsage()`). */
export interface HostMemory {
  /** Resident set size: memory the process holds in RAM, in bytes. */
  rss: number;
  /** JS heap in use, in bytes. */
  heapUsed: number;
}

const MB = 1024 * 1024;

/**
 * The numbers to log, pure: every numeric field of `tf.memory()` under its snake_case name
 * (`num_tensors`, `num_bytes`, `num_data_buffers`, and what the backend adds: WebGL's
 * `num_bytes_in_gpu…`, WebGPU's `num_bytes_allocated_in_gpu`), the process's resident set and JS
 * heap in MiB where the host tells them, and the size of a WASM backend's heap in MiB.
 */
export function deviceStats(memory: tf.MemoryInfo, host?: HostMemory, wasmHeapBytes?: number, prefix = 'device/'): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(memory)) {
    if (typeof v === 'number' && Number.isFinite(v)) out[prefix + snakeCase(k)] = v;
  }
  if (host) {
    out[`${prefix}rss_mb`] = host.rss / MB;
    out[`${prefix}heap_used_mb`] = host.heapUsed / MB;
  }
  if (wasmHeapBytes !== undefined) out[`${prefix}wasm_heap_mb`] = wasmHeapBytes / MB;
  return out;
}

function snakeCase(name: string): string {
  return name.replace(/GPU/g, 'Gpu').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The process's memory where the host has `process.memoryUsage` (Node, Bun, Deno); undefined in a browser. */
function hostMemory(): HostMemory | undefined {
  const proc = (globalThis as { process?: { memoryUsage?: () => HostMemory } }).process;
  return typeof proc?.memoryUsage === 'function' ? proc.memoryUsage() : undefined;
}

/**
 * The heap of a WASM backend: tfjs-backend-wasm keeps its Emscripten module on `backend.wasm`, whose
 * `HEAPU8` spans the whole linear memory. Undefined on other backends.
 */
function wasmHeapBytes(): number | undefined {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return backend.wasm?.HEAPU8?.byteLength;
}

/**
 * Logs device and process memory to the trainer's loggers at the end of every training epoch (and
 * every `everyNSteps` optimizer steps): tensors alive, their bytes, the resident set size
 * (Lightning's DeviceStatsMonitor). A growing `device/num_tensors` is a tensor leak; a growing
 * `device/rss_mb` with a flat tensor count is memory held outside tfjs.
 */
export class DeviceStatsMonitor implements Callback {
  readonly stateKey = 'DeviceStatsMonitor';
  /** The last numbers logged. */
  last: Record<string, number> = {};
  private lastStep = -1;

  constructor(private readonly options: DeviceStatsMonitorOptions = {}) {
    const n = options.everyNSteps ?? 0;
    if (!Number.isInteger(n) || n < 0) throw new ConfigError('DeviceStatsMonitor.everyNSteps', 'a non-negative integer', options.everyNSteps);
  }

  /** The numbers now (reads no tensor: `tf.memory()` is bookkeeping). */
  read(): Record<string, number> {
    return deviceStats(tf.memory(), hostMemory(), wasmHeapBytes(), this.options.prefix ?? 'device/');
  }

  async onTrainBatchEnd(trainer: Trainer): Promise<void> {
    const n = this.options.everyNSteps ?? 0;
    if (n === 0 || !trainer.atOptimizerStepBoundary || trainer.globalStep === this.lastStep || trainer.globalStep % n !== 0) return;
    this.lastStep = trainer.globalStep;
    await this.log(trainer);
  }

  async onTrainEpochEnd(trainer: Trainer): Promise<void> {
    await this.log(trainer);
  }

  private async log(trainer: Trainer): Promise<void> {
    this.last = this.read();
    for (const l of trainer.loggers) await l.logMetrics(this.last, trainer.globalStep);
  }
}
