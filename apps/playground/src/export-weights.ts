import { encodeSafetensors, type DType, type HostTensor } from '@kiln/core';
import type { Module } from '@kiln/layers';

/**
 * The model's state dict (parameters and buffers, by dotted name) as a safetensors file, the format
 * `Module.loadStateDict(decodeSafetensors(bytes))` reads back. Values are read asynchronously.
 */
export async function exportWeights(model: Module, metadata: Record<string, string>): Promise<Uint8Array> {
  const host: Record<string, HostTensor> = {};
  for (const [name, t] of Object.entries(model.stateDict())) {
    const data = await t.data();
    const dtype: DType = t.dtype === 'int32' ? 'int32' : t.dtype === 'bool' ? 'bool' : 'float32';
    host[name] = { dtype, shape: [...t.shape], data: (dtype === 'bool' ? Uint8Array.from(data as Uint8Array) : data) as HostTensor['data'] };
  }
  return encodeSafetensors(host, { format: 'kiln-state-dict', ...metadata });
}
