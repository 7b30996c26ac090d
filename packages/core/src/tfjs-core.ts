// tfjs-core's declarations use DOM types (ImageData, HTMLImageElement, IDBFactory) and the global
// `Long` of @types/long without referencing either, so a user's type check fails without
// skipLibCheck unless their tsconfig happens to include both. These references travel into the
// published declarations (`preserve`) and bring them along.
/// <reference lib="dom" preserve="true" />
/// <reference types="long" preserve="true" />
// The one place Kiln loads TensorFlow.js's core. tfjs-core's published CJS bundle does not register
// gradients or chained ops, and its ESM build uses extensionless imports that plain Node ESM refuses.
// Kiln's build bundles this file from tfjs-core's ESM sources, side effects included, into
// dist/tfjs-core.{js,cjs}; every other entry (and every embedded backend) imports that bundle, so
// there is exactly one copy of the engine whether a user loads Kiln through `import`, `require`,
// vitest or a browser bundler.
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
import { installGradientRelease } from './gradient-release.js';
import { registerReluGradientFromOutput } from './relu-gradient.js';

export * from '@tensorflow/tfjs-core/dist/index.js';

// Kiln's gradient pass, which frees saved tensors and gradients as the backward pass goes
// (PyTorch's peak memory instead of tfjs's), and a ReLU gradient that keeps the output the next
// layer saves anyway instead of the input: see gradient-release.ts and relu-gradient.ts.
installGradientRelease();
registerReluGradientFromOutput();
