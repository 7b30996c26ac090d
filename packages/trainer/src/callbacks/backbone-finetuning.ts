import { ConfigError } from '@kiln/core';
import { BatchNorm, type Module, type Parameter } from '@kiln/layers';
import type { Callback } from '../callback.js';
import type { Trainer } from '../trainer.js';
import type { TrainingModule } from '../training-module.js';

/** Lightning's default `lambda_func`: the backbone's rate doubles at each epoch after unfreezing. */
function multiplicative(): number {
  return 2;
}

/** Options of `BackboneFinetuning`. */
export interface BackboneFinetuningOptions {
  /**
   * The part that is frozen first and fine-tuned later: a dotted module path (`features`), a
   * function returning the module, or — left out — everything but the head of a zoo model (the
   * model's `headPath`).
   */
  backbone?: string | ((model: Module) => Module);
  /** Epoch (0-based) at whose start the backbone joins training (`unfreeze_backbone_at_epoch`). Default 10. */
  unfreezeAtEpoch?: number;
  /**
   * Factor on the backbone's rate at the start of each later epoch, given that epoch + 1
   * (`lambda_func`). Default ×2 (Lightning’s `multiplicative`).
   */
  lambdaFunc?: (epoch: number) => number;
  /** The backbone starts at the rate of the optimizer's first group times this (`backbone_initial_ratio_lr`). Default 0.1. */
  backboneInitialRatioLr?: number;
  /** The backbone's starting rate, instead of the ratio (`backbone_initial_lr`). */
  backboneInitialLr?: number;
  /** Never let the ramp take the backbone's rate above the first group's current rate (`should_align`). Default true. */
  shouldAlign?: boolean;
  /**
   * Keep the backbone's batch-norm layers training while the rest of it is frozen: their scale
   * and shift stay trainable (so the optimizer has them from the start) and their statistics
   * follow the new data (`train_bn`, default true as in Lightning). With false they are frozen
   * with the backbone — statistics included — and join the backbone's group when it unfreezes.
   */
  trainBn?: boolean;
  /** Print the backbone's rate at each change. Default false. */
  verbose?: boolean;
  /** Where messages go (verbose rates, and the warning about parameters already being optimized). Default `console.warn`. */
  log?: (message: string) => void;
}

/**
 * Transfer learning in two phases, as Lightning's `BackboneFinetuning`: the backbone is frozen
 * from `setup` (so the optimizer is built over the rest), then at `unfreezeAtEpoch` it is unfrozen
 * and added to the optimizer with `addParamGroup` as a group of its own, starting at a fraction
 * of the first group's rate; at every later epoch its rate is multiplied by `lambdaFunc(epoch + 1)`,
 * capped at the first group's rate when `shouldAlign`. Backbone parameters the optimizer already
 * holds (built over every parameter) stay in their group: no parameter is ever in two groups, so
 * none is updated twice in a step.
 *
 * The state (unfrozen or not, the backbone's rate, the last epoch handled) goes into checkpoints;
 * a resumed run puts the group back before the optimizer's state is loaded, and a run resumed in
 * the middle of an epoch does not apply that epoch's ramp step twice.
 */
export class BackboneFinetuning implements Callback {
  readonly stateKey = 'BackboneFinetuning';
  /** The epoch (0-based) at which the backbone is unfrozen. */
  readonly unfreezeAtEpoch: number;
  private readonly lambdaFunc: (epoch: number) => number;
  private readonly ratio: number;
  private readonly shouldAlign: boolean;
  private readonly trainBn: boolean;
  private unfrozen = false;
  /** Index of the backbone's parameter group, or -1 when every backbone parameter was already in another group. */
  private groupIndex = -1;
  private backboneLr = 0;
  private lastEpoch = -1;

  constructor(private readonly options: BackboneFinetuningOptions = {}) {
    this.unfreezeAtEpoch = options.unfreezeAtEpoch ?? 10;
    if (!Number.isInteger(this.unfreezeAtEpoch) || this.unfreezeAtEpoch < 0) throw new ConfigError('BackboneFinetuning.unfreezeAtEpoch', 'a non-negative integer', options.unfreezeAtEpoch);
    this.ratio = options.backboneInitialRatioLr ?? 0.1;
    if (!(this.ratio > 0 && Number.isFinite(this.ratio))) throw new ConfigError('BackboneFinetuning.backboneInitialRatioLr', 'a positive number', this.ratio);
    const lr = options.backboneInitialLr;
    if (lr !== undefined && !(lr >= 0 && Number.isFinite(lr))) throw new ConfigError('BackboneFinetuning.backboneInitialLr', 'a finite number >= 0', lr);
    if (options.lambdaFunc !== undefined && typeof options.lambdaFunc !== 'function') throw new ConfigError('BackboneFinetuning.lambdaFunc', 'a function of the epoch', options.lambdaFunc);
    this.lambdaFunc = options.lambdaFunc ?? multiplicative;
    this.shouldAlign = options.shouldAlign ?? true;
    this.trainBn = options.trainBn ?? true;
  }

