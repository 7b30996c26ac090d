// A small learnable image set for the consumer scripts: 28×28×1 images whose class is the row of a
// bright horizontal bar, plus seeded noise. CommonJS, so ESM and CJS scripts share it.
'use strict';

function synthetic(n, numClasses, seed) {
  let s = seed >>> 0 || 1;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const x = new Float32Array(n * 28 * 28);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = i % numClasses;
    y[i] = c;
    const row = 3 + c * 2;
    for (let p = 0; p < 28 * 28; p++) x[i * 784 + p] = 0.2 * rand();
    for (let col = 2; col < 26; col++) x[i * 784 + row * 28 + col] = 1;
  }
  return { x, y, shape: [28, 28, 1] };
}

module.exports = { synthetic };
