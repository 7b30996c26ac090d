// The bundle-size guard's decisions, on made-up numbers and text: it must fail past 10% growth and
// on any excluded identifier, and pass otherwise.
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { test } from 'node:test';
import { EXCLUDED, measure, verdict } from '../bundle-size.mjs';

test('growth up to 10% passes, beyond fails with the numbers and the fix', () => {
  assert.deepEqual(verdict(110_000, 100_000, 'lenet5'), []);
  const [problem, ...rest] = verdict(110_001, 100_000, 'lenet5');
  assert.equal(rest.length, 0);
  assert.match(problem, /110001 bytes gzipped, more than 10% over the recorded 100000 \(limit 110000\)/);
  assert.match(problem, /--record/);
});

test('an identifier of an unused zoo model fails, whatever the size', () => {
  for (const s of EXCLUDED) {
    const problems = verdict(1, 100_000, `var a = 1; throw new K(\`${s}\`);`);
    assert.equal(problems.length, 1);
    assert.match(problems[0], new RegExp(`'${s.replace('.', '\\.')}'`));
  }
});

test('measure gzips every js, css and html file and leaves .wasm out', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'kiln-bundle-size-test-'));
  try {
    mkdirSync(path.join(dir, 'assets'));
    const js = 'export const x = 1;\n'.repeat(100);
    writeFileSync(path.join(dir, 'assets', 'page-AbCdEf12.js'), js);
    writeFileSync(path.join(dir, 'index.html'), '<html></html>');
    writeFileSync(path.join(dir, 'tfjs-backend-wasm.wasm'), new Uint8Array(10_000));
    const { files, gzipBytes } = measure(dir);
    const jsGz = gzipSync(js, { level: 9 }).length;
    const htmlGz = gzipSync('<html></html>', { level: 9 }).length;
    assert.deepEqual(files, { 'assets/page.js': jsGz, 'index.html': htmlGz });
    assert.equal(gzipBytes, jsGz + htmlGz);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
