import { tf, DataFormatError, KilnError, defaultRng, type RngState } from '@kiln/core';
import type { DataLoader, LoaderState } from '@kiln/data';
import type { Trainer } from './trainer.js';
import type { TrainingModule } from './training-module.js';
import { CHECKPOINT_FORMAT, checkpointTensors, readCheckpointFrom, saveCheckpoint, type Checkpoint, type CheckpointMeta, type CheckpointParts } from './checkpoint.js';

/**
 * The one home of checkpoint save and restore for a `fit` (Lightning's checkpoint connector): what
 * goes into a checkpoint (the trainer's counters and metrics, the loop's position and running epoch
 * sums, the loader's position, the generator, callbacks' state and tensors, every optimizer and
 * scheduler) and how each piece is put back on resume. File I/O happens only in `writeFile` and
 * `readFile`.
 */
export class CheckpointConnector {
  constructor(private readonly trainer: Trainer) {}

  /**
   * Writes a checkpoint of the running `fit`. Fires `onSaveCheckpoint` with the metadata, which
   * callbacks may extend, before anything is written.
   */
  async save(file: string): Promise<void> {
    const trainer = this.trainer;
    const module = trainer.module;
    const cfg = trainer.optimizerConfig;
    if (!module || !cfg || trainer.stage !== 'fit') throw new KilnError('E_NO_RUN', 'saveCheckpoint needs a running fit', { hint: 'call it from a callback hook during trainer.fit' });
    const epochLoop = trainer.fitLoop.epochLoop;
    // Saved after the last batch but before the epoch end ran (everyNSteps), the epoch is not done:
    // the resume re-enters it to validate, log and run the epoch-end callbacks.
    const done = trainer.epochTrainingDone;
    const optim = cfg.optimizer.stateDict();
    const extra = trainer.optimizerConfigs.slice(1).map((c) => ({ state: c.optimizer.stateDict(), scheduler: c.scheduler?.stateDict?.() ?? null }));
    const train = trainer.fitLoop.trainLoader;
    const meta: CheckpointMeta = {
      format: CHECKPOINT_FORMAT,
      epoch: done ? trainer.currentEpoch + 1 : trainer.currentEpoch,
      batch: done ? 0 : trainer.batchesDone,
      globalStep: trainer.globalStep,
      callbackMetrics: { ...trainer.callbackMetrics },
      epochMetrics: done ? null : await epochLoop.metricsState(),
      optimizer: { step: optim.step, groups: optim.groups },
      scheduler: cfg.scheduler?.stateDict?.() ?? null,
      ...(extra.length > 0 ? { extraOptimizers: extra.map((e) => ({ step: e.state.step, groups: e.state.groups, scheduler: e.scheduler })) } : {}),
      loader: train ? loaderCheckpoint(train, done) : null,
      rng: defaultRng().getState(),
      callbacks: trainer.callbacks.stateDict(),
      model: { class: module.model.typeName, parameters: module.model.numParameters(), hparams: module.hparams() },
      versions: { checkpoint: String(CHECKPOINT_FORMAT), tfjs: tf.version_core },
    };
    await trainer.callbacks.call('onSaveCheckpoint', module, trainer, module, meta);
    await this.writeFile(file, { model: module.model.stateDict(), optimizerSlots: optim.slots, extraOptimizerSlots: extra.map((e) => e.state.slots), callbackTensors: trainer.callbacks.stateTensors(), meta });
  }

  /**
   * Puts a checkpoint's state back into the module, callbacks, optimizers, loader and loops;
   * returns the generator state to apply once training starts (after the sanity check).
   */
  async restore(file: string, module: TrainingModule, train: DataLoader): Promise<RngState | undefined> {
    const trainer = this.trainer;
    const ck = await this.readFile(file);
    const cfg = trainer.optimizerConfig!;
    const { meta } = ck;
    try {
      // Lightning's order: model, then callbacks (which may reshape the optimizer, e.g. add the
      // parameter group BackboneFinetuning unfroze), then optimizer and scheduler.
      module.model.loadStateDict(ck.modelState);
      await trainer.callbacks.call('onLoadCheckpoint', module, trainer, module, meta);
      trainer.callbacks.loadStateDict(meta.callbacks ?? {});
      trainer.callbacks.loadStateTensors(ck.callbackTensors);
      ck.callbackTensors = {};
      // In a tidy scope: temporaries made while creating slot variables are freed (variables survive tidy).
      if (meta.optimizer) tf.tidy(() => cfg.optimizer.loadStateDict({ ...(meta.optimizer as { step: number; groups: never[] }), slots: ck.optimizerSlots }));
      const saved = meta.extraOptimizers ?? [];
      if (saved.length !== trainer.optimizerConfigs.length - 1) {
        throw new DataFormatError(file, 'the checkpoint was written with another number of optimizers', { expected: `${trainer.optimizerConfigs.length} (what configureOptimizers returns now)`, found: `${saved.length + 1}` });
      }
      saved.forEach((o, i) => {
        const c = trainer.optimizerConfigs[i + 1];
        tf.tidy(() => c.optimizer.loadStateDict({ step: o.step, groups: o.groups as never[], slots: ck.extraOptimizerSlots[i] ?? {} }));
        if (o.scheduler && c.scheduler?.loadStateDict) c.scheduler.loadStateDict(o.scheduler);
      });
    } finally {
      tf.dispose(checkpointTensors(ck));
    }
    if (meta.scheduler && cfg.scheduler?.loadStateDict) cfg.scheduler.loadStateDict(meta.scheduler);
    if (meta.loader) restoreLoader(train, meta.loader as SavedLoader);
    trainer.currentEpoch = meta.epoch;
    trainer.globalStep = meta.globalStep;
    trainer.callbackMetrics = { ...meta.callbackMetrics };
    trainer.fitLoop.epochLoop.resumeAt(meta.batch, meta.epochMetrics ?? null);
    return meta.rng as RngState | undefined;
  }

  /** The checkpoint file write into the trainer's storage (atomic: see `saveCheckpoint`). */
  private async writeFile(file: string, parts: CheckpointParts): Promise<void> {
    await saveCheckpoint(file, parts, this.trainer.storage);
  }

  /** The checkpoint file read, verified against its checksum and schema. */
  private async readFile(file: string): Promise<Checkpoint> {
    return readCheckpointFrom(this.trainer.storage, file);
  }
}

/** A loader's position as checkpointed; `replay` marks an epoch that ended before the loader ran out. */
interface SavedLoader {
  state: LoaderState;
  replay: boolean;
}

/**
 * The loader's position for a checkpoint. Mid-epoch, its own state resumes at the next batch. At
 * an epoch end the loader has either run out (its state already points at the next epoch) or was
 * cut short by limitTrainBatches/maxSteps: then the next epoch starts from the generator as that
 * epoch's start left it, which `restoreLoader` reproduces by starting the epoch once more.
 */
function loaderCheckpoint(loader: DataLoader, epochDone: boolean): SavedLoader {
  const state = loader.stateDict();
  return epochDone && state.position !== 0 ? { state: { ...state, position: 0 }, replay: true } : { state, replay: false };
}

function restoreLoader(loader: DataLoader, saved: SavedLoader): void {
  loader.loadStateDict(saved.state);
  // The cut-short epoch's draws (order, augmentation seed) are replayed without reading any example.
  if (saved.replay) loader.skipEpoch();
}
