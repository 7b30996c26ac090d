/** Mean and (sample, n−1) standard deviation of each metric over runs; NaN std for a single run. */
export function meanStd(rows: Record<string, number>[]): {
  /** Each metric's mean. */
  mean: Record<string, number>;
  /** Each metric's sample standard deviation. */
  std: Record<string, number>;
} {
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const mean: Record<string, number> = {};
  const std: Record<string, number> = {};
  for (const k of keys) {
    const vs = rows.map((r) => r[k]).filter((v) => v !== undefined);
    const m = vs.reduce((a, b) => a + b, 0) / vs.length;
    mean[k] = m;
    std[k] = vs.length > 1 ? Math.sqrt(vs.reduce((a, v) => a + (v - m) ** 2, 0) / (vs.length - 1)) : NaN;
  }
  return { mean, std };
}

/** A plain-text table with aligned columns (Markdown-compatible pipes). */
export function formatTable(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map((c) => (typeof c === 'number' ? formatNumber(c) : c)))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => String(r[i] ?? '').length)));
  const line = (r: (string | number)[]) => `| ${r.map((c, i) => String(c ?? '').padEnd(widths[i])).join(' | ')} |`;
  return [line(cells[0]), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...cells.slice(1).map(line)].join('\n');
}

function formatNumber(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e-3 && Math.abs(v) < 1e4 ? v.toFixed(4) : v.toExponential(3);
}
