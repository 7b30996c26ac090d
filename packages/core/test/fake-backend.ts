import type { BackendPlugin } from '@kiln/core';

/**
 * A backend plugin for registry and selection tests: it records its inits in `log`, and when not
 * available says why (`reason`) and how to install it. `tfjsBackend` is the tfjs backend name it
 * reports (default its own name).
 */
export function fakeBackend(name: string, priority: number, available: boolean, log: string[], reason = 'missing', tfjsBackend = name): BackendPlugin {
  return {
    name,
    priority,
    isAvailable: async () => available,
    availability: async () => (available ? { available } : { available, reason, install: `npm i ${name}` }),
    init: async () => {
      log.push(`init ${name}`);
    },
    describe: () => ({ name, tfjsBackend, device: `${name} device` }),
  };
}
