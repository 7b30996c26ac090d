import { ConfigError, KilnError } from '@kiln/core';

/**
 * A learning-rate schedule: a pure function of the scheduler's step count `t` (0 before the first
 * `step()`), the group's base learning rate and the group's index. `LrScheduler` applies it to an
 * optimizer. Each factory below mirrors the PyTorch scheduler it names, and is checked against it.
 */
export type Schedule = (t: number, baseLr: number, group: number) => number;

/** A number for every group, or one per group. */
export type PerGroup = number | number[];

function perGroup(v: PerGroup, group: number, arg: string): number {
  if (typeof v === 'number') return v;
  if (group >= v.length) throw new ConfigError(arg, `a number or a list with one number per parameter group (at least ${group + 1})`, v);
  return v[group];
}

function check(ok: boolean, arg: string, expected: string, found: unknown): void {
  if (!ok) throw new ConfigError(arg, expected, found);
}

const isPosInt = (n: unknown): n is number => Number.isInteger(n) && (n as number) >= 1;
const isNonNeg = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
const isPerGroup = (v: unknown): v is PerGroup => isNonNeg(v) || (Array.isArray(v) && v.length > 0 && v.every(isNonNeg));

/** Options of `constantLr`. */
export interface ConstantLrOptions {
  /** Multiplier applied while t < totalIters. Default 1 (a constant rate). */
  factor?: number;
  /** Steps at `factor` before the base rate is used. Default Infinity. */
  totalIters?: number;
}

/** λ = λ₀·factor for t < totalIters, then λ₀ (PyTorch's `ConstantLR`; defaults give a constant λ₀). */
export function constantLr(options: ConstantLrOptions = {}): Schedule {
  const { factor = 1, totalIters = Infinity } = options;
  check(factor >= 0 && factor <= 1, 'constantLr.factor', 'a number in [0, 1]', factor);
  check(totalIters >= 0, 'constantLr.totalIters', 'a number >= 0', totalIters);
  return (t, base) => (t < totalIters ? base * factor : base);
}

/** Options of `stepLr`. */
export interface StepLrOptions {
  /** Steps between decays. */
  stepSize: number;
  /** Multiplier applied at each decay. Default 0.1. */
  gamma?: number;
}

/** λ = λ₀·γ^⌊t/stepSize⌋ (PyTorch's `StepLR`). */
export function stepLr(options: StepLrOptions): Schedule {
  const { stepSize, gamma = 0.1 } = options ?? ({} as StepLrOptions);
  check(isPosInt(stepSize), 'stepLr.stepSize', 'an integer >= 1', stepSize);
  check(isNonNeg(gamma), 'stepLr.gamma', 'a number >= 0', gamma);
  return (t, base) => base * Math.pow(gamma, Math.floor(t / stepSize));
}

/** Options of `multiStepLr`. */
export interface MultiStepLrOptions {
  /** Steps at which the rate is multiplied by gamma (a repeated milestone applies gamma twice). */
  milestones: number[];
  /** Multiplier applied at each milestone. Default 0.1. */
  gamma?: number;
}

/** λ = λ₀·γ^(number of milestones ≤ t) (PyTorch's `MultiStepLR`). */
export function multiStepLr(options: MultiStepLrOptions): Schedule {
  const { milestones, gamma = 0.1 } = options ?? ({} as MultiStepLrOptions);
  check(Array.isArray(milestones) && milestones.every((m) => Number.isInteger(m) && m >= 0), 'multiStepLr.milestones', 'a list of integers >= 0', milestones);
  check(isNonNeg(gamma), 'multiStepLr.gamma', 'a number >= 0', gamma);
  const sorted = [...milestones].sort((a, b) => a - b);
  return (t, base) => base * Math.pow(gamma, sorted.filter((m) => m <= t).length);
}

/** Options of `exponentialLr`. */
export interface ExponentialLrOptions {
  /** Multiplier per step, e.g. 0.95. */
  gamma: number;
}

/** λ = λ₀·γᵗ (PyTorch's `ExponentialLR`). */
export function exponentialLr(options: ExponentialLrOptions): Schedule {
  const { gamma } = options ?? ({} as ExponentialLrOptions);
  check(isNonNeg(gamma), 'exponentialLr.gamma', 'a number >= 0', gamma);
  return (t, base) => base * Math.pow(gamma, t);
}

/** Options of `inverseSqrtLr`. */
export interface InverseSqrtLrOptions {
  /** Scale k of λ₀·k/√t; the rate stays at λ₀ for the first k² steps (k = √warm-up steps). Default 1. */
  k?: number;
}

