/**
 * Complete kernel coverage for the WASM backend: every kernel tfjs's reference CPU backend has
 * and the WASM backend lacks (UnsortedSegmentSum, the LRN gradient, Einsum, …) runs through the
 * CPU kernel on a private CPU backend instance. Inputs are copied off the heap, outputs copied
 * back, and the CPU-side copies freed, so callers see an ordinary WASM kernel. This is slower than
 * a native kernel and exists so that training never stops on "kernel not registered"; kernels on
 * a hot path deserve a real implementation next to this file.
 */
import { tf } from '@kiln/core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu/dist/backend_cpu.js';
import '@tensorflow/tfjs-backend-cpu/dist/register_all_kernels.js';
import type { BackendWasm } from './wasm-heap.js';

let cpu: MathBackendCPU | undefined;

/** The CPU backend the bridge computes on. It is never registered with the engine. */
function privateCpu(): MathBackendCPU {
  if (!cpu) {
    cpu = new MathBackendCPU();
    // It warns "install tfjs-node" on first write; this instance is an implementation detail.
    (cpu as unknown as { firstUse: boolean }).firstUse = false;
  }
  return cpu;
}

/** Typed storage for a dtype, since the WASM heap copies raw bytes and cannot convert. */
function asStorage(values: tf.backend_util.BackendValues, dtype: tf.DataType): tf.backend_util.BackendValues {
  switch (dtype) {
    case 'float32':
      return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
    case 'int32':
      return values instanceof Int32Array ? values : Int32Array.from(values as ArrayLike<number>);
    case 'bool':
      return values instanceof Uint8Array ? values : Uint8Array.from(values as ArrayLike<number>);
    default:
      return values;
  }
}

function assertNotComplex(kernelName: string, t: tf.TensorInfo): void {
  if (t.dtype === 'complex64') {
    throw new Error(`${kernelName} on the wasm backend: complex64 tensors are not supported there; run complex ops on the 'cpu' backend`);
  }
}

function bridge(kernelName: string, cpuKernel: tf.KernelFunc): tf.KernelFunc {
  return ({ inputs, backend, attrs }) => {
    const wasm = backend as unknown as BackendWasm;
    const host = privateCpu();
    const cpuInputs: Record<string, tf.TensorInfo> = {};
    const written: tf.TensorInfo[] = [];
    let outputs: tf.TensorInfo[] = [];
    try {
      for (const [name, t] of Object.entries(inputs)) {
        if (t == null) continue;
        assertNotComplex(kernelName, t);
        const info = { dataId: host.write(wasm.readSync(t.dataId), t.shape, t.dtype), shape: t.shape, dtype: t.dtype };
        cpuInputs[name] = info;
        written.push(info);
      }
      const result = cpuKernel({ inputs: cpuInputs, backend: host, attrs });
      outputs = Array.isArray(result) ? result : [result];
      const wasmOutputs = outputs.map((o) => {
        assertNotComplex(kernelName, o);
        return wasm.makeOutput(o.shape, o.dtype, undefined, asStorage(host.readSync(o.dataId), o.dtype));
      });
      return Array.isArray(result) ? wasmOutputs : wasmOutputs[0];
    } finally {
      // Forced: a CPU kernel may return an input's data with its refcount raised (Identity, Reshape).
      for (const t of [...written, ...outputs]) host.disposeData(t.dataId, true);
    }
  };
}

/**
 * Registers a bridged WASM kernel for each CPU kernel that has no WASM implementation yet, and in
 * place of the WASM kernels named in `replace` (ones known to compute wrong results).
 */
export function registerCpuBridgeKernels(replace: readonly string[] = []): void {
  const onWasm = new Map(tf.getKernelsForBackend('wasm').map((k) => [k.kernelName, k]));
  for (const k of tf.getKernelsForBackend('cpu')) {
    const existing = onWasm.get(k.kernelName);
    if (existing && !replace.includes(k.kernelName)) continue;
    if (existing && (existing.kernelFunc as { kilnBridged?: boolean }).kilnBridged) continue;
    if (existing) tf.unregisterKernel(k.kernelName, 'wasm');
    const kernelFunc = Object.assign(bridge(k.kernelName, k.kernelFunc), { kilnBridged: true });
    tf.registerKernel({ kernelName: k.kernelName, backendName: 'wasm', kernelFunc });
  }
}
