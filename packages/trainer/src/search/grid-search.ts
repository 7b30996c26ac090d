import { ConfigError } from '@kiln/core';
import { runStudy, type SearchResult, type StudyOptions } from './study.js';

/** Each searched name with the values to try. */
export type GridSpace = Record<string, readonly unknown[]>;
/** One point of a grid: a value per searched name, taken from that name's list. */
export type GridParams<G extends GridSpace> = { [K in keyof G]: G[K][number] };

/** Options of {@link gridSearch}: the grid, plus how trials run and are ranked. */
export interface GridSearchOptions<G extends GridSpace> extends StudyOptions<GridParams<G>> {
  /** Each searched name with the values to try; every combination is one trial (non-empty lists). */
  grid: G;
}

/** Every combination of the grid's values, the last name varying fastest. */
export function gridPoints<G extends GridSpace>(grid: G): GridParams<G>[] {
  let points: Record<string, unknown>[] = [{}];
  for (const [k, values] of Object.entries(grid)) {
    if (!Array.isArray(values) || values.length === 0) throw new ConfigError(`gridSearch.grid.${k}`, 'a non-empty list of values', values);
    points = points.flatMap((p) => values.map((v) => ({ ...p, [k]: v })));
  }
  return points as GridParams<G>[];
}

/** Grid search: one trial per combination of the grid's values, run on the executor and ranked. */
export async function gridSearch<G extends GridSpace>(options: GridSearchOptions<G>): Promise<SearchResult<GridParams<G>>> {
  return runStudy(gridPoints(options.grid), Object.keys(options.grid), options);
}
