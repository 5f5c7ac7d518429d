// Which thread may close a segment's descriptor. Node tracks the descriptors a worker thread opens
// (trackUnmanagedFds, on by default) and closes those still open when that thread ends, by number.
// A descriptor opened in a worker thread and closed by another would be closed again at that end,
// by then perhaps someone else's file; the other way round (a worker thread closing one it did not
// open) Node prints a warning. So each segment fd records its opener (Ctl.FD_OPENER), and a
// tracked descriptor is only ever closed by the thread that tracks it.

import { isMainThread, threadId } from 'node:worker_threads';

/** This thread's threadId if Node tracks its descriptors, else 0 (the main thread, a writer thread). */
let tracker = isMainThread ? 0 : threadId;

/**
 * Called by a writer thread started from the main thread with trackUnmanagedFds: false. (Started
 * from a worker thread, it tracks all the same: nested workers inherit tracking.)
 */
export function descriptorsUntracked(): void {
  tracker = 0;
}

/** Whether Node closes what this thread leaves open when it ends. */
export function tracksDescriptors(): boolean {
  return tracker !== 0;
}

/** What to store in Ctl.FD_OPENER beside an fd this thread opened. */
export function fdOpener(): number {
  return tracker;
}

/**
 * Whether this thread may close an fd opened by `opener`: only the same kind of thread that opened
 * it. Untracked ones (the main thread's, its writer's) by any untracked thread; a tracked one only
 * by the thread that tracks it (anyone else leaves it to that thread's end, where Node closes it).
 */
export function mayClose(opener: number): boolean {
  return opener === tracker;
}
