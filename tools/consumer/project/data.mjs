// Data-only consumer: reads an IDX image/label pair (the Fashion-MNIST format) and batches it.
//   node data.mjs with-backend      a backend package is installed: batches come out as tensors
//   node data.mjs without-backend   only @kiln/core and @kiln/data: the first batch must fail with
//                                   Kiln's error naming the backend package to install
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { BackendUnavailableError, BackendRegistry } from '@kiln/core';
import { DataLoader, readIdxImageDataset } from '@kiln/data';

const mode = process.argv[2];
assert.ok(mode === 'with-backend' || mode === 'without-backend', 'usage: node data.mjs with-backend|without-backend');

// IDX: magic (0, 0, dtype 0x08 = uint8, rank), big-endian sizes, then the values.
function idx(shape, values) {
  const head = Buffer.alloc(4 + 4 * shape.length);
  head.writeUInt8(0x08, 2);
  head.writeUInt8(shape.length, 3);
  shape.forEach((s, i) => head.writeUInt32BE(s, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(values)]);
}
const n = 20;
const dir = mkdtempSync(path.join(tmpdir(), 'kiln-data-'));
writeFileSync(path.join(dir, 'images'), idx([n, 28, 28], Array.from({ length: n * 784 }, (_, i) => (i * 7) % 256)));
writeFileSync(path.join(dir, 'labels'), idx([n], Array.from({ length: n }, (_, i) => i % 10)));
const ds = readIdxImageDataset(path.join(dir, 'images'), path.join(dir, 'labels'));
assert.equal(ds.length, n);
assert.deepEqual(ds.shape, [28, 28, 1]);

const loader = new DataLoader(ds, { batchSize: 8 });
if (mode === 'with-backend') {
  const { wasmBackend } = await import('@kiln/backend-cpu');
  await new BackendRegistry([wasmBackend()]).use('auto');
  const sizes = [];
  for await (const batch of loader) {
    sizes.push(batch.x.shape[0]);
    assert.deepEqual(batch.x.shape.slice(1), [28, 28, 1]);
    batch.x.dispose();
    batch.y.dispose();
  }
  assert.deepEqual(sizes, [8, 8, 4]);
  console.log(`data.mjs with-backend: ok (node ${process.version}); batches ${sizes.join(', ')}`);
} else {
  await assert.rejects(async () => {
    for await (const batch of loader) void batch;
  }, (e) => e instanceof BackendUnavailableError && e.message.includes('@kiln/backend-cpu'));
  console.log(`data.mjs without-backend: ok (node ${process.version}); the error names @kiln/backend-cpu`);
}
