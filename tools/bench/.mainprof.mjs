import { wasmBackend } from '@kiln/backend-cpu';
import { imageFolder, DataLoader } from '@kiln/data';
await wasmBackend().init();
const f = await imageFolder(process.argv[2], { size: [28, 28], channels: 1, cacheBytes: 0 });
const loader = new DataLoader(f.train, { batchSize: 64, shuffle: true });
for (let r = 0; r < 4; r++) {
  const e0 = performance.eventLoopUtilization(); const t0 = performance.now(); let n = 0;
  for await (const b of loader) { n += 64; b.x.dispose?.(); b.y.dispose?.(); }
  const busy = performance.eventLoopUtilization(e0).active;
  console.log(`nocache epoch: ${(n / (performance.now() - t0) * 1000).toFixed(0)} img/s, main ${(busy / n * 1000).toFixed(1)} µs/img`);
}
f.close();
