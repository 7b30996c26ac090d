#!/usr/bin/env node
// Reports a soak run from its soak.json: prints a Markdown table of memory at a few epochs (the
// first, where the slope fit starts, the epoch of the largest RSS, quarters of the run, the last)
// and, given a second path, draws memory over epochs as an SVG: RSS with its value at the end of
// epoch 1 and the +5% line, V8's heap (heapTotal) and its young generation and, for a --debug run,
// glibc's heaps ([heap] and the other threads' arenas) and the WASM heap, so a step in RSS can be
// matched with the part that made it.
//
//   node tools/soak/report.mjs soak-results/soak.json docs/img/soak-memory.svg
import { readFileSync, writeFileSync } from 'node:fs';
import { RSS_BOUND } from './verdict.mjs';

const [input, output] = process.argv.slice(2);
if (!input) {
  console.error('usage: node tools/soak/report.mjs SOAK_JSON [OUT_SVG]');
  process.exit(2);
}
const { verdict, samples } = JSON.parse(readFileSync(input, 'utf8'));

// The table: the rows a reader needs to see a step (epoch 1 vs the baseline) and flatness after it.
const last = samples.at(-1).epoch;
const wanted = [...new Set([0, 1, 2, 3, 4, verdict.slopeFromEpoch, verdict.rssMaxEpoch, Math.round(last / 4), Math.round(last / 2), Math.round((3 * last) / 4), last])];
const mib = (kib) => (kib === undefined ? '–' : (kib / 1024).toFixed(1));
const num = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : '–');
const pct = (s) => (s.epoch >= 1 ? `${s.rssMiB >= verdict.rssEpoch1MiB ? '+' : ''}${num((s.rssMiB / verdict.rssEpoch1MiB - 1) * 100)}%` : '–');
console.log('| after epoch | minutes | load (1 min) | live tensors | RSS | RSS vs epoch 1 | V8 heap total / used | V8 young gen. | V8 old space | glibc `[heap]` | glibc arenas (count) | threads |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const s of samples.filter((x) => wanted.includes(x.epoch))) {
  const notes = [s.epoch === verdict.slopeFromEpoch && 'slope fitted after', s.epoch === verdict.rssMaxEpoch && 'largest RSS'].filter(Boolean);
  console.log(
    `| ${s.epoch}${notes.length ? ` (${notes.join(', ')})` : ''} | ${num(s.minutes)} | ${num(s.load1)} | ${s.numTensors} | ${num(s.rssMiB)} | ${pct(s)} | ${num(s.heapTotalMiB)} / ${num(s.heapMiB)} | ${num(s.v8_new_space_MiB, 0)} | ${num(s.v8_old_space_MiB)} | ${mib(s.heapKiB)} | ${mib(s.arenasKiB)} (${s.arenaCount ?? '–'}) | ${s.threads ?? '–'} |`,
  );
}
console.log(`\nverdict: ${JSON.stringify(verdict)}`);
if (!output) process.exit(0);

const series = [
  { name: 'RSS', colour: '#1f77b4', value: (s) => s.rssMiB },
  { name: 'V8 heap (heapTotal)', colour: '#ff7f0e', value: (s) => s.heapTotalMiB },
  { name: 'V8 young generation', colour: '#2ca02c', value: (s) => s.v8_new_space_MiB },
  { name: 'V8 old space', colour: '#d62728', value: (s) => s.v8_old_space_MiB },
  { name: 'external (ArrayBuffers)', colour: '#17becf', value: (s) => s.externalMiB },
  { name: 'glibc [heap]', colour: '#9467bd', value: (s) => (s.heapKiB === undefined ? undefined : s.heapKiB / 1024) },
  { name: 'glibc thread arenas', colour: '#8c564b', value: (s) => (s.arenasKiB === undefined ? undefined : s.arenasKiB / 1024) },
  { name: 'WASM heap', colour: '#7f7f7f', value: (s) => s.wasmMiB },
]
  // From epoch 1: the end of epoch 0 still holds start-up's peak (the dataset being decoded).
  .map((d) => ({ ...d, points: samples.filter((s) => s.epoch >= 1 && Number.isFinite(d.value(s))).map((s) => [s.epoch, d.value(s)]) }))
  .filter((d) => d.points.length > 0);

