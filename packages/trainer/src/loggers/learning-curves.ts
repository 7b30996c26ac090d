/** One series of a plot: points (x, y) and a colour. */
interface Series {
  name: string;
  points: [number, number][];
  colour: string;
  dashed: boolean;
}

const COLOURS = { train: '#1f77b4', val: '#d62728' };

/**
 * Learning curves as a self-contained SVG: one panel per quantity (loss, accuracy), train solid
 * and validation dashed, per epoch. `rows` are epoch-level metric rows as the loggers receive them.
 */
export function learningCurvesSvg(rows: Record<string, number>[]): string {
  const epochRows = rows.filter((r) => r.epoch !== undefined && Number.isFinite(r.epoch));
  const panels = (['loss', 'acc'] as const)
    .map((q) => ({
      title: q === 'loss' ? 'loss' : 'accuracy',
      series: (['train', 'val'] as const)
        .map<Series>((s) => ({
          name: `${s}_${q}`,
          colour: COLOURS[s],
          dashed: s === 'val',
          points: epochRows.filter((r) => Number.isFinite(r[`${s}_${q}`])).map((r) => [r.epoch + 1, r[`${s}_${q}`]] as [number, number]),
        }))
        .filter((s) => s.points.length > 0),
    }))
    .filter((p) => p.series.length > 0);
  const W = 420;
  const H = 280;
  const m = { l: 56, r: 16, t: 28, b: 40 };
  const parts: string[] = [];
  panels.forEach((p, i) => {
    const ox = i * W;
    const all = p.series.flatMap((s) => s.points);
    const [x0, x1] = range(all.map((q) => q[0]));
    const [y0, y1] = range(all.map((q) => q[1]));
    const sx = (x: number) => ox + m.l + ((x - x0) / (x1 - x0 || 1)) * (W - m.l - m.r);
    const sy = (y: number) => m.t + (1 - (y - y0) / (y1 - y0 || 1)) * (H - m.t - m.b);
    parts.push(`<text x="${ox + W / 2}" y="18" text-anchor="middle" font-size="14">${p.title}</text>`);
    parts.push(`<rect x="${ox + m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#999"/>`);
    for (let k = 0; k <= 4; k++) {
      const y = y0 + ((y1 - y0) * k) / 4;
      parts.push(`<text x="${ox + m.l - 4}" y="${fmt(sy(y) + 4)}" text-anchor="end" font-size="10">${y.toPrecision(3)}</text>`);
    }
    parts.push(`<text x="${ox + (W + m.l) / 2}" y="${H - 8}" text-anchor="middle" font-size="11">epoch</text>`);
    p.series.forEach((s, j) => {
      const d = s.points.map(([x, y], k) => `${k ? 'L' : 'M'}${fmt(sx(x))},${fmt(sy(y))}`).join(' ');
      parts.push(`<path d="${d}" fill="none" stroke="${s.colour}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}><title>${s.name}</title></path>`);
      for (const [x, y] of s.points) parts.push(`<circle cx="${fmt(sx(x))}" cy="${fmt(sy(y))}" r="2.5" fill="${s.colour}"/>`);
      parts.push(`<text x="${ox + W - m.r - 4}" y="${m.t + 14 + 14 * j}" text-anchor="end" font-size="11" fill="${s.colour}">${s.name}</text>`);
    });
  });
  const width = Math.max(1, panels.length) * W;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${H}" viewBox="0 0 ${width} ${H}" font-family="sans-serif">\n${parts.join('\n')}\n</svg>\n`;
}

function range(vs: number[]): [number, number] {
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  return lo === hi ? [lo - 0.5, hi + 0.5] : [lo, hi];
}

const fmt = (v: number) => v.toFixed(1);
