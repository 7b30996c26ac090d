import type { Logger } from '@kiln/trainer';
import type { LineChart, Series } from './line-chart.js';

/**
 * A Kiln `Logger` that draws the run live: every step's training loss and accuracy (the accuracy
 * smoothed, as a single batch's is noisy) and each epoch's validation loss and accuracy, against
 * the optimizer step. A resumed run keeps drawing where the checkpoint left off.
 */
export class ChartLogger implements Logger {
  readonly name = 'chart';
  private readonly trainLoss: Series = { label: 'train loss', color: '#1f77b4', points: [] };
  private readonly valLoss: Series = { label: 'val loss', color: '#d62728', points: [] };
  private readonly trainAcc: Series = { label: 'train acc', color: '#1f77b4', points: [] };
  private readonly valAcc: Series = { label: 'val acc', color: '#d62728', points: [] };
  private smoothAcc: number | undefined;
  /** The step a resumed run continued from (undefined for a fresh run). */
  resumedAt: number | undefined;

  constructor(
    private readonly lossChart: LineChart,
    private readonly accChart: LineChart,
    /** Called after each step's point, with the metrics logged. */
    private readonly onStep: (metrics: Record<string, number>, step: number) => void = () => {},
  ) {
    this.draw();
  }

  logMetrics(metrics: Record<string, number>, step: number): void {
    if (metrics.epoch === undefined) {
      if (metrics.train_loss !== undefined) this.trainLoss.points.push([step, metrics.train_loss]);
      if (metrics.train_acc !== undefined) {
        this.smoothAcc = this.smoothAcc === undefined ? metrics.train_acc : 0.9 * this.smoothAcc + 0.1 * metrics.train_acc;
        this.trainAcc.points.push([step, this.smoothAcc]);
      }
      this.onStep(metrics, step);
    } else {
      if (metrics.val_loss !== undefined) this.valLoss.points.push([step, metrics.val_loss]);
      if (metrics.val_acc !== undefined) this.valAcc.points.push([step, metrics.val_acc]);
    }
    this.draw();
  }

  /** On resume, points past the checkpoint are dropped (the run logs them again). */
  onResume(step: number): void {
    this.resumedAt = step;
    for (const s of [this.trainLoss, this.valLoss, this.trainAcc, this.valAcc]) s.points = s.points.filter(([x]) => x <= step);
    this.draw();
  }

  private draw(): void {
    this.lossChart.set([this.trainLoss, this.valLoss]);
    this.accChart.set([this.trainAcc, this.valAcc]);
  }
}
