import { DataFormatError } from '@kiln/core';
import type { CheckpointMeta } from './checkpoint.js';

/**
 * The checkpoint metadata's schema, checked before any of it is used: a resume trusts these numbers
 * to count epochs and steps, name files and restore generators, so a damaged or crafted field must
 * stop the load with the field's name instead of turning into NaN epochs or a runaway loop.
 */
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

type Check = (v: unknown, at: string) => void;

class MetaError extends DataFormatError {}

function fail(file: string, at: string, expected: string, v: unknown): never {
  let found: string;
  try {
    found = v === undefined ? 'nothing' : (JSON.stringify(v) ?? String(v)).slice(0, 120);
  } catch {
    found = String(v);
  }
  throw new MetaError(file, `checkpoint metadata field '${at}' is invalid`, { expected, found, hint: 'the checkpoint was damaged or not written by Kiln; resume from another checkpoint' });
}

/** Rejects keys that would reach an object's prototype anywhere in a JSON value. */
function assertNoReservedKeys(v: unknown, at: string, file: string, depth = 0): void {
  if (depth > 64) fail(file, at, 'at most 64 levels of nesting', '…');
  if (v === null || typeof v !== 'object') return;
  if (Array.isArray(v)) {
    v.forEach((x, i) => assertNoReservedKeys(x, `${at}[${i}]`, file, depth + 1));
    return;
  }
  for (const [k, x] of Object.entries(v)) {
    if (RESERVED.has(k)) fail(file, `${at}.${k}`, 'no __proto__, constructor or prototype keys', k);
    assertNoReservedKeys(x, `${at}.${k}`, file, depth + 1);
  }
}

/** Validates parsed checkpoint metadata; returns it typed, or throws a DataFormatError naming the field. */
export function validateCheckpointMeta(raw: unknown, file: string): CheckpointMeta {
  const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
  const count: Check = (v, at) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(file, at, 'a non-negative integer', v);
  };
  // JSON has no NaN/Infinity: a metric that was NaN when saved reads back as null.
  const metricMap: Check = (v, at) => {
    if (!isObj(v)) fail(file, at, 'an object of metric values', v);
    for (const [k, x] of Object.entries(v)) if (x !== null && typeof x !== 'number') fail(file, `${at}.${k}`, 'a number (or null for NaN)', x);
  };
  const object: Check = (v, at) => {
    if (!isObj(v)) fail(file, at, 'an object', v);
  };
  const optional = (check: Check): Check => (v, at) => {
    if (v !== undefined && v !== null) check(v, at);
  };
  const rngState: Check = (v, at) => {
    if (!isObj(v)) fail(file, at, 'a generator state { s: [4 integers], spare }', v);
    const s = (v as Record<string, unknown>).s;
    if (!Array.isArray(s) || s.length !== 4 || !s.every((x) => Number.isInteger(x) && x >= -(2 ** 31) && x < 2 ** 32)) fail(file, `${at}.s`, 'four 32-bit integers', s);
    const spare = (v as Record<string, unknown>).spare;
    if (spare !== null && spare !== undefined && typeof spare !== 'number') fail(file, `${at}.spare`, 'a number or null', spare);
  };
  assertNoReservedKeys(raw, 'meta', file);
  if (!isObj(raw)) fail(file, 'meta', 'a JSON object', raw);
  const m = raw;
  count(m.epoch, 'epoch');
  count(m.batch, 'batch');
  count(m.globalStep, 'globalStep');
  metricMap(m.callbackMetrics, 'callbackMetrics');
  optional((v, at) => {
    object(v, at);
    const e = v as Record<string, unknown>;
    metricMap(e.sums, `${at}.sums`);
    count(e.count, `${at}.count`);
    optional((r, rat) => {
      object(r, rat);
      for (const [k, x] of Object.entries(r as Record<string, unknown>)) {
        object(x, `${rat}.${k}`);
        const red = x as Record<string, unknown>;
        if (!['mean', 'sum', 'max', 'min'].includes(red.reduce as string)) fail(file, `${rat}.${k}.reduce`, "'mean', 'sum', 'max' or 'min'", red.reduce);
        if (red.acc !== null && typeof red.acc !== 'number') fail(file, `${rat}.${k}.acc`, 'a number (or null for NaN)', red.acc);
        if (typeof red.weight !== 'number' || !(red.weight >= 0)) fail(file, `${rat}.${k}.weight`, 'a non-negative number', red.weight);
      }
    })(e.reductions, `${at}.reductions`);
  })(m.epochMetrics, 'epochMetrics');
  optional((v, at) => {
    object(v, at);
    const o = v as Record<string, unknown>;
    count(o.step, `${at}.step`);
    if (!Array.isArray(o.groups)) fail(file, `${at}.groups`, 'an array of parameter groups', o.groups);
    (o.groups as unknown[]).forEach((g, i) => object(g, `${at}.groups[${i}]`));
  })(m.optimizer, 'optimizer');
  optional(object)(m.scheduler, 'scheduler');
  optional((v, at) => {
    if (!Array.isArray(v)) fail(file, at, 'a list of optimizer states', v);
    (v as unknown[]).forEach((o, i) => {
      object(o, `${at}[${i}]`);
      const e = o as Record<string, unknown>;
      count(e.step, `${at}[${i}].step`);
      if (!Array.isArray(e.groups)) fail(file, `${at}[${i}].groups`, 'an array of parameter groups', e.groups);
      optional(object)(e.scheduler, `${at}[${i}].scheduler`);
    });
  })(m.extraOptimizers, 'extraOptimizers');
  optional((v, at) => {
    object(v, at);
    const l = v as Record<string, unknown>;
    object(l.state, `${at}.state`);
    const st = l.state as Record<string, unknown>;
    count(st.epoch, `${at}.state.epoch`);
    count(st.position, `${at}.state.position`);
    rngState(st.rng, `${at}.state.rng`);
    if (typeof l.replay !== 'boolean') fail(file, `${at}.replay`, 'true or false', l.replay);
  })(m.loader, 'loader');
  optional(rngState)(m.rng, 'rng');
  object(m.callbacks, 'callbacks');
  for (const [k, v] of Object.entries(m.callbacks as Record<string, unknown>)) object(v, `callbacks.${k}`);
  optional((v, at) => {
    object(v, at);
    for (const [k, names] of Object.entries(v as Record<string, unknown>)) {
      if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) fail(file, `${at}.${k}`, 'a list of tensor names', names);
    }
  })(m.callbackTensors, 'callbackTensors');
  object(m.model, 'model');
  const model = m.model as Record<string, unknown>;
  if (typeof model.class !== 'string') fail(file, 'model.class', 'a class name', model.class);
  count(model.parameters, 'model.parameters');
  object(model.hparams, 'model.hparams');
  object(m.versions, 'versions');
  for (const [k, v] of Object.entries(m.versions as Record<string, unknown>)) if (typeof v !== 'string') fail(file, `versions.${k}`, 'a string', v);
  return m as CheckpointMeta;
}
