/**
 * @kiln/optim — optimizers (parameter groups, state dicts), gradient tools and learning-rate schedules.
 */
export * from './optimizer.js';
export * from './sgd.js';
export * from './adam.js';
export * from './adamw.js';
export * from './rmsprop.js';
export * from './adagrad.js';
export * from './radam.js';
export * from './lookahead.js';
export * from './clip.js';
export * from './gradient-accumulator.js';
export * from './schedules.js';
export * from './lr-scheduler.js';
export * from './reduce-lr-on-plateau.js';
export * from './lr-finder.js';
export * from './training-snapshot.js';
