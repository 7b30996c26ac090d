#!/usr/bin/env node
// The size of the playground's lean page (apps/playground/lenet5.html: LeNet-5 on WebGPU and WASM)
// as a user downloads it: a production build with vite (`--mode lenet5`), each emitted file gzipped
// at level 9. The .wasm binaries are not counted: they are tfjs's own files, copied unchanged.
//
// Checks, each failing the run:
//   - the total exceeds the recorded size (tools/scripts/bundle-size.json) by more than 10%;
//   - an identifier only the other zoo models carry is in the bundle (tree-shaking let it in).
//
//   node tools/scripts/bundle-size.mjs            measure and check
//   node tools/scripts/bundle-size.mjs --record   measure and write the new recorded size
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const app = path.join(root, 'apps', 'playground');
const recordFile = path.join(root, 'tools', 'scripts', 'bundle-size.json');

/** Growth over the recorded size that fails CI. */
export const TOLERANCE = 0.1;

/**
 * Strings that exist only in zoo models the page does not use (error messages and names of
 * ResNet, VGG, GoogLeNet/Inception, AlexNet, and the pretrained-weights table). Class names are
 * minified away; these strings are not.
 */
export const EXCLUDED = ['ResNet.depth', 'InceptionV3', 'GoogLeNet', 'AlexNet', 'vgg16', 'resnet18', 'IMAGENET1K_V1'];

/** Per-file gzip sizes (level 9) of every file under `dir` except .wasm binaries, and their total. */
export function measure(dir) {
  const files = {};
  for (const name of readdirSync(dir, { recursive: true })) {
    const file = path.join(dir, String(name));
    if (file.endsWith('.wasm') || !/\.(js|css|html)$/.test(file)) continue;
    // Without the content hash, so the recorded names stay put from build to build.
    files[String(name).replace(/-[A-Za-z0-9_-]{8}\.(js|css)$/, '.$1')] = gzipSync(readFileSync(file), { level: 9 }).length;
  }
  return { files, gzipBytes: Object.values(files).reduce((a, b) => a + b, 0) };
}

/** What is wrong with a measured bundle (empty when nothing): growth past the budget, excluded code. */
export function verdict(gzipBytes, recorded, bundleText, tolerance = TOLERANCE) {
  const problems = [];
  const limit = Math.floor(recorded * (1 + tolerance));
  if (gzipBytes > limit) problems.push(`the LeNet-5 page is ${gzipBytes} bytes gzipped, more than ${Math.round(tolerance * 100)}% over the recorded ${recorded} (limit ${limit}); if the growth is wanted, run node tools/scripts/bundle-size.mjs --record and commit tools/scripts/bundle-size.json`);
  for (const s of EXCLUDED) if (bundleText.includes(s)) problems.push(`the bundle contains '${s}', which only an unused zoo model has: tree-shaking did not drop it`);
  return problems;
}

async function main() {
  const { build } = await import('vite');
  const out = mkdtempSync(path.join(os.tmpdir(), 'kiln-bundle-size-'));
  try {
    await build({ root: app, configFile: path.join(app, 'vite.config.ts'), mode: 'lenet5', logLevel: 'warn', build: { outDir: out, emptyOutDir: true } });
    const { files, gzipBytes } = measure(out);
    const text = readdirSync(out, { recursive: true }).filter((f) => String(f).endsWith('.js')).map((f) => readFileSync(path.join(out, String(f)), 'utf8')).join('\n');
    for (const [f, n] of Object.entries(files)) console.log(`${String(n).padStart(9)}  ${f}`);
    console.log(`${String(gzipBytes).padStart(9)}  total (gzip -9), LeNet-5 page on WebGPU + WASM`);
    if (process.argv.includes('--record')) {
      writeFileSync(recordFile, JSON.stringify({ page: 'apps/playground/lenet5.html', gzipBytes, files, tolerance: TOLERANCE }, null, 2) + '\n');
      console.log(`recorded in ${path.relative(root, recordFile)}`);
    }
    const recorded = JSON.parse(readFileSync(recordFile, 'utf8')).gzipBytes;
    const problems = verdict(gzipBytes, recorded, text);
    for (const p of problems) console.error(`bundle-size: ${p}`);
    if (problems.length > 0) process.exitCode = 1;
    else console.log(`bundle-size: ok (recorded ${recorded}, limit ${Math.floor(recorded * (1 + TOLERANCE))})`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
