/**
 * @kiln/trainer — the training loop, hooks, callbacks, loggers, checkpoints and metrics.
 */
export * from './callback.js';
export * from './callback-list.js';
export * from './training-module.js';
export * from './classification-module.js';
export * from './optimizer-options.js';
export * from './regression-module.js';
export * from './multi-label-module.js';
export * from './trainer.js';
export * from './logger.js';
export * from './tokens.js';
export * from './create-trainer.js';
export * from './checkpoint.js';
export * from './loggers/csv-logger.js';
export * from './loggers/console-logger.js';
export * from './loggers/jsonl-logger.js';
export * from './loggers/tensorboard-logger.js';
export { crc32c, maskedCrc32c } from './loggers/crc32c.js';
export { learningCurvesSvg } from './loggers/learning-curves.js';
export * from './callbacks/monitor.js';
export * from './callbacks/progress-bar.js';
export * from './callbacks/early-stopping.js';
export * from './callbacks/model-checkpoint.js';
export * from './callbacks/learning-rate-scheduler.js';
export * from './callbacks/reduce-lr-on-plateau.js';
export * from './callbacks/learning-rate-monitor.js';
export * from './callbacks/terminate-on-nan.js';
export * from './callbacks/tensor-leak-check.js';
export * from './callbacks/timer.js';
export * from './search/cross-validate.js';
export * from './search/random-search.js';
export { formatTable, meanStd } from './search/summary-table.js';
export * from './callbacks/gradient-accumulation-scheduler.js';
export * from './callbacks/backbone-finetuning.js';
export * from './callbacks/model-summary.js';
export * from './callbacks/stochastic-weight-averaging.js';
export * from './metrics/index.js';
