import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where tools/fixtures/zoo/gen_zoo.py writes the torchvision reference fixtures (git-ignored, too large to commit). */
export const FIXTURE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../tools/fixtures/generated/zoo');
const GENERATOR = path.resolve(FIXTURE_DIR, '../../zoo/gen_zoo.py');

/** The generator's FIXTURE_VERSION this code expects. */
const FIXTURE_VERSION = 2;

export interface FixtureManifest {
  torch: string;
  models: Record<
    string,
    {
      input: [number, number, number];
      numClasses: number;
      /** The Kiln zoo model and the options it needs to match (fixtures written since .pth files were added). */
      model?: string;
      options?: Record<string, unknown>;
      /** What the generator wrote (2: also `<name>.pth` via torch.save); older fixtures are regenerated. */
      version?: number;
    }
  >;
}

/**
 * Returns the fixture manifest, running the generator first for the models whose fixtures are missing when
 * PyTorch + torchvision are installed; otherwise the reason they are unavailable.
 */
export function ensureTorchvisionFixtures(names: string[]): { manifest?: FixtureManifest; reason?: string } {
  const file = path.join(FIXTURE_DIR, 'manifest.json');
  const have = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as FixtureManifest).models : {};
  const missing = names.filter((n) => (have[n]?.version ?? 1) < FIXTURE_VERSION);
  if (missing.length) {
    const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
    const probe = spawnSync(python, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
    if (probe.status !== 0) return { reason: `PyTorch + torchvision not importable by ${python} (apt-get install python3-torch python3-torchvision); ${probe.stderr?.trim().split('\n').pop() ?? probe.error?.message}` };
    const gen = spawnSync(python, [GENERATOR, '--only', missing.join(',')], { encoding: 'utf8', timeout: 600_000 });
    if (gen.status !== 0) throw new Error(`${GENERATOR} failed:\n${gen.stdout}\n${gen.stderr}`);
  }
  return { manifest: JSON.parse(readFileSync(file, 'utf8')) as FixtureManifest };
}

export const fixtureFile = (name: string) => path.join(FIXTURE_DIR, name);
