/**
 * Scheduling "on a later turn of the event loop", after pending I/O and timers, in Node and in
 * browsers. Internal to the package (the DataLoader reads synchronous datasets this way).
 */

/**
 * A scheduler built on a MessageChannel, for hosts without `setImmediate` (browsers): unlike
 * `setTimeout(fn, 0)`, its messages are not clamped to 4 ms when calls nest. Callbacks run in the
 * order they were scheduled.
 */
export function channelTurns(): (fn: () => void) => void {
  const queue: (() => void)[] = [];
  let channel: MessageChannel | undefined;
  return (fn) => {
    if (!channel) {
      channel = new MessageChannel();
      channel.port1.onmessage = () => queue.shift()?.();
      // In Node an open port would keep the process alive; browsers have no unref.
      (channel.port1 as { unref?: () => void }).unref?.();
    }
    queue.push(fn);
    channel.port2.postMessage(null);
  };
}

/** Runs `fn` on a later turn of the event loop: `setImmediate` where it exists, else `channelTurns`. */
export const nextTurn: (fn: () => void) => void = typeof setImmediate === 'function' ? (fn) => void setImmediate(fn) : channelTurns();
