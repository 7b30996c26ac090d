import { beforeAll, describe, expect, it } from 'vitest';
import { O, core, tf, useWasm } from './support.js';

beforeAll(useWasm);

describe('ReduceLROnPlateau', () => {
  it('reduces after more than `patience` epochs without improvement and never below minLr', () => {
    const p = tf.variable(tf.zeros([1]), true, 'plateau_basic');
    const opt = new O.SGD([p], { lr: 1 });
    const s = new O.ReduceLROnPlateau(opt, { patience: 1, factor: 0.5, minLr: 0.3 });
    for (const v of [1, 1, 1]) s.step({ val_loss: v });
    expect(opt.getLr()).toBe(0.5);
    s.step(0.5);
    s.step(0.5);
    s.step(0.5);
    expect(opt.getLr()).toBe(0.3);
    p.dispose();
  });

  it('saves and restores its plateau state (JSON-safe, best = ∞ included)', () => {
    const p = tf.variable(tf.zeros([1]), true, 'plateau_state');
    const opt = new O.SGD([p], { lr: 1 });
    const fresh = new O.ReduceLROnPlateau(opt, { patience: 2 });
    expect(JSON.parse(JSON.stringify(fresh.stateDict())).best).toBeNull();
    const s = new O.ReduceLROnPlateau(opt, { patience: 2 });
    s.step({ val_loss: 1 });
    s.step({ val_loss: 2 });
    s.step({ val_loss: 2 });
    const copy = new O.ReduceLROnPlateau(opt, { patience: 2 });
    copy.loadStateDict(JSON.parse(JSON.stringify(s.stateDict())) as Record<string, unknown>);
    expect(copy.stateDict()).toEqual(s.stateDict());
    copy.step({ val_loss: 2 });
    expect(opt.getLr()).toBeCloseTo(0.1, 12);
    expect(() => copy.loadStateDict({ best: 1 })).toThrow(core.ConfigError);
    p.dispose();
  });

  it('names the available metrics when the monitored one is missing, and rejects bad options', () => {
    const p = tf.variable(tf.zeros([1]), true, 'plateau_errors');
    const opt = new O.SGD([p]);
    const s = new O.ReduceLROnPlateau(opt, { monitor: 'val_acc', mode: 'max' });
    expect(() => s.step({ loss: 1, val_loss: 2 })).toThrow(/val_acc.*loss, val_loss|loss, val_loss/s);
    expect(() => new O.ReduceLROnPlateau(opt, { factor: 1 })).toThrow(/ReduceLROnPlateau\.factor/);
    expect(() => new O.ReduceLROnPlateau(opt, { mode: 'up' as never })).toThrow(/ReduceLROnPlateau\.mode/);
    expect(() => new O.ReduceLROnPlateau(opt, { patience: -1 })).toThrow(/ReduceLROnPlateau\.patience/);
    expect(() => new O.ReduceLROnPlateau(opt, { minLr: [0, 0] })).toThrow(/ReduceLROnPlateau\.minLr/);
    expect(() => new O.ReduceLROnPlateau(opt, { thresholdMode: 'x' as never })).toThrow(/thresholdMode/);
    p.dispose();
  });
});
