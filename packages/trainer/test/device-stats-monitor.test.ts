import { beforeAll, describe, expect, it } from 'vitest';
import { tf, ConfigError } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { DeviceStatsMonitor, Trainer, deviceStats, type Logger } from '../src/index.js';
import { loaders, tinyModule } from './helpers.js';

/** Keeps every row it is given. */
class FakeLogger implements Logger {
  readonly name = 'fake';
  rows: { metrics: Record<string, number>; step: number }[] = [];
  logMetrics(metrics: Record<string, number>, step: number): void {
    this.rows.push({ metrics, step });
  }
}

const MB = 1024 * 1024;

describe('DeviceStatsMonitor', () => {
  beforeAll(async () => {
    await wasmBackend().init();
  });

  it('turns tf.memory() and the host numbers into device/… metrics (pure)', () => {
    const memory = { numTensors: 3, numDataBuffers: 2, numBytes: 100, unreliable: false, numBytesInGPU: 64, numBytesInGPUAllocated: 128, reasons: ['x'] } as unknown as tf.MemoryInfo;
    expect(deviceStats(memory, { rss: 3 * MB, heapUsed: MB / 2 }, 8 * MB)).toEqual({
      'device/num_tensors': 3,
      'device/num_data_buffers': 2,
      'device/num_bytes': 100,
      'device/num_bytes_in_gpu': 64,
      'device/num_bytes_in_gpu_allocated': 128,
      'device/rss_mb': 3,
      'device/heap_used_mb': 0.5,
      'device/wasm_heap_mb': 8,
    });
    // In a browser there is no process: only what tfjs tells.
    expect(deviceStats({ numTensors: 1, numDataBuffers: 1, numBytes: 4, unreliable: false, reasons: [] }, undefined, undefined, 'mem.')).toEqual({ 'mem.num_tensors': 1, 'mem.num_data_buffers': 1, 'mem.num_bytes': 4 });
  });

  it('logs at every epoch end and every N optimizer steps during a real fit', async () => {
    const logger = new FakeLogger();
    const monitor = new DeviceStatsMonitor({ everyNSteps: 2 });
    const module = tinyModule(0);
    const { train, val } = loaders(64, 32, 16); // 4 steps per epoch
    const trainer = new Trainer({ maxEpochs: 2, numSanityValSteps: 0, logEveryNSteps: 1000 }, [monitor], [logger]);
    await trainer.fit(module, train, val);
    const rows = logger.rows.filter((r) => 'device/num_tensors' in r.metrics);
    // Steps 2, 4 (epoch 0 end at step 4), 6, 8 (epoch 1 end at step 8).
    expect(rows.map((r) => r.step)).toEqual([2, 4, 4, 6, 8, 8]);
    for (const r of rows) {
      expect(r.metrics['device/num_tensors']).toBeGreaterThan(0);
      expect(r.metrics['device/num_bytes']).toBeGreaterThan(0);
      expect(r.metrics['device/rss_mb']).toBeGreaterThan(1);
      // The backend here is WASM: its linear memory is reported too.
      expect(tf.getBackend()).toBe('wasm');
      expect(r.metrics['device/wasm_heap_mb']).toBeGreaterThan(0);
    }
    // The numbers are the live ones: the last row is what tf.memory() said at the end of the last epoch.
    expect(monitor.last['device/num_tensors']).toBe(rows[rows.length - 1].metrics['device/num_tensors']);
    // No leak in training: the count at the same point of each epoch is the same.
    expect(rows[5].metrics['device/num_tensors']).toBe(rows[2].metrics['device/num_tensors']);
    trainer.optimizerConfig!.optimizer.dispose();
    module.model.dispose();
  });

  it('a bad everyNSteps is a ConfigError', () => {
    expect(() => new DeviceStatsMonitor({ everyNSteps: -1 })).toThrow(ConfigError);
    expect(() => new DeviceStatsMonitor({ everyNSteps: 1.5 })).toThrow(ConfigError);
  });
});
