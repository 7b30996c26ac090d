/** One named series of (x, y) points. */
export interface Series {
  label: string;
  color: string;
  points: [number, number][];
}

/**
 * A minimal live line chart on a canvas: axes scaled to the data, one polyline per series, a legend.
 * `canvas.dataset.points` holds the number of points drawn, for tests and tools to read.
 */
export class LineChart {
  private series: Series[] = [];

  constructor(private readonly canvas: HTMLCanvasElement, private readonly yRange?: [number, number]) {}

  set(series: Series[]): void {
    this.series = series;
    this.draw();
  }

  private draw(): void {
    const ctx = this.canvas.getContext('2d');
    if (!ctx) return;
    const { width, height } = this.canvas;
    const pad = { l: 40, r: 10, t: 10, b: 22 };
    ctx.clearRect(0, 0, width, height);
    const all = this.series.flatMap((s) => s.points);
    this.canvas.dataset.points = String(all.length);
    if (all.length === 0) return;
    const xMax = Math.max(1, ...all.map((p) => p[0]));
    const [yMin, yMax] = this.yRange ?? [Math.min(0, ...all.map((p) => p[1])), Math.max(1e-6, ...all.map((p) => p[1]))];
    const X = (x: number) => pad.l + (x / xMax) * (width - pad.l - pad.r);
    const Y = (y: number) => height - pad.b - ((y - yMin) / (yMax - yMin || 1)) * (height - pad.t - pad.b);
    ctx.strokeStyle = '#999';
    ctx.fillStyle = '#555';
    ctx.font = '10px sans-serif';
    ctx.beginPath();
    ctx.moveTo(pad.l, pad.t);
    ctx.lineTo(pad.l, height - pad.b);
    ctx.lineTo(width - pad.r, height - pad.b);
    ctx.stroke();
    for (const v of [yMin, (yMin + yMax) / 2, yMax]) ctx.fillText(v.toFixed(2), 4, Y(v) + 3);
    ctx.fillText(`step ${xMax}`, width - pad.r - 50, height - 6);
    this.series.forEach((s, i) => {
      ctx.strokeStyle = s.color;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      s.points.forEach(([x, y], j) => (j === 0 ? ctx.moveTo(X(x), Y(y)) : ctx.lineTo(X(x), Y(y))));
      if (s.points.length === 1) ctx.arc(X(s.points[0][0]), Y(s.points[0][1]), 2, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.fillStyle = s.color;
      ctx.fillText(s.label, pad.l + 8 + i * 90, pad.t + 8);
    });
  }
}
