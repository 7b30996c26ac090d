import type { Module } from '@kiln/layers';
import { Adam, type Optimizer } from '@kiln/optim';
import type { OptimizerConfig } from './training-module.js';

/** How a ready-made module (regression, multi-label) builds its optimizer, and what it logs as hyper-parameters. */
export interface ModuleOptimizerOptions {
  /** Builds the optimizer over the model's trainable parameters. Default: Adam(lr). */
  optimizer?: (model: Module) => Optimizer;
  /** Or a full optimizer configuration (optimizer + scheduler). */
  configureOptimizers?: (model: Module) => OptimizerConfig;
  /** Learning rate of the default Adam (default 1e-3). */
  lr?: number;
  /** More hyper-parameters for the loggers (batch size, schedule, …), merged into `hparams()`. */
  hparams?: Record<string, unknown>;
}

/** The optimizer configuration `options` describe: theirs, their optimizer, or Adam(lr). */
export function optimizerConfigFrom(model: Module, options: ModuleOptimizerOptions): OptimizerConfig {
  if (options.configureOptimizers) return options.configureOptimizers(model);
  const optimizer = options.optimizer?.(model) ?? new Adam(model.trainableVariables(), { lr: options.lr ?? 1e-3 });
  return { optimizer };
}
