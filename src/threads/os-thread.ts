// Telling, without the event loop, whether a thread of this process is still there. A worker's
// 'exit' event is delivered by the owner's event loop, and an owner blocked on a full ring (or in
// an exit drain) does not turn its loop. On Linux every thread is a task under /proc/self/task,
// marked exiting the moment the thread ends — however it ends (an exception, terminate(), the heap
// limit) — and gone soon after. The writer records its task id in the ring at start and the owner
// checks for it while it waits.

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

/**
 * The PF_EXITING bit of a task's flags (field 9 of /proc/<pid>/task/<tid>/stat; include/linux/sched.h).
 * The kernel sets it first thing in do_exit(), and the task's /proc entry stays until the thread is
 * reaped, later: pthread_join() (so worker.terminate()) returns inside that window, measured here in
 * about 1 in 10 terminations. A task with the bit set runs no user code again, so it counts as gone.
 */
const PF_EXITING = 0x4;
/** A task's stat line: its name is at most 16 bytes (TASK_COMM_LEN), 52 numeric fields follow;
 *  about 300 bytes in practice, so 1 KiB holds field 9 with room to spare. */
const statBuf = Buffer.alloc(1024);

/** False only when thread `tid` of this process is known to be gone or exiting (0: unknown, assumed
 *  there). Anything short of "no such entry" (a permission model that hides /proc) counts as there:
 *  taking a live writer for dead would start a second one on the same file. */
export function osThreadExists(tid: number): boolean {
  if (tid === 0) return true;
  let n: number;
  let fd = -1;
  try {
    // open/read/close into one buffer: half the cost of readFileSync (which also fstats and
    // allocates), and this runs in the writer's passes while a producer holds the claim lock.
    fd = fs.openSync(`/proc/self/task/${tid}/stat`, 'r');
    n = fs.readSync(fd, statBuf, 0, statBuf.length, 0);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ESRCH: reaped between the open and the read.
    return code !== 'ENOENT' && code !== 'ESRCH';
  } finally {
    if (fd !== -1) fs.closeSync(fd);
  }
  const flags = Number(statField(statBuf.toString('latin1', 0, n), 9));
  return !(Number.isSafeInteger(flags) && (flags & PF_EXITING) !== 0);
}

/**
 * Field `n` (1-based, as proc(5) numbers them; n ≥ 3) of a /proc/<pid>/stat or task stat line.
 * Field 2 is the command name in parentheses, which may itself hold spaces and ')': the fields
 * after it start two characters past the last ')'.
 */
export function statField(stat: string, n: number): string | undefined {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[n - 3];
}
