import { describe, expect, it } from 'vitest';
import { filterVisible, parseGpuLine, probeCudaSystem } from '../src/cuda-probe.js';
import { fakeSystem, goodMachine, H100 } from './fake-system.js';

const two = [parseGpuLine('0, GPU-aaaa, NVIDIA A100-SXM4-40GB, 40960, 535.104.05')!, parseGpuLine('1, GPU-bbbb, Tesla T4, 15360, 535.104.05')!];

describe('parseGpuLine', () => {
  it('reads index, uuid, name, memory and driver from nvidia-smi csv (noheader, nounits)', () => {
    expect(parseGpuLine(H100.trim())).toEqual({ index: 0, uuid: 'GPU-8f6c2a1e-0000-4a5b-9c1d-000000000001', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559, driverVersion: '550.54.15' });
  });
  it('keeps commas inside the GPU name and rejects lines that are not GPU rows', () => {
    expect(parseGpuLine('3, GPU-x, Quadro RTX 8000, rev 2, 48601, 470.57.02')?.name).toBe('Quadro RTX 8000, rev 2');
    expect(parseGpuLine('No devices were found')).toBeUndefined();
    expect(parseGpuLine('a, b, c, [N/A], 1')).toBeUndefined();
  });
});

describe('filterVisible (CUDA_VISIBLE_DEVICES)', () => {
  it('shows all when unset, none when empty or -1', () => {
    expect(filterVisible(two, undefined)).toHaveLength(2);
    expect(filterVisible(two, '')).toEqual([]);
    expect(filterVisible(two, '-1')).toEqual([]);
  });
  it('selects by index or UUID prefix, in the order given, stopping at the first unknown entry', () => {
    expect(filterVisible(two, '1').map((g) => g.name)).toEqual(['Tesla T4']);
    expect(filterVisible(two, 'GPU-bb,0').map((g) => g.index)).toEqual([1, 0]);
    expect(filterVisible(two, '0,7,1').map((g) => g.index)).toEqual([0]);
  });
});

describe('probeCudaSystem', () => {
  it('finds the GPU and reads CUDA/cuDNN versions from the files their sonames link to', async () => {
    const r = await probeCudaSystem(fakeSystem(goodMachine()));
    expect(r.gpus.map((g) => g.name)).toEqual(['NVIDIA H100 80GB HBM3']);
    expect(r.gpuProblem).toBeUndefined();
    expect(r.cudaRuntime).toEqual({ version: '11.2.152', source: '/usr/local/cuda-11.2/lib64/libcudart.so.11.2.152', onLoaderPath: true });
    expect(r.cudnn).toEqual({ version: '8.1.1', source: '/usr/lib/x86_64-linux-gnu/libcudnn.so.8.1.1', onLoaderPath: true });
    expect(r.searched[0]).toBe('/usr/local/cuda-11.2/lib64');
  });

  it('says why no GPU is listed: no driver, a failing nvidia-smi, an empty list, or CUDA_VISIBLE_DEVICES', async () => {
    expect((await probeCudaSystem(fakeSystem({}))).gpuProblem).toMatch(/nvidia-smi is not on PATH/);
    const failing = Object.assign(new Error('Command failed'), { stderr: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\nMake sure…" });
    expect((await probeCudaSystem(fakeSystem({ programs: { 'nvidia-smi': failing } }))).gpuProblem).toBe("nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.");
    expect((await probeCudaSystem(fakeSystem({ programs: { 'nvidia-smi': '' } }))).gpuProblem).toBe('nvidia-smi lists no GPUs');
    const hidden = await probeCudaSystem(fakeSystem(goodMachine({ env: { CUDA_VISIBLE_DEVICES: '-1' } })));
    expect(hidden.gpus).toEqual([]);
    expect(hidden.gpuProblem).toBe('CUDA_VISIBLE_DEVICES="-1" hides all 1 GPU(s) nvidia-smi lists');
  });

  it('follows the ldconfig cache, and marks libraries found only under /usr/local/cuda as off the loader path', async () => {
    const sys = fakeSystem({
      programs: {
        'nvidia-smi': H100,
        '/sbin/ldconfig': '\tlibcudnn.so.8 (libc6,x86-64) => /opt/cudnn/lib/libcudnn.so.8\n\tlibc.so.6 (libc6,x86-64) => /lib/x86_64-linux-gnu/libc.so.6\n',
      },
      files: {
        '/opt/cudnn/lib/libcudnn.so.8': 'libcudnn.so.8.4.0',
        '/opt/cudnn/lib/libcudnn.so.8.4.0': '',
        '/usr/local/cuda/lib64/libcudart.so.11.0': 'libcudart.so.11.8.89',
        '/usr/local/cuda/lib64/libcudart.so.11.8.89': '',
      },
    });
    const r = await probeCudaSystem(sys);
    expect(sys.calls).toContain('ldconfig -p'); // tried first, absent here, then /sbin/ldconfig
    expect(r.cudnn).toEqual({ version: '8.4.0', source: '/opt/cudnn/lib/libcudnn.so.8.4.0', onLoaderPath: true });
    expect(r.cudaRuntime).toEqual({ version: '11.8.89', source: '/usr/local/cuda/lib64/libcudart.so.11.8.89', onLoaderPath: false });
  });

  it('lists other major versions it saw, and reads cuDNN from cudnn_version.h when the library name carries only the major', async () => {
    const r = await probeCudaSystem(
      fakeSystem({
        programs: { 'nvidia-smi': H100 },
        files: {
          '/usr/lib/x86_64-linux-gnu/libcudart.so.12': 'libcudart.so.12.4.127',
          '/usr/lib/x86_64-linux-gnu/libcudart.so.12.4.127': '',
          '/usr/lib/x86_64-linux-gnu/libcudnn.so.8': '',
        },
        texts: { '/usr/include/cudnn_version.h': '#define CUDNN_MAJOR 8\n#define CUDNN_MINOR 0\n#define CUDNN_PATCHLEVEL 5\n' },
      }),
    );
    expect(r.cudaRuntime).toBeUndefined();
    expect(r.otherCudaRuntimes).toEqual(['/usr/lib/x86_64-linux-gnu/libcudart.so.12', '/usr/lib/x86_64-linux-gnu/libcudart.so.12.4.127']);
    expect(r.cudnn).toEqual({ version: '8.0.5', source: '/usr/include/cudnn_version.h', onLoaderPath: true });
  });
});
