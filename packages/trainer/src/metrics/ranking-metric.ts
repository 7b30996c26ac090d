import { tf, ConfigError, ShapeMismatchError } from '@kiln/core';
import { DeviceSum, checkBatch, checkSameConfig, type Metric } from './metric.js';

/** Options of {@link AUROC} and {@link AveragePrecision}. */
export interface RankingMetricOptions {
  /**
   * Number of classes K for one-vs-rest scores [N, K] with targets as labels [N] or one-hot
   * [N, K]. Leave unset for a binary task: scores [N] (or [N, 1]) for the positive class and
   * targets 0/1 [N].
   */
  numClasses?: number;
  /**
   * How the one-vs-rest values are averaged (default 'macro'): 'macro' is the plain mean and
   * 'weighted' weighs each class by its number of positives, both over the classes where the
   * value is defined (AUROC needs positives and negatives, AP needs positives); 'micro' (AP only)
   * pools every (example, class) pair.
   */
  average?: 'macro' | 'weighted' | 'micro';
  /**
   * Examples kept for the exact computation (default 1 000 000); one more throws. Scores are kept
   * on the device, K + K numbers per example.
   */
  maxExamples?: number;
  /**
   * Instead of keeping scores, count them in a histogram: each score (which must lie in [0, 1]) is
   * rounded to the nearest of `bins` evenly spaced points 0, 1/(bins-1), …, 1, and the result is
   * exact for those rounded scores. Memory no longer grows with the data set.
   */
  bins?: number;
}

/** Saved state of a {@link RankingMetric}: the kept scores (`kind: 'scores'`) or, with `bins`, the histograms (`kind: 'bins'`). */
export type RankingMetricState =
  | {
      /** Scores kept for the exact computation. */
      kind: 'scores';
      /** Score columns C: 1 for a binary task, K otherwise. */
      classes: number;
      /** Every kept score, row-major [N, C]. */
      scores: number[];
      /** 1 where the example is a positive of that column, else 0, row-major [N, C]. */
      positives: number[];
    }
  | {
      /** Scores counted in histograms. */
      kind: 'bins';
      /** Score columns C: 1 for a binary task, K otherwise. */
      classes: number;
      /** Histogram points per column, evenly spaced over [0, 1]. */
      bins: number;
      /** Positives per column and rounded score, row-major [C, bins]. */
      positives: number[];
      /** Negatives per column and rounded score, row-major [C, bins]. */
      negatives: number[];
      /** Scores seen outside [0, 1]; `compute` throws while it is not 0. */
      outOfRange: number;
    };

/**
 * For one class: per distinct score, from the highest down, the positives and negatives scoring
 * exactly that. Tied scores form one group, one point on the ROC or precision-recall curve, as in
 * sklearn's `_binary_clf_curve`.
 */
export interface ScoreGroups {
  /** Positives per group, highest score first. */
  positives: number[];
  /** Negatives per group, in the same order as `positives`. */
  negatives: number[];
}

/**
 * Base of AUROC and average precision: both rank examples by score, so they keep the same state
 * (the scores, or a histogram of them) and differ only in the area they compute from the groups.
 */
export abstract class RankingMetric implements Metric<RankingMetricState> {
  /** Number of classes K for one-vs-rest scores [N, K]; undefined for a binary task. */
  readonly numClasses: number | undefined;
  /** How the one-vs-rest values are averaged (default 'macro'); see {@link RankingMetricOptions.average}. */
  readonly average: 'macro' | 'weighted' | 'micro';
  /** Most examples kept for the exact computation (default 1 000 000); not used with `bins`. */
  readonly maxExamples: number;
  /** Histogram points over [0, 1] when scores are counted instead of kept; undefined keeps the scores. */
  readonly bins: number | undefined;
  /** Score columns: 1 for binary, K otherwise. */
  private readonly columns: number;
  private kept: { scores: tf.Tensor2D; positives: tf.Tensor2D }[] = [];
  private keptExamples = 0;
  /** Histogram mode: counts [columns, bins] of positives and negatives per rounded score. */
  private readonly posHist?: DeviceSum;
  private readonly negHist?: DeviceSum;
  /** Histogram mode: scores seen outside [0, 1], counted on the device and reported by compute. */
  private readonly outOfRange?: DeviceSum;

