// Telling, without the event loop, whether a thread of this process is still there. A worker's
// 'exit' event is delivered by the owner's event loop, and an owner blocked on a full ring (or in
// an exit drain) does not turn its loop. On Linux every thread is a task under /proc/self/task,
// gone the moment the thread ends — however it ends (an exception, terminate(), the heap limit):
// the writer records its task id in the ring at start and the owner checks for it while it waits.

import * as fs from 'node:fs';

let own: number | undefined;
/** This thread's kernel task id; 0 where the platform does not expose one. Read once: a module
 *  instance belongs to one thread, and its task id does not change. */
export function currentOsThreadId(): number {
  if (own !== undefined) return own;
  try {
    // "<pid>/task/<tid>"
    const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
    own = Number.isSafeInteger(tid) && tid > 0 ? tid : 0;
  } catch {
    own = 0;
  }
  return own;
}

/** False only when thread `tid` of this process is known to be gone (0: unknown, assumed there).
 *  Anything short of "no such entry" (a permission model that hides /proc) counts as there: taking
 *  a live writer for dead would start a second one on the same file. */
export function osThreadExists(tid: number): boolean {
  if (tid === 0) return true;
  try {
    fs.statSync(`/proc/self/task/${tid}`);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
}
