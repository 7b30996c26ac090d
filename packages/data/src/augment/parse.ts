import { ConfigError } from '@kiln/core';
import type { Augmentation } from './augmentation.js';
import { compose } from './compose.js';
import { horizontalFlip, rotate, rotate90, shear, translate, verticalFlip, zoom } from './geometric.js';
import { centerCrop, randomCrop, randomResizedCrop } from './crop.js';
import { brightness, contrast, gamma, hue, saturation } from './color.js';
import { gaussianBlur, sharpen } from './filter.js';
import { randomErasing } from './random-erasing.js';

/** What each name in an augmentation spec builds, given its number (or undefined when omitted). */
const BUILDERS: Record<string, { help: string; make: (v: number | undefined) => Augmentation }> = {
  flip: { help: 'flip[:p] left–right', make: (v) => horizontalFlip(v ?? 0.5) },
  vflip: { help: 'vflip[:p] top–bottom', make: (v) => verticalFlip(v ?? 0.5) },
  rotate: { help: 'rotate:DEG any angle in [−DEG, DEG]', make: (v) => rotate(v ?? 15) },
  rot90: { help: 'rot90 random quarter turns (square images)', make: () => rotate90() },
  crop: { help: 'crop:PAD pad then crop back to size', make: (v) => randomCrop({ padding: v ?? 4 }) },
  'center-crop': { help: 'center-crop:S central S×S window', make: (v) => centerCrop([req('center-crop', v), req('center-crop', v)]) },
  'resized-crop': { help: 'resized-crop:S random window resized to S×S', make: (v) => randomResizedCrop({ size: [req('resized-crop', v), req('resized-crop', v)] }) },
  translate: { help: 'translate:F shift up to F of the size', make: (v) => translate(v ?? 0.1) },
  zoom: { help: 'zoom:F scale in [1 − F, 1 + F]', make: (v) => zoom(v ?? 0.1) },
  shear: { help: 'shear:DEG', make: (v) => shear(v ?? 10) },
  brightness: { help: 'brightness:F', make: (v) => brightness(v ?? 0.2) },
  contrast: { help: 'contrast:F', make: (v) => contrast(v ?? 0.2) },
  gamma: { help: 'gamma:F', make: (v) => gamma(v ?? 0.2) },
  saturation: { help: 'saturation:F (RGB)', make: (v) => saturation(v ?? 0.2) },
  hue: { help: 'hue:F (RGB, fraction of a turn)', make: (v) => hue(v ?? 0.05) },
  blur: { help: 'blur:SIGMA (5×5 kernel)', make: (v) => gaussianBlur({ kernelSize: 5, sigma: v ?? [0.1, 2] }) },
  sharpen: { help: 'sharpen:F', make: (v) => sharpen(v ?? 0.5) },
  erase: { help: 'erase:P random erasing with probability P', make: (v) => randomErasing({ p: v ?? 0.5 }) },
};

function req(name: string, v: number | undefined): number {
  if (v === undefined) throw new ConfigError(`augment '${name}'`, `${name}:SIZE`, name);
  return v;
}

/** The names `parseAugmentations` accepts, with a one-line description each. */
export const AUGMENTATION_NAMES: string[] = Object.values(BUILDERS).map((b) => b.help);

/**
 * Builds an augmentation from a comma-separated spec such as "flip,rotate:15,crop:4" (the CLI's
 * `--augment`): each item is a name and an optional number, applied in order.
 */
export function parseAugmentations(spec: string): Augmentation {
  const steps = spec
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((item) => {
      const [name, arg, ...rest] = item.split(':');
      const b = BUILDERS[name];
      if (!b || rest.length > 0) throw new ConfigError('--augment', `comma-separated items, each one of: ${AUGMENTATION_NAMES.join('; ')}`, item);
      const v = arg === undefined ? undefined : Number(arg);
      if (v !== undefined && !Number.isFinite(v)) throw new ConfigError(`--augment ${name}`, 'a number after the colon', item);
      return b.make(v);
    });
  return compose(...steps);
}
