import { readFileSync, existsSync } from 'node:fs';
import { ConfigError, DataFormatError, NotFoundError } from '@kiln/core';
import { ArrayDataset, type AnyArrayDataset } from './dataset.js';

/** A parsed CSV file: header and rows of strings. */
export interface CsvTable {
  /** Column names (from the first row, or col0, col1, … without a header). */
  header: string[];
  /** The data rows, each a list of fields. */
  rows: string[][];
  /** Byte offset of the start of each row, for error messages. */
  offsets: number[];
}

/** How to read a CSV file: the delimiter and whether there is a header row. */
export interface CsvParseOptions {
  /** Field separator (default ','). */
  delimiter?: string;
  /** The first row names the columns (default true). */
  header?: boolean;
}

/**
 * Parses RFC 4180 CSV: fields separated by the delimiter, optionally in double quotes (a quote inside
 * is doubled), rows ended by LF or CRLF. Every row must have as many fields as the first.
 */
export function parseCsv(bytes: Uint8Array | string, file: string, options: CsvParseOptions = {}): CsvTable {
  const text = typeof bytes === 'string' ? bytes : new TextDecoder('utf-8').decode(bytes);
  const delim = options.delimiter ?? ',';
  if (delim.length !== 1 || delim === '"' || delim === '\n' || delim === '\r') throw new ConfigError('parseCsv.delimiter', 'one character other than a quote or newline', delim);
  const rows: string[][] = [];
  const offsets: number[] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let rowStart = 0;
  let quotedAt = -1;
  const endRow = () => {
    row.push(field);
    field = '';
    // A blank line is not a row.
    if (!(row.length === 1 && row[0] === '')) {
      rows.push(row);
      offsets.push(rowStart);
    }
    row = [];
  };
  while (i < text.length) {
    const ch = text[i];
    if (quotedAt >= 0) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quotedAt = -1;
        i++;
        const next = text[i];
        if (i < text.length && next !== delim && next !== '\n' && next !== '\r') {
          throw new DataFormatError(file, 'unexpected character after a closing quote', { offset: i, expected: `'${delim}' or end of line`, found: JSON.stringify(next) });
        }
        continue;
      }
      field += ch;
      i++;
      continue;
    }
    if (ch === '"' && field === '') {
      quotedAt = i;
      i++;
    } else if (ch === delim) {
      row.push(field);
      field = '';
      i++;
    } else if (ch === '\n' || ch === '\r') {
      endRow();
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
      rowStart = i;
    } else {
      field += ch;
      i++;
    }
  }
  if (quotedAt >= 0) throw new DataFormatError(file, 'unterminated quoted field', { offset: quotedAt, expected: 'a closing "', found: 'end of file' });
  if (field !== '' || row.length > 0) endRow();
  if (rows.length === 0) throw new DataFormatError(file, 'empty CSV file', { offset: 0, expected: 'at least one row' });
  const width = rows[0].length;
  for (let r = 1; r < rows.length; r++) {
    if (rows[r].length !== width) {
      throw new DataFormatError(file, `row ${r + 1} has ${rows[r].length} fields`, { offset: offsets[r], expected: `${width} fields, as in the first row`, found: String(rows[r].length) });
    }
  }
  const hasHeader = options.header ?? true;
  const header = hasHeader ? rows[0] : rows[0].map((_, k) => `col${k}`);
  return { header, rows: hasHeader ? rows.slice(1) : rows, offsets: hasHeader ? offsets.slice(1) : offsets };
}

/** Options of `csvDataset` and `readCsvDataset`: parsing, plus the label column and class names. */
export interface CsvDatasetOptions extends CsvParseOptions {
  /**
   * The target column(s) by name. One name: a class label or, with `targetDtype: 'float32'`, a
   * scalar regression target. Several names: float32 targets of shape [k] (multi-output regression,
   * multi-hot labels). Default: the last column. Every other column is a feature.
   */
  target?: string | string[];
  /** The target column by name or index (the older spelling of a single `target`). */
  labelColumn?: string | number;
  /**
   * How target values are read. `int32` (the default for one column): class labels, integers in
   * [0, 2^31) (or names, numbered in sorted order); a numeric value that is not such an integer
   * ("3.7", "-1", "99999999999") is an error, never truncated. `float32`: any finite number
   * (regression; always the case for several columns).
   */
  targetDtype?: 'int32' | 'float32';
  /** Class names in label order. Default: integer labels are used as they are; other labels are sorted and numbered. */
  classes?: string[];
}

