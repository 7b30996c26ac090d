/**
 * An `AsyncDataset` standing in for a decoding pool in tests: each `getMany` answers after a delay,
 * and the dataset logs when each request starts and finishes (`fetch:<n>` / `done:<n>`, n counting
 * requests from 0), so a test can see whether loading overlapped the training step. With
 * `jitter`, the delay shrinks with each request in a cycle of three, so later requests can finish
 * before earlier ones, as a worker pool's may.
 */
import type { ArrayDataset, AsyncDataset, Example } from '@kiln/data';

export class SlowDataset implements AsyncDataset<Example> {
  readonly shape: number[];
  /** Request starts and ends, in the order they happened. */
  readonly events: string[] = [];
  /** Requests made so far. */
  requests = 0;
  /** Requests asked for and not yet answered. */
  inFlight = 0;

  constructor(
    private readonly inner: ArrayDataset,
    private readonly delayMs = 5,
    private readonly jitter = false,
  ) {
    this.shape = inner.shape;
  }

  get length(): number {
    return this.inner.length;
  }

  get(): Example {
    throw new Error('SlowDataset has no synchronous get');
  }

  getMany(indices: ArrayLike<number>): Promise<Example[]> {
    const id = this.requests++;
    this.inFlight++;
    this.events.push(`fetch:${id}`);
    const delay = this.jitter ? Math.max(1, this.delayMs - 4 * (id % 3)) : this.delayMs;
    return new Promise((resolve) =>
      setTimeout(() => {
        this.inFlight--;
        this.events.push(`done:${id}`);
        resolve(Array.from(indices, (i) => this.inner.get(i)));
      }, delay),
    );
  }
}
