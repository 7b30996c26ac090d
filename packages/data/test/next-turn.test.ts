import { describe, expect, it } from 'vitest';
import { channelTurns, nextTurn } from '../src/next-turn.js';

describe('later turns of the event loop', () => {
  for (const [name, schedule] of [
    ['setImmediate (Node)', nextTurn],
    ['MessageChannel (browsers)', channelTurns()],
  ] as const) {
    it(`${name}: runs callbacks after the current code and its microtasks, in order`, async () => {
      const seen: string[] = [];
      const done = new Promise<void>((resolve) => {
        schedule(() => seen.push('a'));
        schedule(() => {
          seen.push('b');
          resolve();
        });
      });
      void Promise.resolve().then(() => seen.push('microtask'));
      seen.push('sync');
      await done;
      expect(seen).toEqual(['sync', 'microtask', 'a', 'b']);
    });
  }
});
