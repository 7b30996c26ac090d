// Gain from fusing bias + activation into convolutions and dense layers on the default backend:
// LeNet-5 written twice over the same weights, once as @kiln/layers computes it today
// (conv2d → add bias → relu; matMul → add → relu) and once with tf.fused.conv2d / tf.fused.matMul
// (the FusedConv2D / _FusedMatMul kernels). Rounds alternate A and B; medians are printed.
//   node tools/bench/fused.mjs [--rounds 5] [--steps 30]
import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { parseArgs } from 'node:util';
import { loadNow, machineInfo, machineLine } from './machine.mjs';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, steps: { type: 'string', default: '30' } } });
const rounds = Number(values.rounds);
const steps = Number(values.steps);
const backend = wasmBackend();
await backend.init();
const machine = await machineInfo({ python: null });

const v = (shape, scale) => tf.variable(tf.randomNormal(shape, 0, scale));
const W = {
  c1: v([5, 5, 1, 6], 0.2), b1: v([6], 0.1), c2: v([5, 5, 6, 16], 0.1), b2: v([16], 0.1),
  d1: v([400, 120], 0.07), e1: v([120], 0.1), d2: v([120, 84], 0.1), e2: v([84], 0.1), d3: v([84, 10], 0.1), e3: v([10], 0.1),
};
const vars = Object.values(W);

function unfused(x) {
  let h = tf.relu(tf.add(tf.conv2d(x, W.c1, 1, 'same'), W.b1));
  h = tf.maxPool(h, 2, 2, 'valid');
  h = tf.relu(tf.add(tf.conv2d(h, W.c2, 1, 'valid'), W.b2));
  h = tf.reshape(tf.maxPool(h, 2, 2, 'valid'), [-1, 400]);
  h = tf.relu(tf.add(tf.matMul(h, W.d1), W.e1));
  h = tf.relu(tf.add(tf.matMul(h, W.d2), W.e2));
  return tf.add(tf.matMul(h, W.d3), W.e3);
}

function fused(x) {
  let h = tf.fused.conv2d({ x, filter: W.c1, strides: 1, pad: 'same', bias: W.b1, activation: 'relu' });
  h = tf.maxPool(h, 2, 2, 'valid');
  h = tf.fused.conv2d({ x: h, filter: W.c2, strides: 1, pad: 'valid', bias: W.b2, activation: 'relu' });
  h = tf.reshape(tf.maxPool(h, 2, 2, 'valid'), [-1, 400]);
  h = tf.fused.matMul({ a: h, b: W.d1, bias: W.e1, activation: 'relu' });
  h = tf.fused.matMul({ a: h, b: W.d2, bias: W.e2, activation: 'relu' });
  return tf.fused.matMul({ a: h, b: W.d3, bias: W.e3 });
}

const x = tf.randomUniform([64, 28, 28, 1]);
const y = tf.oneHot(tf.tensor1d(Array.from({ length: 64 }, (_, i) => i % 10), 'int32'), 10);

// Same outputs and gradients first, so the timing compares equal work.
const check = tf.tidy(() => {
  const a = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, unfused(x)), vars);
  const b = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, fused(x)), vars);
  let worst = Math.abs(a.value.dataSync()[0] - b.value.dataSync()[0]);
  for (const k of Object.keys(a.grads)) worst = Math.max(worst, tf.max(tf.abs(tf.sub(a.grads[k], b.grads[k]))).dataSync()[0]);
  return worst;
});

function trainSps(forward) {
  const step = () => tf.tidy(() => {
    const { value, grads } = tf.variableGrads(() => tf.losses.softmaxCrossEntropy(y, forward(x)), vars);
    value.dataSync();
    tf.dispose(grads);
  });
  for (let i = 0; i < 3; i++) step();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step();
  return (steps * 64) / ((performance.now() - t0) / 1000);
}
function inferSps(forward) {
  const run = () => tf.tidy(() => forward(x).dataSync());
  for (let i = 0; i < 3; i++) run();
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) run();
  return (steps * 64) / ((performance.now() - t0) / 1000);
}
const med = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const r = { unfusedTrain: [], fusedTrain: [], unfusedInfer: [], fusedInfer: [] };
for (let i = 0; i < rounds; i++) {
  r.unfusedTrain.push(trainSps(unfused));
  r.fusedTrain.push(trainSps(fused));
  r.unfusedInfer.push(inferSps(unfused));
  r.fusedInfer.push(inferSps(fused));
}
const out = {
  device: backend.describe().device,
  max_abs_difference: check,
  train_samples_per_sec: { unfused: med(r.unfusedTrain), fused: med(r.fusedTrain) },
  infer_samples_per_sec: { unfused: med(r.unfusedInfer), fused: med(r.fusedInfer) },
};
out.train_gain = out.train_samples_per_sec.fused / out.train_samples_per_sec.unfused - 1;
out.infer_gain = out.infer_samples_per_sec.fused / out.infer_samples_per_sec.unfused - 1;
machine.loadavg_end = loadNow();
console.log(JSON.stringify({ ...out, machine }, null, 2));
console.log(machineLine(machine));
