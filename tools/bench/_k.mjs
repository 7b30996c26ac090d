import { tf } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
await wasmBackend().init();
const dy = tf.randomNormal([64, 28, 28, 6]); const y = tf.relu(tf.randomNormal([64, 28, 28, 6]));
const cpu = () => { const u = process.cpuUsage(); return (u.user + u.system) / 1000; };
const time = (name, f) => { for (let i = 0; i < 20; i++) tf.dispose(f()); const t0 = performance.now(), c0 = cpu(); for (let i = 0; i < 100; i++) tf.dispose(f()); console.log(name, ((performance.now() - t0) / 100).toFixed(3), 'ms wall', ((cpu() - c0) / 100).toFixed(3), 'cpu'); };
time('KilnReluGrad', () => tf.engine().runKernel('KilnReluGrad', { dy, y }));
time('Relu', () => tf.relu(dy));
time('mul', () => tf.mul(dy, y));
