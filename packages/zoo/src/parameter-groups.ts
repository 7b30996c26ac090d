import { ConfigError } from '@kiln/core';
import type { Module } from '@kiln/layers';
import type { ParamGroupInput } from '@kiln/optim';

/** One parameter group by module path, with the hyper-parameters that differ from the optimizer's. */
export interface GroupSpec {
  /** Module path(s) whose parameters form the group (`'layer4'`, `['fc']`; `''` is the whole model). */
  path: string | string[];
  /** Name shown by LR monitors; defaults to the first path. */
  name?: string;
  /** Learning rate for this group (discriminative fine-tuning: smaller for early layers). */
  lr?: number;
  /** Weight decay for this group. */
  weightDecay?: number;
}

/** Options of `parameterGroups`. */
export interface ParameterGroupsOptions {
  /** Name of the group collecting parameters no spec claims; `undefined` drops them. Default `'rest'`. */
  rest?: string | undefined;
  /** Include frozen parameters (default false: an optimizer has nothing to do with them). */
  includeFrozen?: boolean;
}

/**
 * Splits a model's parameters into optimizer parameter groups by module path, e.g.
 * `parameterGroups(resnet, [{ path: 'fc', lr: 1e-3 }, { path: ['layer3', 'layer4'], lr: 1e-4 }])`.
 * A parameter belongs to the first spec that names one of its ancestors; the unclaimed ones go to
 * a `rest` group with the optimizer's defaults. Unknown paths raise an error listing what exists.
 */
export function parameterGroups(model: Module, specs: GroupSpec[], options: ParameterGroupsOptions = {}): ParamGroupInput[] {
  const includeFrozen = options.includeFrozen ?? false;
  const rest = 'rest' in options ? options.rest : 'rest';
  const taken = new Set<unknown>();
  const groups: ParamGroupInput[] = [];
  for (const spec of specs) {
    const paths = Array.isArray(spec.path) ? spec.path : [spec.path];
    if (paths.length === 0) throw new ConfigError('parameterGroups.path', 'at least one module path', spec.path);
    const params = [];
    for (const p of paths) {
      for (const param of model.getModule(p).parameters()) {
        if (taken.has(param) || (!includeFrozen && !param.trainable)) continue;
        taken.add(param);
        params.push(param.variable);
      }
    }
    const group: ParamGroupInput = { name: spec.name ?? (paths[0] || 'model'), params };
    if (spec.lr !== undefined) group.lr = spec.lr;
    if (spec.weightDecay !== undefined) group.weightDecay = spec.weightDecay;
    groups.push(group);
  }
  if (rest !== undefined) {
    const params = model
      .parameters()
      .filter((p) => !taken.has(p) && (includeFrozen || p.trainable))
      .map((p) => p.variable);
    if (params.length) groups.push({ name: rest, params });
  }
  return groups.filter((g) => g.params.length > 0);
}