  protected constructor(private readonly metricName: string, options: RankingMetricOptions) {
    this.numClasses = options.numClasses;
    if (this.numClasses !== undefined && (!Number.isInteger(this.numClasses) || this.numClasses < 2)) throw new ConfigError(`${metricName}.numClasses`, 'an integer ≥ 2, or unset for a binary task', this.numClasses);
    this.columns = this.numClasses ?? 1;
    this.average = options.average ?? 'macro';
    if (!['macro', 'weighted', 'micro'].includes(this.average)) throw new ConfigError(`${metricName}.average`, "'macro', 'weighted' or 'micro'", this.average);
    this.maxExamples = options.maxExamples ?? 1_000_000;
    this.bins = options.bins;
    if (this.bins !== undefined) {
      if (!Number.isInteger(this.bins) || this.bins < 2) throw new ConfigError(`${metricName}.bins`, 'an integer ≥ 2', this.bins);
      this.posHist = new DeviceSum([this.columns, this.bins]);
      this.negHist = new DeviceSum([this.columns, this.bins]);
      this.outOfRange = new DeviceSum([], 'int32');
    }
    if (this.average === 'micro' && this.numClasses !== undefined && !this.supportsMicro()) throw new ConfigError(`${metricName}.average`, "'macro' or 'weighted'", 'micro');
  }

  /** The area for one class from its score groups (highest score first); NaN where undefined. */
  protected abstract area(groups: ScoreGroups): number;

  private config(): unknown {
    return { numClasses: this.numClasses, average: this.average, bins: this.bins };
  }

  update(preds: tf.Tensor, targets: tf.Tensor): void {
    const where = `${this.metricName}.update`;
    checkBatch(preds, targets, where);
    const n = preds.shape[0]!;
    const c = this.columns;
    const { scores, positives } = tf.tidy(() => {
      let s: tf.Tensor;
      let p: tf.Tensor;
      if (this.numClasses === undefined) {
        if (!(preds.rank === 1 || (preds.rank === 2 && preds.shape[1] === 1))) throw new ShapeMismatchError(where, 'scores [N] or [N, 1] for a binary task (set numClasses for K classes)', preds.shape);
        if (targets.size !== n) throw new ShapeMismatchError(where, 'targets 0/1 [N]', targets.shape);
        s = preds.reshape([n, 1]);
        p = tf.cast(tf.greater(targets.reshape([n, 1]), 0), 'float32');
      } else {
        if (preds.rank !== 2 || preds.shape[1] !== c) throw new ShapeMismatchError(where, `scores [N, ${c}]`, preds.shape);
        s = preds;
        p = targets.rank === 1 ? tf.oneHot(tf.cast(targets, 'int32'), c) : tf.cast(tf.equal(targets, tf.max(targets, 1, true)), 'float32');
        if (p.shape[1] !== c) throw new ShapeMismatchError(where, `targets [N] or one-hot [N, ${c}]`, targets.shape);
      }
      return { scores: tf.cast(s, 'float32') as tf.Tensor2D, positives: tf.cast(p, 'float32') as tf.Tensor2D };
    });
    if (this.bins === undefined) {
      if (this.keptExamples + n > this.maxExamples) {
        tf.dispose([scores, positives]);
        throw new ConfigError(`${this.metricName}.maxExamples`, `room for ${this.keptExamples + n} examples`, this.maxExamples, 'raise maxExamples, or set bins to count scores in a histogram instead of keeping them');
      }
      this.kept.push({ scores, positives });
      this.keptExamples += n;
      return;
    }
    const bins = this.bins;
    const [pos, neg, outside] = tf.tidy(() => {
      const outside = tf.sum(tf.cast(tf.logicalOr(tf.less(scores, 0), tf.greater(scores, 1)), 'int32'));
      const idx = tf.cast(tf.round(tf.mul(tf.clipByValue(scores, 0, 1), bins - 1)), 'int32');
      const hot = tf.oneHot(idx, bins); // [N, C, bins]
      const p3 = tf.expandDims(positives, 2);
      return [tf.sum(tf.mul(hot, p3), 0), tf.sum(tf.mul(hot, tf.sub(1, p3)), 0), outside];
    });
    this.posHist!.add(pos);
    this.negHist!.add(neg);
    this.outOfRange!.add(outside);
    tf.dispose([scores, positives, pos, neg, outside]);
  }

