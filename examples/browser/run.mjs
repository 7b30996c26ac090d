#!/usr/bin/env node
// Bundles the page with esbuild (as any bundler would: the packages' browser builds, no Node
// built-ins), serves it with the WASM binaries, opens it in headless Chromium and waits for the
// page to report. CI runs it; needs `apt-get install chromium` (or KILN_CHROMIUM=/path).
//   node examples/browser/run.mjs
import { build } from 'esbuild';
import { copyFileSync, createReadStream, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const executablePath = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';
if (!existsSync(executablePath)) throw new Error(`${executablePath} not found: apt-get install chromium (or set KILN_CHROMIUM)`);

const out = mkdtempSync(path.join(tmpdir(), 'kiln-browser-example-'));
await build({ entryPoints: [path.join(here, 'main.js')], bundle: true, format: 'esm', platform: 'browser', outfile: path.join(out, 'main.js'), logLevel: 'warning' });
copyFileSync(path.join(here, 'index.html'), path.join(out, 'index.html'));
const wasmDir = path.dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
for (const f of readdirSync(wasmDir).filter((f) => f.endsWith('.wasm'))) copyFileSync(path.join(wasmDir, f), path.join(out, f));

const types = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };
const server = createServer((req, res) => {
  const file = path.join(out, path.basename(new URL(req.url ?? '/', 'http://x').pathname) || 'index.html');
  if (!existsSync(file)) return void res.writeHead(404).end();
  res.writeHead(200, { 'content-type': types[path.extname(file)] ?? 'application/octet-stream' });
  createReadStream(file).pipe(res);
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.error(`page: ${m.text()}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  await page.waitForFunction(() => /^(done|error):/.test(document.title), null, { timeout: 120_000 });
  const title = await page.title();
  console.error(await page.textContent('#log'));
  console.log(title);
  if (!title.startsWith('done:')) process.exitCode = 1;
} finally {
  await browser.close();
  server.close();
  rmSync(out, { recursive: true, force: true });
}
