// TypeScript (CommonJS) consumer: its imports compile to require(), so TypeScript must find the
// packages' CommonJS declarations (TS1479 otherwise). Type-checked under node16 and nodenext.
import { BackendRegistry } from '@kiln/core';
import { wasmBackend } from '@kiln/backend-cpu';
import { LeNet5 } from '@kiln/zoo';
import { loadCheckpoint, type CheckpointMeta } from '@kiln/trainer';

export async function loadForFineTuning(file: string, numClasses: number): Promise<{ model: LeNet5; meta: CheckpointMeta }> {
  await new BackendRegistry([wasmBackend()]).use('auto');
  const model = new LeNet5();
  const meta = loadCheckpoint(file, model);
  model.replaceHead(numClasses);
  model.freezeBackbone();
  return { model, meta };
}
