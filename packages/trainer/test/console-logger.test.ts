import { describe, expect, it } from 'vitest';
import { ConsoleLogger } from '../src/index.js';

describe('ConsoleLogger', () => {
  it('prints one line per epoch, counting epochs from 1 like the progress bar', () => {
    const lines: string[] = [];
    const log = new ConsoleLogger((l) => lines.push(l));
    log.logHyperparams({ lr: 0.001 });
    log.logMetrics({ epoch: 0, train_loss: 0.49612, steps: 860 });
    log.logMetrics({ step: 10, train_loss: 0.3 });
    log.logMetrics({ epoch: 1, val_acc: 0.883 });
    expect(lines).toEqual(['hparams {"lr":0.001}', 'epoch 1: train_loss=0.4961 steps=860', 'epoch 2: val_acc=0.8830']);
  });
});
