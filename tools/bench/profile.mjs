// Per-kernel time of a training step: node tools/bench/profile.mjs [lenet5|resnet18] [batch] [steps]
// (averaged over `steps` steps, default 10; KILN_NUM_THREADS and KILN_BACKEND=cpu apply).
// Wraps every kernel registered for the active backend with a timer (kernels run synchronously
// on the WASM and cpu backends, so wall time per call is the kernel's time) and prints the top.
import { tf, manualSeed } from '@kiln/core';
import { cpuBackend, wasmBackend } from '@kiln/backend-cpu';
import { crossEntropy } from '@kiln/layers';
import { Adam } from '@kiln/optim';
import { kilnModel } from './models.mjs';
import { loadNow, machineInfo, machineLine } from './machine.mjs';

const [name = 'lenet5', batchArg = '64', stepsArg = '10'] = process.argv.slice(2);
const steps = Number(stepsArg);
const backend = process.env.KILN_BACKEND === 'cpu' ? cpuBackend() : wasmBackend();
await backend.init();
const machine = await machineInfo({ python: null });
manualSeed(0);
const B = Number(batchArg);
const model = kilnModel(name);
const vars = model.trainableVariables();
const opt = new Adam(vars, { lr: 1e-3 });
const x = tf.randomUniform([B, 28, 28, 1]);
const y = tf.tensor1d(Array.from({ length: B }, (_, i) => i % 10), 'int32');
const step = () => {
  const { value, grads } = tf.variableGrads(() => crossEntropy(model.forward(x), y), vars);
  opt.step(grads);
  value.dataSync();
  tf.dispose([value, grads]);
};
step();

const times = new Map();
const bk = tf.getBackend();
for (const k of tf.getKernelsForBackend(bk)) {
  const f = k.kernelFunc;
  tf.unregisterKernel(k.kernelName, bk);
  tf.registerKernel({
    ...k,
    kernelFunc: (args) => {
      const t0 = performance.now();
      const out = f(args);
      const e = times.get(k.kernelName) ?? { ms: 0, calls: 0 };
      e.ms += performance.now() - t0;
      e.calls++;
      times.set(k.kernelName, e);
      return out;
    },
  });
}
const t0 = performance.now();
for (let i = 0; i < steps; i++) step();
const total = (performance.now() - t0) / steps;
const inKernels = [...times.values()].reduce((a, e) => a + e.ms, 0) / steps;
console.log(`${name} batch ${B} on ${backend.describe().device}: ${total.toFixed(1)} ms per step, ${inKernels.toFixed(1)} ms in kernels`);
for (const [k, e] of [...times].sort((a, b) => b[1].ms - a[1].ms).slice(0, 15)) {
  console.log(`  ${k.padEnd(28)} ${(e.ms / steps).toFixed(2).padStart(9)} ms  ${String(e.calls / steps).padStart(5)} calls`);
}
machine.loadavg_end = loadNow();
console.log(machineLine(machine));
