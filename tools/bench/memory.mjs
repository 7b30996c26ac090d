// Where the peak memory of a training step goes, with Kiln's releasing gradient pass and with
// tfjs's (#19, peak RSS):
//
//   node tools/bench/memory.mjs [resnet18|lenet5] [batch] [steps] [--out FILE]
//
// Runs the bare step profile.mjs runs (forward + backward in tf.variableGrads, Adam, loss read;
// WASM backend with oneDNN, KILN_NUM_THREADS as set) in two child processes, one per gradient
// pass: `tfjs` (KILN_TAPE_RELEASE=0; Kiln's ReLU gradient stays, see packages/core/src/
// relu-gradient.ts) and `kiln` (the default), and reads each one's memory from
// the WASM backend's own heap allocations (its malloc and free, wrapped before the model exists):
//
//   weights   bytes live once the model is built: parameters and batch-norm buffers
//   adam      what the first step leaves live besides: the optimizer's moment estimates
//   saved     what a step's forward pass adds to the live bytes by the time the backward pass
//             starts: the tensors kept for the backward pass (saved activations) and the loss
//   peak      the most bytes live at once during a step; peak − weights − adam − saved is what
//             the backward pass adds at its worst: gradients and kernel temporaries
//   heap      the WebAssembly memory's size, its high-water mark (a WebAssembly memory never
//             shrinks); heap − peak is allocator slack: fragmentation and what the heap grew by
//             in steps
//   rss       the process's peak resident set; rss − heap is Node, V8's heap, code, the data
//             and oneDNN's native buffers
//
// and which kernels' saved tensors the `saved` bytes are.
//
// MiB throughout. Writes JSON with --out.
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadNow, machineInfo, machineLine } from './machine.mjs';

const { values: flags, positionals } = parseArgs({
  allowPositionals: true,
  options: { out: { type: 'string' }, child: { type: 'boolean', default: false } },
});
const [name = 'resnet18', batchArg = '64', stepsArg = '2'] = positionals;
const MiB = 2 ** 20;

if (flags.child) await child();
else await compare();