/** λ = λ₀·min(1, k/√t), λ₀ at t = 0 (the inverse-square-root decay of Vaswani et al., 2017). */
export function inverseSqrtLr(options: InverseSqrtLrOptions = {}): Schedule {
  const { k = 1 } = options;
  check(typeof k === 'number' && k > 0 && Number.isFinite(k), 'inverseSqrtLr.k', 'a finite number > 0', k);
  return (t, base) => (t === 0 ? base : base * Math.min(1, k / Math.sqrt(t)));
}

/** Options of `polynomialLr`. */
export interface PolynomialLrOptions {
  /** Steps over which the rate decays to 0. Default 5. */
  totalIters?: number;
  /** Exponent of the decay. Default 1 (linear). */
  power?: number;
}

/** λ = λ₀·(1 − min(t, T)/T)^power (PyTorch's `PolynomialLR`). */
export function polynomialLr(options: PolynomialLrOptions = {}): Schedule {
  const { totalIters = 5, power = 1 } = options;
  check(isPosInt(totalIters), 'polynomialLr.totalIters', 'an integer >= 1', totalIters);
  check(isNonNeg(power), 'polynomialLr.power', 'a number >= 0', power);
  return (t, base) => base * Math.pow(1 - Math.min(t, totalIters) / totalIters, power);
}

/** Options of `cosineAnnealingLr`. */
export interface CosineAnnealingLrOptions {
  /** Steps from λ₀ down to etaMin (half a cosine period). */
  tMax: number;
  /** Lowest rate. Default 0. */
  etaMin?: number;
}

/** λ = η_min + (λ₀ − η_min)·(1 + cos(πt/T_max))/2 (PyTorch's `CosineAnnealingLR`, SGDR without restarts). */
export function cosineAnnealingLr(options: CosineAnnealingLrOptions): Schedule {
  const { tMax, etaMin = 0 } = options ?? ({} as CosineAnnealingLrOptions);
  check(isPosInt(tMax), 'cosineAnnealingLr.tMax', 'an integer >= 1', tMax);
  check(isNonNeg(etaMin), 'cosineAnnealingLr.etaMin', 'a number >= 0', etaMin);
  return (t, base) => etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * t) / tMax))) / 2;
}

/** Options of `cosineAnnealingWarmRestarts`. */
export interface CosineAnnealingWarmRestartsOptions {
  /** Steps in the first cycle. */
  t0: number;
  /** Each cycle is this many times longer than the one before. Default 1. */
  tMult?: number;
  /** Lowest rate. Default 0. */
  etaMin?: number;
}

/**
 * SGDR (Loshchilov & Hutter, 2017; PyTorch's `CosineAnnealingWarmRestarts`): cosine annealing
 * from λ₀ to η_min over T_i steps, restarting at λ₀ with T_{i+1} = T_mult·T_i.
 */
export function cosineAnnealingWarmRestarts(options: CosineAnnealingWarmRestartsOptions): Schedule {
  const { t0, tMult = 1, etaMin = 0 } = options ?? ({} as CosineAnnealingWarmRestartsOptions);
  check(isPosInt(t0), 'cosineAnnealingWarmRestarts.t0', 'an integer >= 1', t0);
  check(isPosInt(tMult), 'cosineAnnealingWarmRestarts.tMult', 'an integer >= 1', tMult);
  check(isNonNeg(etaMin), 'cosineAnnealingWarmRestarts.etaMin', 'a number >= 0', etaMin);
  return (t, base) => {
    let tCur = tMult === 1 ? t % t0 : t;
    let ti = t0;
    while (tCur >= ti) {
      tCur -= ti;
      ti *= tMult;
    }
    return etaMin + ((base - etaMin) * (1 + Math.cos((Math.PI * tCur) / ti))) / 2;
  };
}

/** Options of `linearLr`. */
export interface LinearLrOptions {
  /** Multiplier at t = 0. Default 1/3. */
  startFactor?: number;
  /** Multiplier from t = totalIters on. Default 1. */
  endFactor?: number;
  /** Steps of the linear ramp. Default 5. */
  totalIters?: number;
}

/**
 * λ = λ₀·(s + (e − s)·min(t, T)/T) (PyTorch's `LinearLR`): a linear warm-up from λ₀·s to λ₀·e.
 * Combine it with another schedule through `withWarmup`, `sequentialLr` or `chainedLr`.
 */