  /** The backbone as [root module, path of the backbone in it, path of a part to leave out]. */
  private locate(module: TrainingModule): { root: Module; path: string; except?: string } {
    const b = this.options.backbone;
    const model = module.model;
    if (typeof b === 'function') return { root: b(model), path: '' };
    if (typeof b === 'string') return { root: model, path: b };
    const headPath = (model as { headPath?: unknown }).headPath;
    if (typeof headPath !== 'string') {
      throw new ConfigError('BackboneFinetuning.backbone', "the backbone's module path or a function returning it (only zoo models, which name their head, can leave it out)", model.typeName);
    }
    return { root: model, path: '', except: headPath };
  }

  /** The backbone's parameters (with their module paths, to tell batch-norm ones apart). */
  private backboneParams(module: TrainingModule): { param: Parameter; inBatchNorm: boolean }[] {
    const { root, path, except } = this.locate(module);
    const out: { param: Parameter; inBatchNorm: boolean }[] = [];
    for (const [name, m] of root.getModule(path).namedModules()) {
      if (except !== undefined && (name === except || name.startsWith(`${except}.`))) continue;
      const own = m.namedParameters().filter(([n]) => !n.includes('.'));
      for (const [, param] of own) out.push({ param, inBatchNorm: m instanceof BatchNorm });
    }
    return out;
  }

  private setFrozen(module: TrainingModule, frozen: boolean): void {
    const { root, path, except } = this.locate(module);
    if (frozen) root.freeze(path, { trainBn: this.trainBn });
    else root.unfreeze(path);
    if (except !== undefined) root.unfreeze(except);
  }

  setup(_t: Trainer, module: TrainingModule, stage: string): void {
    if (stage !== 'fit') return;
    this.unfrozen = false;
    this.groupIndex = -1;
    this.backboneLr = 0;
    this.lastEpoch = -1;
    this.setFrozen(module, true);
  }

  onTrainEpochStart(trainer: Trainer, module: TrainingModule): void {
    const epoch = trainer.currentEpoch;
    // A run resumed in the middle of an epoch starts that epoch again: its step was applied already.
    if (epoch === this.lastEpoch) return;
    this.lastEpoch = epoch;
    if (!this.unfrozen) {
      if (epoch >= this.unfreezeAtEpoch) this.unfreeze(trainer, module);
      return;
    }
    if (this.groupIndex < 0) return;
    const opt = trainer.optimizerConfig!.optimizer;
    const current = opt.getLr(0);
    const next = this.lambdaFunc(epoch + 1) * this.backboneLr;
    this.backboneLr = this.shouldAlign && next > current ? current : next;
    opt.setLr(this.backboneLr, this.groupIndex);
    if (this.options.verbose) this.say(`BackboneFinetuning: epoch ${epoch}: backbone lr ${this.backboneLr}, lr ${current}`);
  }

  /** A run resumed past the unfreeze epoch needs the backbone's group back before the optimizer's state loads. */
  onLoadCheckpoint(trainer: Trainer, module: TrainingModule, checkpoint: Record<string, unknown>): void {
    const mine = (checkpoint.callbacks as Record<string, { unfrozen?: boolean; backboneLr?: number }> | undefined)?.[this.stateKey];
    if (mine?.unfrozen && !this.unfrozen) this.unfreeze(trainer, module, mine.backboneLr);
  }

  /**
   * Lightning's `unfreeze_and_add_param_group`: makes the backbone trainable and adds the
   * parameters the optimizer does not hold yet as the group `backbone`.
   */
  private unfreeze(trainer: Trainer, module: TrainingModule, lr?: number): void {
    const opt = trainer.optimizerConfig!.optimizer;
    this.setFrozen(module, false);
    this.backboneLr = lr ?? this.options.backboneInitialLr ?? opt.getLr(0) * this.ratio;
    const held = new Set(opt.paramGroups.flatMap((g) => g.params));
    const params = this.backboneParams(module);
    const fresh = params.filter(({ param }) => !held.has(param.variable));
    // With trainBn the batch-norm parameters were trainable all along, so the optimizer has them: expected.
    const surprising = params.filter(({ param, inBatchNorm }) => held.has(param.variable) && !(this.trainBn && inBatchNorm));
    if (surprising.length > 0) {
      this.say(
        `BackboneFinetuning: ${surprising.length} backbone parameter(s) are already in the optimizer and stay in their group at its rate ` +
          `(${surprising[0].param.variable.name}, …); build the optimizer over the trainable parameters only (model.trainableVariables()) for the backbone to get its own rate`,
      );
    }
    this.groupIndex = fresh.length > 0 ? opt.paramGroups.length : -1;
    if (fresh.length > 0) opt.addParamGroup({ name: 'backbone', params: fresh.map(({ param }) => param.variable), lr: this.backboneLr });
    this.unfrozen = true;
    if (this.options.verbose) this.say(`BackboneFinetuning: backbone unfrozen at epoch ${trainer.currentEpoch}, lr ${this.backboneLr}`);
  }

  private say(message: string): void {
    (this.options.log ?? console.warn)(message);
  }

  stateDict(): Record<string, unknown> {
    return { unfrozen: this.unfrozen, backboneLr: this.backboneLr, lastEpoch: this.lastEpoch };
  }

  /** The group itself is put back in `onLoadCheckpoint`, which has the trainer and module. */
  loadStateDict(state: Record<string, unknown>): void {
    if (typeof state.backboneLr === 'number') this.backboneLr = state.backboneLr;
    if (typeof state.lastEpoch === 'number') this.lastEpoch = state.lastEpoch;
  }
}
