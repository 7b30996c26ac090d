/**
 * @kiln/zoo — classic architectures built from @kiln/layers, with fine-tuning helpers (head
 * replacement, freezing, parameter groups, features) and weight import/export (torchvision
 * safetensors, tfjs-layers, Kiln's own safetensors).
 */
export * from './zoo-model.js';
export * from './lenet.js';
export * from './lenet-classic.js';
export * from './alexnet.js';
export * from './vgg.js';
export * from './resnet.js';
export * from './googlenet.js';
export * from './inception-v3.js';
export * from './auxiliary-heads.js';
export * from './blocks/basic-conv.js';
export * from './registry.js';
export * from './parameter-groups.js';
export * from './weight-transfer.js';
export * from './torchvision-weights.js';
export * from './pretrained.js';
export { IMAGENET_MEAN, IMAGENET_STD } from './blocks/transform-input.js';
export * from './tfjs-layers-weights.js';
export * from './summary.js';
