/**
 * @kiln/trainer — the training loop, hooks, callbacks, loggers and metrics.
 */
export * from './callback.js';
export * from './callback-list.js';
export * from './training-module.js';
export * from './classification-module.js';
export * from './trainer.js';
export * from './clip.js';
export * from './logger.js';
export * from './tokens.js';
export * from './create-trainer.js';
export * from './loggers/csv-logger.js';
export * from './loggers/console-logger.js';
export * from './callbacks/progress-bar.js';