async function child() {
  const { tf, manualSeed } = await import('@kiln/core');
  const { wasmBackend } = await import('@kiln/backend-cpu');
  const { crossEntropy } = await import('@kiln/layers');
  const { Adam } = await import('@kiln/optim');
  const { kilnModel } = await import('./models.mjs');

  const backend = wasmBackend();
  await backend.init();
  // The backend's tensor allocations, by address.
  const wasm = tf.backend().wasm;
  // Emscripten's exports are stubs that replace themselves with the real function on first call:
  // call each once so that the wrappers below stay in place.
  wasm._free(wasm._malloc(16));
  const sizes = new Map();
  let live = 0;
  let peak = 0;
  const malloc = wasm._malloc;
  const free = wasm._free;
  wasm._malloc = (n) => {
    const p = malloc(n);
    sizes.set(p >>> 0, n);
    live += n;
    peak = Math.max(peak, live);
    return p;
  };
  wasm._free = (p) => {
    live -= sizes.get(p >>> 0) ?? 0;
    sizes.delete(p >>> 0);
    free(p);
  };

  manualSeed(0);
  const B = Number(batchArg);
  const model = kilnModel(name);
  const weights = live;
  const vars = model.trainableVariables();
  const opt = new Adam(vars, { lr: 1e-3 });
  const x = tf.randomUniform([B, 28, 28, 1]);
  const y = tf.tensor1d(Array.from({ length: B }, (_, i) => i % 10), 'int32');
  const inputs = live - weights;
  // An identity on the loss whose gradient runs first in the backward pass: live bytes there are
  // what the forward pass left for the backward pass.
  let atBackward = 0;
  let savedBy = {};
  const mark = tf.customGrad((t) => ({
    value: tf.clone(t),
    gradFunc: (dy) => {
      atBackward = live;
      savedBy = savedBuffers();
      return dy;
    },
  }));
  /**
   * The heap buffers the tape's nodes hold for the backward pass, in MiB, by the kernels that
   * saved each one (a buffer several kernels saved, e.g. a ReLU's output that the next
   * convolution saved as its input, counts once, under all of them).
   */
  const savedBuffers = () => {
    const owners = new Map();
    for (const node of tf.engine().state.activeTape ?? []) {
      for (const t of node.saved ?? []) {
        if (t.isDisposed) continue;
        const o = owners.get(t.dataId) ?? { kernels: new Set(), bytes: t.size * 4 };
        o.kernels.add(node.kernelName);
        owners.set(t.dataId, o);
      }
    }
    const by = {};
    for (const { kernels, bytes } of owners.values()) {
      const key = [...kernels].sort().join('+');
      by[key] = (by[key] ?? 0) + bytes / MiB;
    }
    return Object.fromEntries(Object.entries(by).sort((a, b) => b[1] - a[1]));
  };
  let beforeStep = 0;
  const step = () => {
    beforeStep = live;
    peak = live;
    const { value, grads } = tf.variableGrads(() => mark(crossEntropy(model.forward(x), y)), vars);
    opt.step(grads);
    value.dataSync();
    tf.dispose([value, grads]);
  };
  step();
  const adam = live - weights - inputs;
  const steps = Number(stepsArg);
  let stepPeak = 0;
  let saved = 0;
  for (let i = 0; i < steps; i++) {
    step();
    stepPeak = Math.max(stepPeak, peak);
    saved = Math.max(saved, atBackward - beforeStep);
  }
  const result = {
    pass: tf.env().getBool('KILN_TAPE_RELEASE') ? 'kiln' : 'tfjs',
    model: name,
    batch: B,
    device: backend.describe().device,
    weights: weights / MiB,
    adam: adam / MiB,
    saved: saved / MiB,
    backward_adds: (stepPeak - beforeStep - saved) / MiB,
    peak: stepPeak / MiB,
    heap: wasm.HEAPU8.byteLength / MiB,
    rss: process.resourceUsage().maxRSS / 1024,
    live_after: live / MiB,
    saved_by: savedBy,
  };
  console.log('MEMORY ' + JSON.stringify(result));
}

async function compare() {
  const machine = await machineInfo({ python: null });
  const self = fileURLToPath(import.meta.url);
  const results = [];
  for (const release of ['0', '1']) {
    const run = spawnSync(process.execPath, [self, name, batchArg, stepsArg, '--child'], {
      env: { ...process.env, KILN_TAPE_RELEASE: release },
      encoding: 'utf8',
      maxBuffer: 1 << 26,
    });
    const line = run.stdout.split('\n').find((l) => l.startsWith('MEMORY '));
    if (run.status !== 0 || !line) throw new Error(`memory child (KILN_TAPE_RELEASE=${release}) failed: ${run.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    results.push(JSON.parse(line.slice(7)));
  }
  const cols = ['weights', 'adam', 'saved', 'backward_adds', 'peak', 'heap', 'rss'];
  console.log(`${name} training, batch ${batchArg}, ${results[0].device}; MiB`);
  console.log('| gradient pass | ' + cols.join(' | ') + ' |');
  console.log('|---|' + cols.map(() => '---:').join('|') + '|');
  for (const r of results) console.log(`| ${r.pass} | ` + cols.map((c) => r[c].toFixed(0)).join(' | ') + ' |');
  console.log('\nsaved for the backward pass, MiB, by the kernels that saved each buffer (tfjs pass):');
  for (const [k, mib] of Object.entries(results[0].saved_by)) console.log(`  ${k.padEnd(40)} ${mib.toFixed(1).padStart(7)}`);
  machine.loadavg_end = loadNow();
  console.log(machineLine(machine));
  if (flags.out) writeFileSync(flags.out, JSON.stringify({ machine, results }, null, 2));
}
