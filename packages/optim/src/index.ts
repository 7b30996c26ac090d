/**
 * @kiln/optim — optimizers (parameter groups, state dicts) and learning-rate schedules.
 */
export * from './optimizer.js';
export * from './sgd.js';
export * from './adam.js';
