import { wasmBackend } from '@kiln/backend-cpu';
import { imageFolder, DataLoader } from '@kiln/data';
await wasmBackend().init();
const f = await imageFolder(process.argv[2], { size: [28, 28], channels: 1 });
const mem = await f.train.materialize();
await f.train.materialize(); // warms the cache
for (const [name, ds] of (process.argv[3] === 'folder' ? [['folder', f.train], ['folder', f.train], ['folder', f.train]] : [['folder', f.train], ['memory', mem], ['folder', f.train], ['memory', mem], ['folder', f.train], ['memory', mem]])) {
  const loader = new DataLoader(ds, { batchSize: 64, shuffle: true });
  const e0 = performance.eventLoopUtilization(); const t0 = performance.now(); let n = 0;
  for (let r = 0; r < 3; r++) for await (const b of loader) { n += 64; b.x.dispose?.(); b.y.dispose?.(); }
  const busy = performance.eventLoopUtilization(e0).active;
  console.log(`${name}: ${(n / (performance.now() - t0) * 1000).toFixed(0)} img/s, main ${(busy / n * 1000).toFixed(1)} µs/img`);
}
f.close();