  /** Per class: the groups of tied scores, highest first (one read of the device). */
  private groups(): { perColumn: ScoreGroups[]; pooled: ScoreGroups } {
    const c = this.columns;
    if (this.bins !== undefined) {
      const outside = this.outOfRange!.read()[0];
      if (outside > 0) {
        throw new ConfigError(`${this.metricName}.bins`, 'scores in [0, 1] (probabilities) for a histogram', `${outside} scores outside [0, 1]`, 'pass probabilities (softmax or sigmoid of the logits), or leave bins unset to keep the scores');
      }
      const pos = this.posHist!.read();
      const neg = this.negHist!.read();
      const perColumn = Array.from({ length: c }, (_, j) => binGroups(pos.slice(j * this.bins!, (j + 1) * this.bins!), neg.slice(j * this.bins!, (j + 1) * this.bins!)));
      const pooled = (a: number[]): number[] => {
        const out = new Array<number>(this.bins!).fill(0);
        a.forEach((v, i) => (out[i % this.bins!] += v));
        return out;
      };
      return { perColumn, pooled: binGroups(pooled(pos), pooled(neg)) };
    }
    if (this.kept.length === 0) return { perColumn: Array.from({ length: c }, () => ({ positives: [], negatives: [] })), pooled: { positives: [], negatives: [] } };
    const [scores, positives] = tf.tidy(() => [tf.concat(this.kept.map((k) => k.scores)), tf.concat(this.kept.map((k) => k.positives))]);
    const s = scores.dataSync();
    const p = positives.dataSync();
    tf.dispose([scores, positives]);
    const n = s.length / c;
    const perColumn = Array.from({ length: c }, (_, j) => {
      const idx = Array.from({ length: n }, (_, i) => i * c + j);
      return sortedGroups(idx, s, p);
    });
    return { perColumn, pooled: sortedGroups(Array.from({ length: s.length }, (_, i) => i), s, p) };
  }

  /** Per class (one value for a binary task); NaN where the class lacks positives or negatives. */
  perClass(): number[] {
    return this.groups().perColumn.map((g) => this.area(g));
  }

  /** The binary value, or the one-vs-rest average chosen by `average`. */
  compute(): number {
    const { perColumn, pooled } = this.groups();
    if (this.numClasses === undefined || this.average === 'micro') {
      return this.area(this.numClasses === undefined ? perColumn[0] : pooled);
    }
    const values = perColumn.map((g) => this.area(g));
    const weights = perColumn.map((g) => (this.average === 'weighted' ? g.positives.reduce((a, b) => a + b, 0) : 1));
    let num = 0;
    let den = 0;
    values.forEach((v, j) => {
      if (Number.isNaN(v)) return;
      num += v * weights[j];
      den += weights[j];
    });
    return den === 0 ? NaN : num / den;
  }

  /** Whether `average: 'micro'` means something for this metric (checked at construction). */
  protected supportsMicro(): boolean {
    return true;
  }

  reset(): void {
    tf.dispose(this.kept.flatMap((k) => [k.scores, k.positives]));
    this.kept = [];
    this.keptExamples = 0;
    this.posHist?.zero();
    this.negHist?.zero();
    this.outOfRange?.zero();
  }