export function linearLr(options: LinearLrOptions = {}): Schedule {
  const { startFactor = 1 / 3, endFactor = 1, totalIters = 5 } = options;
  check(startFactor >= 0 && startFactor <= 1, 'linearLr.startFactor', 'a number in [0, 1]', startFactor);
  check(endFactor >= 0 && endFactor <= 1, 'linearLr.endFactor', 'a number in [0, 1]', endFactor);
  check(isPosInt(totalIters), 'linearLr.totalIters', 'an integer >= 1', totalIters);
  return (t, base) => base * (startFactor + ((endFactor - startFactor) * Math.min(t, totalIters)) / totalIters);
}

/**
 * Runs `schedules[i]` between milestones i−1 and i, each restarted from its own t = 0 (PyTorch's
 * `SequentialLR`). `sequentialLr([linearLr({...}), cosineAnnealingLr({...})], [warmupSteps])`.
 */
export function sequentialLr(schedules: Schedule[], milestones: number[]): Schedule {
  check(Array.isArray(schedules) && schedules.length >= 1 && schedules.every((s) => typeof s === 'function'), 'sequentialLr.schedules', 'a non-empty list of schedules', schedules);
  check(
    Array.isArray(milestones) && milestones.length === schedules.length - 1 && milestones.every((m, i) => Number.isInteger(m) && m >= 1 && (i === 0 || m > milestones[i - 1])),
    'sequentialLr.milestones',
    `${schedules.length - 1} increasing integers >= 1 (one fewer than the schedules)`,
    milestones,
  );
  return (t, base, group) => {
    let i = 0;
    while (i < milestones.length && t >= milestones[i]) i++;
    return schedules[i](t - (i > 0 ? milestones[i - 1] : 0), base, group);
  };
}

/**
 * Multiplies the factors of several schedules (PyTorch's `ChainedScheduler` for multiplicative
 * schedules): λ = λ₀·Πᵢ(sᵢ(t)/λ₀). `chainedLr(linearLr({...}), exponentialLr({ gamma: 0.95 }))`.
 */
export function chainedLr(...schedules: Schedule[]): Schedule {
  check(schedules.length >= 1 && schedules.every((s) => typeof s === 'function'), 'chainedLr.schedules', 'one or more schedules', schedules);
  return (t, base, group) => (base === 0 ? 0 : schedules.reduce((lr, s) => (lr * s(t, base, group)) / base, base));
}

/** Options of `withWarmup`. */
export interface WarmupOptions {
  /** Steps of linear warm-up; `schedule` starts from its own t = 0 after them. */
  steps: number;
  /** Fraction of the base rate the warm-up starts from. Default 0.01. */
  startFactor?: number;
}

/** A linear warm-up from λ₀·startFactor to λ₀ over `steps`, then `schedule`. */
export function withWarmup(schedule: Schedule, options: WarmupOptions): Schedule {
  const { steps, startFactor = 0.01 } = options ?? ({} as WarmupOptions);
  check(isPosInt(steps), 'withWarmup.steps', 'an integer >= 1', steps);
  return sequentialLr([linearLr({ startFactor, endFactor: 1, totalIters: steps }), schedule], [steps]);
}

/** Options of `oneCycleLr`. */
export interface OneCycleLrOptions {
  /** Total number of steps in the cycle. */
  totalSteps: number;
  /** Peak rate, for all groups or one per group. Default: each group's base rate. */
  maxLr?: PerGroup;
  /** Fraction of the cycle spent increasing the rate. Default 0.3. */
  pctStart?: number;
  /** Shape of each phase. Default 'cos'. */
  annealStrategy?: 'cos' | 'linear';
  /** Starting rate = maxLr / divFactor. Default 25. */
  divFactor?: number;
  /** Final rate = starting rate / finalDivFactor. Default 1e4. */
  finalDivFactor?: number;
  /** Go back down to the starting rate before annealing to the final one (fast.ai's variant). Default false. */
  threePhase?: boolean;
}

/**
 * The 1cycle policy (Smith & Topin, 2018; PyTorch's `OneCycleLR`, learning rate only): up from
 * maxLr/divFactor to maxLr over pctStart of the steps, then down to a rate far below the start.
 */
