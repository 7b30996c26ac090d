// What a bundler-based app (Vite, webpack) writes: moduleResolution "bundler", the browser-safe
// packages only. Type-checked, not run.
import { BackendRegistry, tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { webgpuBackend } from '@kiln/backend-webgpu';
import { LeNet5 } from '@kiln/zoo';
import { Adam } from '@kiln/optim';
import { Conv2d, Module } from '@kiln/layers';

export async function start(): Promise<string> {
  const { name } = await new BackendRegistry([webgpuBackend(), wasmBackend({ wasmPaths: '/wasm/' })]).use('auto');
  const model = new LeNet5();
  const extra: Module = new Conv2d({ inChannels: 1, outChannels: 4, kernelSize: 3 });
  const opt = new Adam(model.trainableVariables(), { lr: 1e-3 });
  const y = tf.tidy(() => model.forward(tf.zeros([1, 28, 28, 1])));
  y.dispose();
  void extra;
  void opt;
  return name;
}