  merge(other: this): void {
    checkSameConfig(this.metricName, this.config(), other.config());
    if (this.bins !== undefined) {
      this.posHist!.add(other.posHist!.tensor);
      this.negHist!.add(other.negHist!.tensor);
      this.outOfRange!.add(other.outOfRange!.tensor);
      return;
    }
    if (this.keptExamples + other.keptExamples > this.maxExamples) throw new ConfigError(`${this.metricName}.maxExamples`, `room for ${this.keptExamples + other.keptExamples} examples`, this.maxExamples, 'raise maxExamples or use bins');
    for (const k of other.kept) this.kept.push({ scores: tf.keep(tf.clone(k.scores)), positives: tf.keep(tf.clone(k.positives)) });
    this.keptExamples += other.keptExamples;
  }

  stateDict(): RankingMetricState {
    if (this.bins !== undefined) return { kind: 'bins', classes: this.columns, bins: this.bins, positives: this.posHist!.read(), negatives: this.negHist!.read(), outOfRange: this.outOfRange!.read()[0] };
    if (this.kept.length === 0) return { kind: 'scores', classes: this.columns, scores: [], positives: [] };
    const [s, p] = tf.tidy(() => [tf.concat(this.kept.map((k) => k.scores)), tf.concat(this.kept.map((k) => k.positives))]);
    const out: RankingMetricState = { kind: 'scores', classes: this.columns, scores: Array.from(s.dataSync()), positives: Array.from(p.dataSync()) };
    tf.dispose([s, p]);
    return out;
  }

  loadStateDict(state: RankingMetricState): void {
    const where = `${this.metricName}.loadStateDict`;
    const expectedKind = this.bins === undefined ? 'scores' : 'bins';
    if (state.kind !== expectedKind || state.classes !== this.columns) throw new ConfigError(where, `a '${expectedKind}' state with ${this.columns} score columns`, `a '${state.kind}' state with ${state.classes}`);
    this.reset();
    if (state.kind === 'bins') {
      this.posHist!.load(state.positives, `${where}.positives`);
      this.negHist!.load(state.negatives, `${where}.negatives`);
      this.outOfRange!.load([state.outOfRange], `${where}.outOfRange`);
      return;
    }
    if (state.scores.length !== state.positives.length || state.scores.length % this.columns !== 0) throw new ConfigError(where, `scores and positives of equal length, a multiple of ${this.columns}`, `${state.scores.length} and ${state.positives.length}`);
    const n = state.scores.length / this.columns;
    if (n === 0) return;
    this.kept.push({ scores: tf.keep(tf.tensor2d(state.scores, [n, this.columns])), positives: tf.keep(tf.tensor2d(state.positives, [n, this.columns])) });
    this.keptExamples = n;
  }

  dispose(): void {
    this.reset();
    this.posHist?.dispose();
    this.negHist?.dispose();
    this.outOfRange?.dispose();
  }
}

/** Sorts the entries `idx` of `scores` from the highest down and groups tied scores. */
function sortedGroups(idx: number[], scores: ArrayLike<number>, positives: ArrayLike<number>): ScoreGroups {
  idx.sort((a, b) => scores[b] - scores[a]);
  const out: ScoreGroups = { positives: [], negatives: [] };
  let last = NaN;
  for (const i of idx) {
    if (scores[i] !== last) {
      out.positives.push(0);
      out.negatives.push(0);
      last = scores[i];
    }
    if (positives[i] > 0) out.positives[out.positives.length - 1]++;
    else out.negatives[out.negatives.length - 1]++;
  }
  return out;
}

/** Histogram bins from the highest down, skipping empty ones. */
function binGroups(pos: number[], neg: number[]): ScoreGroups {
  const out: ScoreGroups = { positives: [], negatives: [] };
  for (let b = pos.length - 1; b >= 0; b--) {
    if (pos[b] + neg[b] === 0) continue;
    out.positives.push(pos[b]);
    out.negatives.push(neg[b]);
  }
  return out;
}
