import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { KilnError } from '@kiln/core';
import { parseFlatYaml, readRunConfig } from '../src/commands/run-config.js';

const KNOWN = ['epochs', 'lr', 'model', 'logger'];

describe('run configs under fast-check', () => {
  it('random text (YAML or JSON) gives flag strings or a typed error, never a prototype key', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-cfg-'));
    const line = fc.oneof(
      fc.string(),
      fc.constantFrom('__proto__: x', 'constructor: 1', 'epochs: 3', 'lr: [1, 2]', 'logger:', '  - csv', 'model: "lenet5"', '---'),
    );
    const yaml = fc.array(line, { maxLength: 8 }).map((ls) => ls.join('\n'));
    const json = fc.oneof(fc.json(), fc.constantFrom('{"__proto__": {"epochs": 1}}', '{"constructor": {"prototype": 1}}', '{"epochs": 5}'));
    let i = 0;
    fc.assert(
      fc.property(fc.oneof(yaml.map((t) => ['yaml', t] as const), json.map((t) => ['json', t] as const)), ([kind, text]) => {
        const file = path.join(dir, `c${i++}.${kind}`);
        writeFileSync(file, text);
        try {
          const flags = readRunConfig(file, KNOWN);
          for (const [k, v] of Object.entries(flags)) {
            expect(KNOWN).toContain(k);
            expect(v === undefined || typeof v === 'string' || typeof v === 'boolean').toBe(true);
          }
        } catch (e) {
          if (!(e instanceof KilnError)) throw e;
        }
        expect(({} as Record<string, unknown>).epochs).toBeUndefined();
        return true;
      }),
      { numRuns: 300 },
    );
    expect(parseFlatYaml('epochs: 5\nlogger: [csv, jsonl]\n')).toEqual({ epochs: '5', logger: ['csv', 'jsonl'] });
  });
});
