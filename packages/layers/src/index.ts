/**
 * @kiln/layers — the vocabulary models are built from: `Module`, layers, activations,
 * initializers, regularizers and losses. Layout is NHWC; weights are HWIO / [in, out].
 */
export * from './module.js';
export * from './parameter.js';
export * from './regularizers.js';
export * as init from './initializers.js';
export type { Initializer } from './initializers.js';
export * from './conv.js';
export * from './linear.js';
export * from './pooling.js';
export * from './containers.js';
export * from './activations.js';
export * from './dropout.js';
export * from './local-response-norm.js';
export * from './batchnorm.js';
export * from './layer-norm.js';
export * from './group-norm.js';
export * from './instance-norm.js';
export * from './subsampling.js';
export * from './losses.js';
export * from './perceptron.js';