/** Column indices of the target(s), and whether they form a vector target. */
function targetColumns(header: string[], options: CsvDatasetOptions, file: string): { cols: number[]; vector: boolean } {
  const where = (name: string) => {
    const k = header.indexOf(name);
    if (k < 0) throw new ConfigError('csvDataset.target', `column names among: ${header.join(', ')}`, name, `the header of ${file} has no column '${name}'`);
    return k;
  };
  if (options.target !== undefined && options.labelColumn !== undefined) throw new ConfigError('csvDataset.labelColumn', 'either target or labelColumn, not both', options.labelColumn);
  if (Array.isArray(options.target)) {
    if (options.target.length === 0) throw new ConfigError('csvDataset.target', 'at least one column name', options.target);
    const cols = options.target.map(where);
    if (new Set(cols).size !== cols.length) throw new ConfigError('csvDataset.target', 'distinct column names', options.target);
    return { cols, vector: true };
  }
  if (typeof options.target === 'string') return { cols: [where(options.target)], vector: false };
  const lc = options.labelColumn ?? header.length - 1;
  const col = typeof lc === 'number' ? lc : header.indexOf(lc);
  if (!(Number.isInteger(col) && col >= 0 && col < header.length)) throw new ConfigError('csvDataset.labelColumn', `a column name or index among: ${header.join(', ')}`, lc);
  return { cols: [col], vector: false };
}

const INTEGER = /^[+-]?\d+$/;

/**
 * A table of numeric features and target column(s) as an `ArrayDataset` of shape [features]: int32
 * class labels by default, float32 targets with `targetDtype: 'float32'` or several `target` columns.
 * Values that do not fit (a fractional or negative class label, a label beyond int32, a
 * non-number) are `DataFormatError`s naming the file, row and column.
 */
export function csvDataset(table: CsvTable, file: string, options: CsvDatasetOptions & { targetDtype: 'float32' }): ArrayDataset<Float32Array>;
export function csvDataset(table: CsvTable, file: string, options: CsvDatasetOptions & { target: string[] }): ArrayDataset<Float32Array>;
export function csvDataset(table: CsvTable, file: string, options?: CsvDatasetOptions & { target?: string; targetDtype?: 'int32' }): ArrayDataset<Int32Array>;
export function csvDataset(table: CsvTable, file: string, options?: CsvDatasetOptions): AnyArrayDataset;
export function csvDataset(table: CsvTable, file: string, options: CsvDatasetOptions = {}): AnyArrayDataset {
  const width = table.header.length;
  const { cols, vector } = targetColumns(table.header, options, file);
  const dtype = options.targetDtype ?? (vector ? 'float32' : 'int32');
  if (dtype !== 'int32' && dtype !== 'float32') throw new ConfigError('csvDataset.targetDtype', "'int32' or 'float32'", dtype);
  if (vector && dtype === 'int32') throw new ConfigError('csvDataset.targetDtype', "'float32' for several target columns (multi-hot and multi-output targets are float32)", dtype);
  if (width - cols.length < 1) throw new DataFormatError(file, 'a CSV dataset needs at least one feature column besides the target', { offset: 0, found: `${width} column(s), ${cols.length} of them target` });
  const isTarget = new Uint8Array(width);
  for (const c of cols) isTarget[c] = 1;
  const n = table.rows.length;
  const f = width - cols.length;
  const x = new Float32Array(n * f);
  const bad = (r: number, c: number, problem: string, expected: string, hint?: string) =>
    new DataFormatError(file, `row ${r + 1}, column '${table.header[c]}' ${problem}`, { offset: table.offsets[r], expected, found: JSON.stringify(table.rows[r][c]), hint });
  const number = (r: number, c: number): number => {
    const t = table.rows[r][c].trim();
    const v = Number(t);
    if (t === '' || !Number.isFinite(v)) throw bad(r, c, 'is not a number', 'a finite number');
    return v;
  };
  for (let r = 0; r < n; r++) {
    let k = 0;
    for (let c = 0; c < width; c++) if (!isTarget[c]) x[r * f + k++] = number(r, c);
  }
  if (dtype === 'float32') {
    const y = new Float32Array(n * cols.length);
    for (let r = 0; r < n; r++) cols.forEach((c, j) => (y[r * cols.length + j] = number(r, c)));
    return new ArrayDataset(x, y, [f], vector ? cols.map((c) => table.header[c]) : undefined, vector ? [cols.length] : []);
  }
  return new ArrayDataset(x, classLabels(table, file, cols[0], options.classes, options.targetDtype === 'int32', bad), [f], classLabelNames(table, cols[0], options.classes));
}

