// The hand-over of the ring between its two possible holders, the writer thread and the caller's
// thread (which drains itself at exit, in flushSync, and when no writer can run). Whoever consumes
// the ring and writes the file holds LOCK; the sequence a holder runs is coded here once:
// take the lock, repair what a holder that died mid-batch left (DIRTY still set), mark the batch
// in progress, run it, mark it done, let go.

import { Ctl, LockOwner } from '../ring/slots.js';

type Holder = typeof LockOwner.WORKER | typeof LockOwner.CALLER;

/** Takes LOCK for `holder` if it is free (or held by `holder` already, as after a final drain). */
export function tryHold(ctl: Int32Array, holder: Holder): boolean {
  const prev = Atomics.compareExchange(ctl, Ctl.LOCK, LockOwner.FREE, holder);
  return prev === LockOwner.FREE || prev === holder;
}

/** Takes LOCK from a holder known to be dead (its thread is gone; it cannot let go itself). */
export function takeOver(ctl: Int32Array, holder: Holder): void {
  Atomics.store(ctl, Ctl.LOCK, holder);
}

/** How often a thread waiting for LOCK looks at the holder's health. */
const HOLD_SLICE_MS = 10;

/**
 * Takes LOCK on a thread other than the writer's (the owner at exit or in flushSync, the main
 * thread adopting an orphaned ring): waits for the writer to let go, or takes the lock over once
 * `writerAlive` says the writer is gone (DIRTY, still set, then makes the holder repair the
 * tail). False when the writer still held it at `deadline`.
 */
export function holdFromOutside(ctl: Int32Array, writerAlive: () => boolean, deadline: number): boolean {
  for (;;) {
    if (tryHold(ctl, LockOwner.CALLER)) return true;
    if (!writerAlive()) {
      takeOver(ctl, LockOwner.CALLER);
      return true;
    }
    const left = deadline - Date.now();
    if (left <= 0) return false;
    Atomics.wait(ctl, Ctl.LOCK, LockOwner.WORKER, Math.min(left, HOLD_SLICE_MS));
  }
}

export function release(ctl: Int32Array): void {
  Atomics.store(ctl, Ctl.LOCK, LockOwner.FREE);
  Atomics.notify(ctl, Ctl.LOCK);
}

/** What a holder needs of the consumer to repair a file left mid-batch. */
export interface Repairable {
  recover(): void;
}

/**
 * Runs one batch while holding LOCK. DIRTY still set means the previous holder died mid-batch:
 * the file's tail is repaired first. A batch that throws leaves DIRTY set, so the next holder
 * repairs after it in turn.
 */
export function heldBatch<T>(ctl: Int32Array, consumer: Repairable, batch: () => T): T {
  if (Atomics.load(ctl, Ctl.DIRTY) === 1) consumer.recover();
  Atomics.store(ctl, Ctl.DIRTY, 1);
  const result = batch();
  Atomics.store(ctl, Ctl.DIRTY, 0);
  return result;
}
