import { readFileSync, existsSync } from 'node:fs';
import { ConfigError, DataFormatError, NotFoundError } from '@kiln/core';
import { ArrayDataset } from './dataset.js';

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
  /** Column holding the label, by name or index (default: the last column). */
  labelColumn?: string | number;
  /** Class names in label order. Default: integer labels are used as they are; other labels are sorted and numbered. */
  classes?: string[];
}

/** A table of numeric features and one label column as an `ArrayDataset` of shape [features]. */
export function csvDataset(table: CsvTable, file: string, options: CsvDatasetOptions = {}): ArrayDataset {
  const width = table.header.length;
  const lc = options.labelColumn ?? width - 1;
  const label = typeof lc === 'number' ? lc : table.header.indexOf(lc);
  if (!(Number.isInteger(label) && label >= 0 && label < width)) throw new ConfigError('csvDataset.labelColumn', `a column name or index among: ${table.header.join(', ')}`, lc);
  if (width < 2) throw new DataFormatError(file, 'a CSV dataset needs at least one feature column and a label column', { offset: 0, found: `${width} column` });
  const n = table.rows.length;
  const f = width - 1;
  const x = new Float32Array(n * f);
  const raw = table.rows.map((r) => r[label].trim());
  let classes = options.classes;
  const integers = raw.every((v) => /^-?\d+$/.test(v));
  if (!classes && !integers) classes = [...new Set(raw)].sort();
  const index = classes ? new Map(classes.map((c, k) => [c, k])) : null;
  const y = new Int32Array(n);
  for (let r = 0; r < n; r++) {
    const row = table.rows[r];
    let k = 0;
    for (let c = 0; c < width; c++) {
      if (c === label) continue;
      const v = Number(row[c].trim());
      if (row[c].trim() === '' || !Number.isFinite(v)) {
        throw new DataFormatError(file, `row ${r + 1}, column '${table.header[c]}' is not a number`, { offset: table.offsets[r], expected: 'a finite number', found: JSON.stringify(row[c]) });
      }
      x[r * f + k++] = v;
    }
    const lab = index ? index.get(raw[r]) : Number(raw[r]);
    if (lab === undefined || (index && lab < 0)) {
      throw new DataFormatError(file, `row ${r + 1} has an unknown label`, { offset: table.offsets[r], expected: `one of ${classes?.join(', ')}`, found: JSON.stringify(raw[r]) });
    }
    y[r] = lab;
  }
  return new ArrayDataset(x, y, [f], classes);
}

/** Reads a CSV file of numeric features and a label column. */
export function readCsvDataset(file: string, options: CsvDatasetOptions = {}): ArrayDataset {
  if (!existsSync(file)) throw new NotFoundError(`CSV file '${file}'`, [file]);
  return csvDataset(parseCsv(readFileSync(file), file, options), file, options);
}
