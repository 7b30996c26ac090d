// The harness's `bare` LeNet-5 step (batch 64: forward, cross-entropy, accuracy, Adam, host reads)
// with and without the two changes of issue #19's last round, in one process, alternating rounds:
//   before: the accuracy computed on the gradient tape (as `accuracy` did before `noGrad`) and the
//           per-parameter Adam kernel (ADAM_UPDATE_MULTI_KERNEL unregistered);
//   after:  @kiln/trainer's `accuracy` (under `noGrad`) and the multi-tensor Adam kernel.
// Prints the median CPU ms per step of each (AB_ROUNDS rounds of 40 steps, default 7), then the
// kernel calls, tape nodes, saved-tensor clones (`Identity`) and Adam calls of one step for each
// combination. Needs the oneDNN addon (the multi-tensor kernel exists only with it).
//   KILN_NUM_THREADS=1 node tools/bench/lenet-step-ab.mjs   (cap with ONEDNN_MAX_CPU_ISA=AVX2 DNNL_MAX_CPU_ISA=AVX2)
import { tf, manualSeed, ADAM_UPDATE_MULTI_KERNEL } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { crossEntropy } from '@kiln/layers';
import { Adam } from '@kiln/optim';
import { accuracy } from '@kiln/trainer';
import { kilnModel } from './models.mjs';
await wasmBackend().init();
manualSeed(0);
const model = kilnModel('lenet5');
const vars = model.trainableVariables();
const opt = new Adam(vars, { lr: 1e-3 });
const x = tf.randomUniform([64, 28, 28, 1], 0, 1, 'float32', 3);
const y = tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 10), 'int32');
const onTapeAccuracy = (l, t) => tf.tidy(() => tf.mean(tf.cast(tf.equal(tf.argMax(l, -1), tf.cast(t, 'int32')), 'float32')));
const multi = tf.getKernel(ADAM_UPDATE_MULTI_KERNEL, 'wasm');
if (!multi) throw new Error(`${ADAM_UPDATE_MULTI_KERNEL} is not registered: the oneDNN addon is not loaded`);
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
function run(after, steps) {
  if (after) { if (!tf.getKernel(ADAM_UPDATE_MULTI_KERNEL, 'wasm')) tf.registerKernel(multi); } else if (tf.getKernel(ADAM_UPDATE_MULTI_KERNEL, 'wasm')) tf.unregisterKernel(ADAM_UPDATE_MULTI_KERNEL, 'wasm');
  const acc = after ? accuracy : onTapeAccuracy;
  const t0 = cpu();
  for (let i = 0; i < steps; i++) {
    let a;
    const { value, grads } = tf.variableGrads(() => { const logits = model.forward(x); a = tf.keep(acc(logits, y)); return crossEntropy(logits, y); }, vars);
    opt.step(grads);
    value.dataSync(); a.dataSync();
    tf.dispose([value, a, grads]);
  }
  return (cpu() - t0) / steps;
}
run(false, 5); run(true, 5);
const res = { before: [], after: [] };
const n0 = tf.memory().numTensors;
for (let r = 0; r < (process.env.AB_ROUNDS ?? 7); r++) { res.before.push(run(false, 40)); res.after.push(run(true, 40)); }
const med = (a) => [...a].sort((p, q) => p - q)[a.length >> 1];
console.log(JSON.stringify({ isa: process.env.ONEDNN_MAX_CPU_ISA ?? 'native', before: med(res.before), after: med(res.after), rounds: res, growth: tf.memory().numTensors - n0 }));
for (const [accOn, multiOn] of [[false, false], [true, false], [false, true], [true, true]]) {
  if (multiOn) { if (!tf.getKernel(ADAM_UPDATE_MULTI_KERNEL, 'wasm')) tf.registerKernel(multi); } else if (tf.getKernel(ADAM_UPDATE_MULTI_KERNEL, 'wasm')) tf.unregisterKernel(ADAM_UPDATE_MULTI_KERNEL, 'wasm');
  const acc = accOn ? accuracy : onTapeAccuracy;
  let tape = 0;
  const p = await tf.profile(() => {
    let a;
    const { value, grads } = tf.variableGrads(() => { const logits = model.forward(x); a = tf.keep(acc(logits, y)); const l = crossEntropy(logits, y); tape = tf.engine().state.activeTape.length; return l; }, vars);
    opt.step(grads);
    tf.dispose([value, a, grads]);
  });
  const by = {};
  for (const k of p.kernels) by[k.name] = (by[k.name] ?? 0) + 1;
  console.log(JSON.stringify({ noGrad: accOn, multiAdam: multiOn, kernelCalls: p.kernels.length, tapeNodes: tape, identity: by.Identity ?? 0, adam: (by.KilnAdamUpdate ?? 0) + (by.KilnAdamUpdateMulti ?? 0) }));
}
