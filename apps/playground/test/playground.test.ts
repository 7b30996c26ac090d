/**
 * The built playground in Debian's Chromium (never a downloaded browser), driven by playwright-core:
 * one short training run on WebGPU (SwiftShader in CI) and one on WASM. Each must end with test
 * accuracy above chance (10 classes) and curves that grew during the run; screenshots go to
 * test-results/. The WASM run's exported weights are then loaded into a fresh model by Kiln.
 *
 * Needs `apt-get install chromium` (which also ships SwiftShader) and a built dist/ (the nx test
 * target builds first). KILN_CHROMIUM overrides the browser path.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveDirectory } from './static-server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.join(here, '..', 'dist');
const results = path.join(here, '..', 'test-results');
const CHROMIUM = process.env.KILN_CHROMIUM ?? '/usr/bin/chromium';
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHANCE = 0.1;

let server: Server;
let url: string;
let context: BrowserContext;
let profile: string;

beforeAll(async () => {
  if (!existsSync(path.join(dist, 'index.html'))) throw new Error(`no build in ${dist}: run npm run build -w apps/playground first`);
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} not found: apt-get install chromium (or set KILN_CHROMIUM)`);
  mkdirSync(results, { recursive: true });
  ({ url, server } = await serveDirectory(dist));
  profile = mkdtempSync(path.join(os.tmpdir(), 'kiln-playground-profile-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    viewport: { width: 1200, height: 1000 },
    args: [
      '--headless',
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      // WebGPU through Vulkan on SwiftShader where the machine has no GPU.
      '--enable-features=Vulkan',
      '--use-vulkan=swiftshader',
      '--use-webgpu-adapter=swiftshader',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    env: { ...process.env, VK_ICD_FILENAMES: process.env.VK_ICD_FILENAMES ?? SWIFTSHADER_ICD, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? os.tmpdir() },
  });
}, 60_000);

afterAll(async () => {
  await context?.close();
  server?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

/** Runs one short training on `backend` and returns what the page reported. */
async function trainOn(page: Page, backend: string, size: { batch: number; train: number; test: number }): Promise<{ acc: number; steps: number; lossPoints: number; accPoints: number; device: string }> {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector('#status[data-state="idle"]', { timeout: 60_000 });
  await page.selectOption('#model', 'lenet5');
  await page.selectOption('#backend', backend);
  await page.fill('#batch-size', String(size.batch));
  await page.fill('#lr', '0.003');
  await page.fill('#epochs', '1');
  await page.fill('#train-examples', String(size.train));
  await page.fill('#test-examples', String(size.test));
  await page.check('#aug-shift');
  await page.click('#train');
  await page.waitForSelector('#status[data-state="done"], #status[data-state="error"]', { timeout: 240_000 });
  const state: Record<string, string | undefined> = await page.$eval('#status', (el) => ({ ...(el as HTMLElement).dataset, text: el.textContent ?? '' }));
  if (state.state !== 'done') throw new Error(`${backend} run failed: ${state.text}; page errors: ${errors.join('; ')}`);
  await page.screenshot({ path: path.join(results, `playground-${backend}.png`), fullPage: true });
  const points = (id: string) => page.$eval(id, (el) => Number((el as HTMLCanvasElement).dataset.points ?? 0));
  return { acc: Number(state.testAcc), steps: Number(state.steps), lossPoints: await points('#loss-chart'), accPoints: await points('#acc-chart'), device: state.device ?? '' };
}

describe('playground in Chromium', () => {
  it('trains LeNet-5 on WebGPU', async () => {
    const page = await context.newPage();
    // SwiftShader in Chromium takes seconds per step: keep this run short.
    const r = await trainOn(page, 'webgpu', { batch: 32, train: 320, test: 200 });
    expect(r.device).toMatch(/^WebGPU: .* via navigator\.gpu$/);
    expect(r.steps).toBe(10);
    // Curves updated live: one train point per step plus the test point, on both charts.
    expect(r.lossPoints).toBe(r.steps + 1);
    expect(r.accPoints).toBe(r.steps + 1);
    expect(r.acc).toBeGreaterThan(CHANCE + 0.2);
    await page.close();
  }, 300_000);

  it('trains LeNet-5 on WASM, and Kiln loads the exported weights', async () => {
    const page = await context.newPage();
    const r = await trainOn(page, 'wasm', { batch: 64, train: 960, test: 1000 });
    expect(r.device).toMatch(/WebAssembly/);
    expect(r.steps).toBe(15);
    expect(r.lossPoints).toBe(r.steps + 1);
    expect(r.acc).toBeGreaterThan(CHANCE + 0.2);

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#export')]);
    expect(download.suggestedFilename()).toBe('kiln-lenet5-wasm.safetensors');
    const bytes = new Uint8Array(readFileSync((await download.path())!));
    await page.close();

    // Load it the way Kiln code does: decode, then strict loadStateDict into a fresh LeNet-5.
    const require = createRequire(import.meta.url);
    const core = require('@kiln/core') as typeof import('@kiln/core');
    const { cpuBackend } = require('@kiln/backend-cpu') as typeof import('@kiln/backend-cpu');
    const zoo = require('@kiln/zoo') as typeof import('@kiln/zoo');
    await cpuBackend().init();
    const file = core.decodeSafetensors(bytes, download.suggestedFilename());
    expect(file.metadata?.model).toBe('lenet5');
    expect(Number(file.metadata?.test_accuracy)).toBeCloseTo(r.acc, 3);
    const model = zoo.createModel('lenet5', { numClasses: 10, inChannels: 1 });
    const sd = Object.fromEntries(Object.entries(file.tensors).map(([k, h]) => [k, core.fromHost(h)]));
    expect(model.loadStateDict(sd)).toEqual([]);
    core.tf.dispose(Object.values(sd));
    model.dispose();
  }, 300_000);
});
