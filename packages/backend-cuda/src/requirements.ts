/**
 * What `@tensorflow/tfjs-node-gpu` 4.x needs from the machine. Sources, read from the published
 * 4.22.0 tarball: `scripts/deps-constants.js` pins `LIBTENSORFLOW_VERSION = '2.9.1'`; the README's
 * GPU table asks for NVIDIA drivers >450.x, CUDA Toolkit 11.2 and cuDNN SDK 8.1.0. TensorFlow 2.9's
 * GPU build opens the CUDA runtime by its soname `libcudart.so.11.0` (any CUDA 11.x from 11.2 on
 * provides it) and cuDNN as `libcudnn.so.8`, and refuses a cuDNN whose minor version is below the
 * one it was built with (8.1).
 */
export const TFJS_NODE_GPU = {
  /** The npm package. */
  packageName: '@tensorflow/tfjs-node-gpu',
  /** The range Kiln's engine (tfjs-core 4.22) is tested against. */
  versionRange: '^4.22.0',
  /** The libtensorflow it downloads and loads. */
  libtensorflow: '2.9.1',
  /** The CUDA runtime libtensorflow 2.9 was built against: 11.x with x ≥ 2, found by its soname. */
  cuda: {
    /** Major version. */
    major: 11,
    /** Oldest minor version. */
    minMinor: 2,
    /** The library file the loader looks for. */
    soname: 'libcudart.so.11.0',
  },
  /** The cuDNN it needs: 8.x with x ≥ 1. */
  cudnn: {
    /** Major version. */
    major: 8,
    /** Oldest minor version. */
    minMinor: 1,
    /** The library file the loader looks for. */
    soname: 'libcudnn.so.8',
  },
  /** The oldest Linux driver CUDA 11.x runs on (CUDA minor-version compatibility). */
  minDriver: '450.80.02',
} as const;

/** A version as dotted numbers; missing parts count as 0. */
export function parseVersion(text: string): number[] | undefined {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(text.trim());
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

/** Negative when a < b, 0 when equal, positive when a > b (dotted numeric order). */
export function compareVersions(a: string, b: string): number {
  const x = parseVersion(a) ?? [0];
  const y = parseVersion(b) ?? [0];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** True when `found` has the required major version and at least the required minor one. */
export function satisfiesMajorMinor(found: string, need: { major: number; minMinor: number }): boolean {
  const v = parseVersion(found);
  return v !== undefined && v[0] === need.major && v[1] >= need.minMinor;
}
