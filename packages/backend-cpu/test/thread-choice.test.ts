import { describe, expect, it } from 'vitest';
import { chooseThreads } from '../src/thread-choice.js';

describe('chooseThreads (the wasm backend default thread count)', () => {
  it('gives oneDNN every core whatever the load, so consecutive runs start alike', () => {
    for (const loadavg of [[0, 0, 0], [0.6, 0.2, 0.1], [1.4, 1.5, 1.2], [21, 16, 10]]) {
      expect(chooseThreads({ cores: 2, loadavg, dnnl: true }).threads).toBe(2);
      expect(chooseThreads({ cores: 16, loadavg, dnnl: true }).threads).toBe(16);
    }
  });

  it('without oneDNN leaves out the cores busy in both the 1- and 5-minute averages', () => {
    expect(chooseThreads({ cores: 8, loadavg: [3.2, 3.0, 2.0], dnnl: false }).threads).toBe(5);
    expect(chooseThreads({ cores: 2, loadavg: [0.1, 0.1, 0.1], dnnl: false }).threads).toBe(2);
    expect(chooseThreads({ cores: 2, loadavg: [9, 9, 9], dnnl: false }).threads).toBe(1);
  });

  it('does not drop threads for a burst that has just begun or a job that has just ended', () => {
    // A burst: the 1-minute average is up, the 5-minute one is not.
    expect(chooseThreads({ cores: 4, loadavg: [3.5, 0.4, 0.2], dnnl: false }).threads).toBe(4);
    // A job that just ended: the 1-minute average has dropped, the 5-minute one has not yet.
    expect(chooseThreads({ cores: 4, loadavg: [0.3, 2.9, 1.5], dnnl: false }).threads).toBe(4);
  });

  it('stays within 1 … cores and says which rule chose', () => {
    const busy = chooseThreads({ cores: 4, loadavg: [40, 40, 40], dnnl: false });
    expect(busy.threads).toBe(1);
    expect(busy.reason).toMatch(/idle cores \(4 − load 40\.00\)/);
    const idle = chooseThreads({ cores: 4, loadavg: [-1, 0, 0], dnnl: false });
    expect(idle.threads).toBe(4);
    expect(chooseThreads({ cores: 3, dnnl: false })).toEqual({ threads: 3, reason: 'all cores (no load average here)' });
    expect(chooseThreads({ cores: 0, loadavg: [0, 0, 0], dnnl: true }).threads).toBe(1);
  });
});
