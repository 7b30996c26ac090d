import { BackendUnavailableError } from '@kiln/core';
import { describe, expect, it } from 'vitest';
import { checkCudaSystem } from '../src/check-cuda.js';
import { probeCudaSystem } from '../src/cuda-probe.js';
import { CudaVersionMismatchError, NoCudaDeviceError } from '../src/errors.js';
import { fakeSystem, goodMachine, type FakeMachine } from './fake-system.js';

const verdict = async (m: FakeMachine) => checkCudaSystem(await probeCudaSystem(fakeSystem(m)));

describe('checkCudaSystem', () => {
  it('passes CUDA 11.2 + cuDNN 8.1 with a recent driver', async () => {
    expect(await verdict(goodMachine())).toBeUndefined();
  });

  it('no GPU: NoCudaDeviceError naming what nvidia-smi said', async () => {
    const e = await verdict({});
    expect(e).toBeInstanceOf(NoCudaDeviceError);
    expect(e).toBeInstanceOf(BackendUnavailableError);
    expect(e!.failure).toBe('no-gpu');
    expect(e!.message).toMatch(/^backend 'cuda' is not available: no CUDA device is visible: nvidia-smi is not on PATH/);
    expect(e!.fix).toMatch(/nvidia-smi/);
  });

  it('a driver older than CUDA 11 supports', async () => {
    const e = (await verdict(goodMachine({ programs: { 'nvidia-smi': '0, GPU-1, Tesla K80, 11441, 418.152.00\n' } })))!;
    expect(e).toBeInstanceOf(CudaVersionMismatchError);
    expect(e).toMatchObject({ component: 'driver', required: '>= 450.80.02', detected: '418.152.00 (nvidia-smi)' });
  });

  it('CUDA 12 only: says TensorFlow 2.9 needs libcudart.so.11.0 and lists what is there', async () => {
    const e = (await verdict(
      goodMachine({
        files: {
          '/usr/local/cuda-11.2/lib64/libcudart.so.12': 'libcudart.so.12.4.127',
          '/usr/local/cuda-11.2/lib64/libcudart.so.12.4.127': '',
          '/usr/lib/x86_64-linux-gnu/libcudnn.so.8': 'libcudnn.so.8.1.1',
          '/usr/lib/x86_64-linux-gnu/libcudnn.so.8.1.1': '',
        },
      }),
    )) as CudaVersionMismatchError;
    expect(e.component).toBe('cuda');
    expect(e.message).toContain('needs CUDA runtime 11.x from 11.2 (libcudart.so.11.0), found /usr/local/cuda-11.2/lib64/libcudart.so.12');
    expect(e.fix).toMatch(/CUDA 11\.x runtime/);
  });

  it('CUDA 11.0 is too old (TensorFlow 2.9 was built against 11.2)', async () => {
    const e = (await verdict(
      goodMachine({
        files: {
          '/usr/local/cuda-11.2/lib64/libcudart.so.11.0': 'libcudart.so.11.0.221',
          '/usr/local/cuda-11.2/lib64/libcudart.so.11.0.221': '',
          '/usr/lib/x86_64-linux-gnu/libcudnn.so.8': 'libcudnn.so.8.1.1',
          '/usr/lib/x86_64-linux-gnu/libcudnn.so.8.1.1': '',
        },
      }),
    )) as CudaVersionMismatchError;
    expect(e).toMatchObject({ component: 'cuda', detected: '11.0.221 (/usr/local/cuda-11.2/lib64/libcudart.so.11.0.221)' });
  });

  it('CUDA present but off the loader path: the fix is the LD_LIBRARY_PATH line', async () => {
    const e = (await verdict(
      goodMachine({
        env: {},
        files: {
          '/usr/local/cuda/lib64/libcudart.so.11.0': 'libcudart.so.11.2.152',
          '/usr/local/cuda/lib64/libcudart.so.11.2.152': '',
          '/usr/lib/x86_64-linux-gnu/libcudnn.so.8': 'libcudnn.so.8.1.1',
          '/usr/lib/x86_64-linux-gnu/libcudnn.so.8.1.1': '',
        },
      }),
    )) as CudaVersionMismatchError;
    expect(e.component).toBe('cuda');
    expect(e.fix).toBe('export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH');
  });

  it('cuDNN missing, cuDNN 9, and cuDNN 8.0 each name the version needed', async () => {
    const base = goodMachine().files!;
    const withCudnn = (files: Record<string, string>) => {
      const f = Object.fromEntries(Object.entries(base).filter(([k]) => !k.includes('cudnn')));
      return goodMachine({ files: { ...f, ...files } });
    };
    const none = (await verdict(withCudnn({}))) as CudaVersionMismatchError;
    expect(none).toMatchObject({ component: 'cudnn', required: '8.x from 8.1 (libcudnn.so.8)' });
    expect(none.detected).toMatch(/^no libcudnn in /);
    const nine = (await verdict(withCudnn({ '/usr/lib/x86_64-linux-gnu/libcudnn.so.9': 'libcudnn.so.9.1.0', '/usr/lib/x86_64-linux-gnu/libcudnn.so.9.1.0': '' }))) as CudaVersionMismatchError;
    expect(nine).toMatchObject({ component: 'cudnn', detected: '/usr/lib/x86_64-linux-gnu/libcudnn.so.9, /usr/lib/x86_64-linux-gnu/libcudnn.so.9.1.0' });
    const old = (await verdict(withCudnn({ '/usr/lib/x86_64-linux-gnu/libcudnn.so.8': 'libcudnn.so.8.0.5', '/usr/lib/x86_64-linux-gnu/libcudnn.so.8.0.5': '' }))) as CudaVersionMismatchError;
    expect(old).toMatchObject({ component: 'cudnn', detected: '8.0.5 (/usr/lib/x86_64-linux-gnu/libcudnn.so.8.0.5)' });
    expect(old.message).toContain('needs cuDNN 8.x from 8.1 (libcudnn.so.8), found 8.0.5');
  });
});
