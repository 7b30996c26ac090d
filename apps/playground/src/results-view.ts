import type { Subset } from './subset.js';

/** Fills the confusion-matrix table: rows are true classes, columns predictions; shade by share of the row. */
export function renderConfusion(table: HTMLTableElement, confusion: number[][], classes: string[]): void {
  const short = classes.map((c) => c.split('/')[0].slice(0, 5));
  const head = `<tr><th></th>${short.map((c) => `<th title="${c}">${c}</th>`).join('')}</tr>`;
  const rows = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    const cells = row.map((v, j) => {
      const share = v / total;
      const hue = i === j ? 140 : 0;
      return `<td style="background:hsla(${hue},60%,45%,${share.toFixed(3)})">${v}</td>`;
    });
    return `<tr><th title="${classes[i]}">${short[i]}</th>${cells.join('')}</tr>`;
  });
  table.innerHTML = head + rows.join('');
}

/** Shows the first `count` test images with their predicted and true labels. */
export function renderSamples(container: HTMLElement, subset: Subset, predictions: Int32Array, count = 12): void {
  const { height: h, width: w } = subset;
  container.replaceChildren();
  for (let i = 0; i < Math.min(count, predictions.length); i++) {
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d')!;
    const img = ctx.createImageData(w, h);
    for (let p = 0; p < w * h; p++) {
      const v = subset.test.images[i * w * h + p];
      img.data.set([v, v, v, 255], p * 4);
    }
    ctx.putImageData(img, 0, 0);
    const truth = subset.test.labels[i];
    const ok = predictions[i] === truth;
    const cell = document.createElement('div');
    cell.className = ok ? 'sample' : 'sample wrong';
    const label = document.createElement('span');
    label.textContent = ok ? subset.classes[predictions[i]] : `${subset.classes[predictions[i]]} (is ${subset.classes[truth]})`;
    cell.append(canvas, label);
    container.append(cell);
  }
}