/** The class names of a label column: given, or the sorted distinct values when they are not numbers. */
function classLabelNames(table: CsvTable, col: number, classes?: string[]): string[] | undefined {
  if (classes) return classes;
  const raw = table.rows.map((row) => row[col].trim());
  return raw.every((v) => v !== '' && Number.isFinite(Number(v))) ? undefined : [...new Set(raw)].sort();
}

/**
 * Integer class labels of column `col`. Values are class names when `classes` is given or any value
 * is not a number; otherwise each must be an integer in [0, 2^31). A column of numbers that are not
 * all integers is refused unless int32 was asked for explicitly (then the first such row is named).
 */
function classLabels(table: CsvTable, file: string, col: number, classes: string[] | undefined, explicit: boolean, bad: (r: number, c: number, problem: string, expected: string, hint?: string) => DataFormatError): Int32Array {
  const raw = table.rows.map((row) => row[col].trim());
  const names = classLabelNames(table, col, classes);
  const y = new Int32Array(raw.length);
  if (names) {
    const index = new Map(names.map((c, k) => [c, k]));
    for (let r = 0; r < raw.length; r++) {
      const lab = index.get(raw[r]);
      if (lab === undefined) throw bad(r, col, 'has an unknown label', `one of ${names.join(', ')}`);
      y[r] = lab;
    }
    return y;
  }
  const floatHint = "for float (regression) targets pass targetDtype: 'float32'";
  const firstFraction = raw.findIndex((v) => !INTEGER.test(v));
  if (firstFraction >= 0 && !explicit) {
    throw new DataFormatError(file, `target column '${table.header[col]}' holds numbers that are not integer class labels (row ${firstFraction + 1})`, {
      offset: table.offsets[firstFraction],
      expected: 'integer class labels (the default targetDtype, int32)',
      found: JSON.stringify(table.rows[firstFraction][col]),
      hint: floatHint,
    });
  }
  for (let r = 0; r < raw.length; r++) {
    const v = Number(raw[r]);
    if (!INTEGER.test(raw[r])) throw bad(r, col, 'is not an integer class label', 'an integer in [0, 2147483647]', floatHint);
    if (v < 0) throw bad(r, col, 'is a negative class label', 'an integer in [0, 2147483647]');
    if (v > 2147483647) throw bad(r, col, 'does not fit int32', 'an integer in [0, 2147483647]', floatHint);
    y[r] = v;
  }
  return y;
}

/** Reads a CSV file of numeric features and target column(s); see `csvDataset`. */
export function readCsvDataset(file: string, options: CsvDatasetOptions & { targetDtype: 'float32' }): ArrayDataset<Float32Array>;
export function readCsvDataset(file: string, options: CsvDatasetOptions & { target: string[] }): ArrayDataset<Float32Array>;
export function readCsvDataset(file: string, options?: CsvDatasetOptions & { target?: string; targetDtype?: 'int32' }): ArrayDataset<Int32Array>;
export function readCsvDataset(file: string, options?: CsvDatasetOptions): AnyArrayDataset;
export function readCsvDataset(file: string, options: CsvDatasetOptions = {}): AnyArrayDataset {
  if (!existsSync(file)) throw new NotFoundError(`CSV file '${file}'`, [file]);
  return csvDataset(parseCsv(readFileSync(file), file, options), file, options);
}
