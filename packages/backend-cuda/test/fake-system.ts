import path from 'node:path';
import type { SystemAccess } from '../src/cuda-probe.js';

/** A machine described as data: files (symlinks as `name -> target`), program outputs, environment. */
export interface FakeMachine {
  /** Absolute paths; a value other than '' is the symlink's target file name in the same folder. */
  files?: Record<string, string>;
  /** Text files by absolute path. */
  texts?: Record<string, string>;
  /** stdout by program name; an Error is thrown as given; absent programs throw ENOENT. */
  programs?: Record<string, string | Error>;
  env?: Record<string, string | undefined>;
}

export function fakeSystem(m: FakeMachine): SystemAccess & { calls: string[] } {
  const files = m.files ?? {};
  const calls: string[] = [];
  return {
    calls,
    async run(command, args) {
      calls.push([command, ...args].join(' '));
      const out = m.programs?.[command];
      if (out === undefined) throw Object.assign(new Error(`spawn ${command} ENOENT`), { code: 'ENOENT' });
      if (out instanceof Error) throw out;
      return out;
    },
    async listDir(dir) {
      return Object.keys(files)
        .filter((f) => path.dirname(f) === dir)
        .map((f) => path.basename(f));
    },
    async readText(file) {
      return m.texts?.[file];
    },
    async resolveLink(file) {
      let f = file;
      for (let i = 0; i < 8 && files[f]; i++) f = path.join(path.dirname(f), files[f]);
      return f;
    },
    env: m.env ?? {},
  };
}

/** nvidia-smi's answer to Kiln's --query-gpu for one H100. */
export const H100 = '0, GPU-8f6c2a1e-0000-4a5b-9c1d-000000000001, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n';

/** A machine where everything tfjs-node-gpu 4.22 needs is present: CUDA 11.2, cuDNN 8.1, a recent driver. */
export function goodMachine(over: Partial<FakeMachine> = {}): FakeMachine {
  return {
    programs: { 'nvidia-smi': H100 },
    files: {
      '/usr/local/cuda-11.2/lib64/libcudart.so.11.0': 'libcudart.so.11.2.152',
      '/usr/local/cuda-11.2/lib64/libcudart.so.11.2.152': '',
      '/usr/lib/x86_64-linux-gnu/libcudnn.so.8': 'libcudnn.so.8.1.1',
      '/usr/lib/x86_64-linux-gnu/libcudnn.so.8.1.1': '',
    },
    env: { LD_LIBRARY_PATH: '/usr/local/cuda-11.2/lib64' },
    ...over,
  };
}