const W = 760;
const H = 380;
const m = { l: 56, r: 190, t: 30, b: 40 };
const xs = samples.filter((s) => s.epoch >= 1).map((s) => s.epoch);
const x0 = Math.min(...xs);
const x1 = Math.max(...xs, x0 + 1);
// Round the axis up to 50 MiB so the ticks read as round numbers.
const yMax = Math.ceil((Math.max(...series.flatMap((d) => d.points.map((p) => p[1])), verdict.rssEpoch1MiB * (1 + RSS_BOUND)) * 1.1) / 50) * 50; // headroom above the +5% line for its label
const sx = (x) => m.l + ((x - x0) / (x1 - x0)) * (W - m.l - m.r);
const sy = (y) => m.t + (1 - y / yMax) * (H - m.t - m.b);
const f = (v) => v.toFixed(1);

const parts = [
  `<text x="${(W - m.r + m.l) / 2}" y="18" text-anchor="middle" font-size="14">Soak: memory at each epoch end (MiB)</text>`,
  `<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`,
  `<text x="${(W - m.r + m.l) / 2}" y="${H - 8}" text-anchor="middle" font-size="11">epoch</text>`,
];
for (let k = 0; k <= 5; k++) {
  const y = (yMax * k) / 5;
  parts.push(`<text x="${m.l - 4}" y="${f(sy(y) + 4)}" text-anchor="end" font-size="10">${y.toFixed(0)}</text>`);
  const x = x0 + ((x1 - x0) * k) / 5;
  parts.push(`<text x="${f(sx(x))}" y="${H - m.b + 14}" text-anchor="middle" font-size="10">${x.toFixed(0)}</text>`);
}
// The verdict: RSS at the end of epoch 1 and the 5% bound across the whole run; the stretch left
// out of the slope fit shaded (the bound covers it all the same).
const xw = sx(Math.min(verdict.slopeFromEpoch, x1));
parts.push(`<rect x="${m.l}" y="${m.t}" width="${f(xw - m.l)}" height="${H - m.t - m.b}" fill="#000" fill-opacity="0.06"><title>left out of the slope fit</title></rect>`);
parts.push(`<text x="${f(m.l + 4)}" y="${m.t + 12}" font-size="10" fill="#555">no slope fit</text>`);
for (const [y, label] of [
  [verdict.rssEpoch1MiB, 'epoch 1'],
  [verdict.rssEpoch1MiB * (1 + RSS_BOUND), `+${RSS_BOUND * 100}%`],
]) {
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${f(sy(y))}" y2="${f(sy(y))}" stroke="#1f77b4" stroke-dasharray="4,3" stroke-width="1"/>`);
  // The bound's label above its line, epoch 1's below its own: the two lines are 5% apart.
  const below = label === 'epoch 1';
  parts.push(`<text x="${f(xw + 4)}" y="${f(sy(y) + (below ? 11 : -3))}" font-size="10" fill="#1f77b4">${label} ${y.toFixed(0)}</text>`);
}
series.forEach((d, j) => {
  const path = d.points.map(([x, y], k) => `${k ? 'L' : 'M'}${f(sx(x))},${f(sy(y))}`).join(' ');
  parts.push(`<path d="${path}" fill="none" stroke="${d.colour}" stroke-width="1.5"><title>${d.name}</title></path>`);
  parts.push(`<text x="${W - m.r + 4}" y="${m.t + 12 + 16 * j}" font-size="11" fill="${d.colour}">${d.name}</text>`);
});
writeFileSync(output, `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">\n${parts.join('\n')}\n</svg>\n`);
