/**
 * A logger's writes, one after another in call order: storage calls are asynchronous (IndexedDB),
 * and two appends racing would interleave or drop rows. Each call's promise settles when its own
 * write is done; a failed write rejects its caller and does not block the ones after it.
 */
export class WriteQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(op: () => Promise<T>): Promise<T> {
    const p = this.tail.then(op);
    this.tail = p.catch(() => undefined);
    return p;
  }
}
