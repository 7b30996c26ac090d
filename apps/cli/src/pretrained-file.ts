import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureDownloaded } from '@kiln/data';
import { findTorchvisionWeights, TORCHVISION_WEIGHTS, type TorchvisionWeights } from '@kiln/zoo';

/** Where a weight file given on the command line (a path, or a name from the torchvision table) lives on disk. */
export interface ResolvedWeights {
  file: string;
  /** The table entry when `spec` was a published weight name. */
  known?: TorchvisionWeights & { key: string };
}

/** Kiln's download cache for weights: `$KILN_CACHE_DIR/weights`, else `~/.cache/kiln/weights`. */
export function weightsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.KILN_CACHE_DIR ? path.join(env.KILN_CACHE_DIR, 'weights') : path.join(os.homedir(), '.cache', 'kiln', 'weights');
}

/** torch.hub's checkpoint cache, where torchvision users already have these files: `$TORCH_HOME/hub/checkpoints`. */
function torchHubDir(env: NodeJS.ProcessEnv): string {
  return path.join(env.TORCH_HOME ?? path.join(env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'torch'), 'hub', 'checkpoints');
}

/**
 * Turns `--weights` / `--pretrained` into a file: an existing path is used as it is; a published
 * torchvision weight name (`resnet18`, `ResNet18_Weights.IMAGENET1K_V1`, `resnet18-f37072fd.pth`)
 * is looked up in torch.hub's cache, then Kiln's, then downloaded into Kiln's cache with its hash
 * checked. Offline, the download manager's error says where to put the file by hand.
 */
export async function resolveWeightsFile(spec: string, options: { env?: NodeJS.ProcessEnv; fetchImpl?: typeof fetch; log?: (line: string) => void } = {}): Promise<ResolvedWeights> {
  const env = options.env ?? process.env;
  if (existsSync(spec)) return { file: spec };
  const known = findTorchvisionWeights(spec);
  if (!known) return { file: spec };
  const hub = path.join(torchHubDir(env), known.file);
  if (existsSync(hub)) {
    options.log?.(`${known.key}: using torch.hub's copy ${hub}`);
    return { file: hub, known };
  }
  const cache = weightsCacheDir(env);
  options.log?.(`${known.key}: ${known.torchvision} from ${known.url} (cache ${cache})`);
  const file = await ensureDownloaded({ name: known.file, urls: [known.url], sha256: known.sha256 }, cache, options.fetchImpl);
  return { file, known };
}

/** The table's names, for usage text. */
export const KNOWN_WEIGHTS = Object.keys(TORCHVISION_WEIGHTS);