export function oneCycleLr(options: OneCycleLrOptions): Schedule {
  const { totalSteps, maxLr, pctStart = 0.3, annealStrategy = 'cos', divFactor = 25, finalDivFactor = 1e4, threePhase = false } = options ?? ({} as OneCycleLrOptions);
  check(isPosInt(totalSteps), 'oneCycleLr.totalSteps', 'an integer >= 1', totalSteps);
  check(maxLr === undefined || isPerGroup(maxLr), 'oneCycleLr.maxLr', 'a number >= 0 or one per parameter group', maxLr);
  check(pctStart >= 0 && pctStart <= 1, 'oneCycleLr.pctStart', 'a number in [0, 1]', pctStart);
  check(annealStrategy === 'cos' || annealStrategy === 'linear', 'oneCycleLr.annealStrategy', "'cos' or 'linear'", annealStrategy);
  check(typeof divFactor === 'number' && divFactor > 0, 'oneCycleLr.divFactor', 'a number > 0', divFactor);
  check(typeof finalDivFactor === 'number' && finalDivFactor > 0, 'oneCycleLr.finalDivFactor', 'a number > 0', finalDivFactor);
  const anneal = annealStrategy === 'cos' ? (a: number, b: number, pct: number) => b + ((a - b) / 2) * (Math.cos(Math.PI * pct) + 1) : (a: number, b: number, pct: number) => (b - a) * pct + a;
  return (t, base, group) => {
    if (t > totalSteps) {
      throw new KilnError('E_SCHEDULE_ENDED', `oneCycleLr was stepped ${t} times but totalSteps is ${totalSteps}`, { hint: 'set totalSteps to epochs × batches per epoch' });
    }
    const peak = maxLr === undefined ? base : perGroup(maxLr, group, 'oneCycleLr.maxLr');
    const initial = peak / divFactor;
    const min = initial / finalDivFactor;
    // Phase ends are step indices, as PyTorch computes them (float, not rounded).
    const phases: [number, number, number][] = threePhase
      ? [
          [pctStart * totalSteps - 1, initial, peak],
          [2 * pctStart * totalSteps - 2, peak, initial],
          [totalSteps - 1, initial, min],
        ]
      : [
          [pctStart * totalSteps - 1, initial, peak],
          [totalSteps - 1, peak, min],
        ];
    let start = 0;
    for (const [i, [end, from, to]] of phases.entries()) {
      // Past the last step (t = totalSteps, after the final optimizer step) the rate holds at the
      // final one instead of extrapolating below it, which PyTorch does (even to negative rates).
      if (t <= end || i === phases.length - 1) return anneal(from, to, Math.min(1, (t - start) / (end - start)));
      start = end;
    }
    return min;
  };
}

/** Options of `cyclicLr`. */
export interface CyclicLrOptions {
  /** Upper rate of the cycle, for all groups or one per group. */
  maxLr: PerGroup;
  /** Lower rate of the cycle. Default: each group's base rate. */
  baseLr?: PerGroup;
  /** Steps from the lower to the upper rate. Default 2000. */
  stepSizeUp?: number;
  /** Steps back down. Default stepSizeUp. */
  stepSizeDown?: number;
  /** 'triangular' (default), 'triangular2' (amplitude halves each cycle), 'exp_range' (amplitude × gammaᵗ). */
  mode?: 'triangular' | 'triangular2' | 'exp_range';
  /** Decay of the amplitude per step in 'exp_range'. Default 1. */
  gamma?: number;
}

/** Cyclical learning rates (Smith, 2017; PyTorch's `CyclicLR`, learning rate only). */
export function cyclicLr(options: CyclicLrOptions): Schedule {
  const { maxLr, baseLr, stepSizeUp = 2000, stepSizeDown = stepSizeUp, mode = 'triangular', gamma = 1 } = options ?? ({} as CyclicLrOptions);
  check(isPerGroup(maxLr), 'cyclicLr.maxLr', 'a number >= 0 or one per parameter group', maxLr);
  check(baseLr === undefined || isPerGroup(baseLr), 'cyclicLr.baseLr', 'a number >= 0 or one per parameter group', baseLr);
  check(isPosInt(stepSizeUp), 'cyclicLr.stepSizeUp', 'an integer >= 1', stepSizeUp);
  check(isPosInt(stepSizeDown), 'cyclicLr.stepSizeDown', 'an integer >= 1', stepSizeDown);
  check(mode === 'triangular' || mode === 'triangular2' || mode === 'exp_range', 'cyclicLr.mode', "'triangular', 'triangular2' or 'exp_range'", mode);
  check(isNonNeg(gamma), 'cyclicLr.gamma', 'a number >= 0', gamma);
  const total = stepSizeUp + stepSizeDown;
  const upRatio = stepSizeUp / total;
  return (t, base, group) => {
    const lo = baseLr === undefined ? base : perGroup(baseLr, group, 'cyclicLr.baseLr');
    const hi = perGroup(maxLr, group, 'cyclicLr.maxLr');
    const cycle = Math.floor(1 + t / total);
    const x = 1 + t / total - cycle;
    const height = (hi - lo) * (x <= upRatio ? x / upRatio : (x - 1) / (upRatio - 1));
    const scale = mode === 'triangular' ? 1 : mode === 'triangular2' ? 1 / Math.pow(2, cycle - 1) : Math.pow(gamma, t);
    return lo + height * scale;
  };
}
