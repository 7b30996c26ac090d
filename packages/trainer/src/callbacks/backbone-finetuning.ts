import { ConfigError } from '@kiln/core';
import type { Module } from '@kiln/layers';
import type { ParamGroup } from '@kiln/optim';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Options of `BackboneFinetuning`. */
export interface BackboneFinetuningOptions {
  /** Dotted path of the backbone inside the model (e.g. `features`), or a function returning it. */
  backbone: string | ((model: Module) => Module);
  /** Epoch (0-based) at whose start the backbone is unfrozen (default 10). */
  unfreezeAtEpoch?: number;
  /** The backbone's learning rate is the head's rate at that moment times this (default 0.1). */
  backboneLrFactor?: number;
}

/**
 * Transfer learning in two phases: the backbone is frozen from `setup` (so the optimizer is built
 * over the head only), then at `unfreezeAtEpoch` it is unfrozen and added to the optimizer as its
 * own parameter group with a lower learning rate.
 */
export class BackboneFinetuning implements Callback {
  readonly stateKey = 'BackboneFinetuning';
  /** The epoch (0-based) at which the backbone is unfrozen. */
  readonly unfreezeAtEpoch: number;
  private unfrozen = false;

  constructor(private readonly options: BackboneFinetuningOptions) {
    this.unfreezeAtEpoch = options?.unfreezeAtEpoch ?? 10;
    if (!Number.isInteger(this.unfreezeAtEpoch) || this.unfreezeAtEpoch < 0) throw new ConfigError('BackboneFinetuning.unfreezeAtEpoch', 'a non-negative integer', options?.unfreezeAtEpoch);
    const f = options?.backboneLrFactor ?? 0.1;
    if (!(f > 0)) throw new ConfigError('BackboneFinetuning.backboneLrFactor', 'a positive number', f);
  }

  private backbone(module: TrainingModule): Module {
    const b = this.options.backbone;
    return typeof b === 'function' ? b(module.model) : module.model.getModule(b);
  }

  setup(_t: Trainer, module: TrainingModule, stage: string): void {
    if (stage !== 'fit') return;
    this.unfrozen = false;
    for (const p of this.backbone(module).parameters()) p.trainable = false;
  }

  onTrainEpochStart(trainer: Trainer, module: TrainingModule): void {
    if (!this.unfrozen && trainer.currentEpoch >= this.unfreezeAtEpoch) this.unfreeze(trainer, module);
  }

  /** A resumed run past the unfreeze epoch needs the backbone group back before the optimizer state loads. */
  onLoadCheckpoint(trainer: Trainer, module: TrainingModule, checkpoint: Record<string, unknown>): void {
    const mine = (checkpoint.callbacks as Record<string, { unfrozen?: boolean }> | undefined)?.[this.stateKey];
    if (mine?.unfrozen && !this.unfrozen) this.unfreeze(trainer, module);
  }

  private unfreeze(trainer: Trainer, module: TrainingModule): void {
    const opt = trainer.optimizerConfig!.optimizer;
    const params = this.backbone(module).parameters();
    for (const p of params) p.trainable = true;
    const head = opt.paramGroups[0];
    const lr = opt.getLr(0) * (this.options.backboneLrFactor ?? 0.1);
    const group: ParamGroup = { name: 'backbone', params: params.map((p) => p.variable), hyper: { ...head.hyper, lr }, initialLr: lr };
    (opt.paramGroups as ParamGroup[]).push(group);
    this.unfrozen = true;
  }

  stateDict(): Record<string, unknown> {
    return { unfrozen: this.unfrozen };
  }

  loadStateDict(): void {
    // Applied in onLoadCheckpoint, which has the trainer and module.
  }
}
