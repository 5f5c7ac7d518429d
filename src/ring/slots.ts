// The shared ring's slots: where each field lives in the SharedArrayBuffer. Constants only; every
// thread imports them from here, so the caller and the writer can never disagree about a slot.
// (The views over the memory and the helpers that read it: memory.ts.)
//
// One SharedArrayBuffer per sink:  [ Int32 control slots | Float64 counters | data region (power of two) ]
// One more per writer thread, shared by every sink it serves: the Svc slots (its state and identity).

/** Int32 slots, read and written with Atomics. Positions and counts are free-running u32 values
 *  compared with wrapping arithmetic, so they survive passing 2^32 in long sessions. */
export const Ctl = {
  /** End of the last published record (bytes, free-running). Written by the caller. */
  WRITE_POS: 0,
  /** End of the last record whose line reached the file. Written by whoever holds LOCK. */
  READ_POS: 1,
  /** (last index written + 1) mod 2^32: what flush() waits on. */
  WRITTEN: 2,
  /** LockOwner: who may consume the ring and write the file right now. */
  LOCK: 3,
  /** 1 while a holder is mid-batch: a holder that finds it set knows its predecessor died there. */
  DIRTY: 4,
  /** File descriptor of the current segment, shared by both threads (fds are process-wide). */
  FD: 5,
  /** Current segment number: 0 is the base file, n is `<stem>-00000n.<ext>`. */
  SEGMENT: 6,
  /** (target index + 1) mod 2^32 of the latest flush({ fsync: true }) request. */
  FSYNC_REQUEST: 7,
  /** WRITTEN value covered by the last completed fsync. */
  FSYNC_DONE: 8,
  /** Set to 1 by close(): the writer drains what is left and lets go of the sink. */
  STOP: 9,
  /** Count of write errors reported, so the caller can tell a new one arrived without a message. */
  ERRORS: 10,
  /** 1 while a holder publishes progress (several fields): a successor that finds it set knows
   *  which of them the dead holder got to (see SegmentWriter.publish). */
  PUBLISHING: 11,
  /** The READ_POS that publish was about to store. */
  PUB_TARGET: 12,
} as const;
/**
 * The writer thread's own slots, in a SharedArrayBuffer of their own that every sink it serves
 * holds: a sleeping writer waits on one address, whichever sink has work for it.
 */
export const Svc = {
  /** WorkerState of the writer thread, so callers notify only a sleeping writer. */
  WORKER_STATE: 0,
  /** threadId of the running writer (0 until it starts); the writer swaps its own id for
   *  WRITER_GONE on its way out, so a waiting owner sees the death without its 'exit' event. */
  WRITER_ID: 1,
  /** Kernel task id of the running writer (0: unknown), for deaths the writer cannot announce
   *  (terminate(), the heap limit): see src/threads/os-thread.ts. */
  WRITER_TID: 2,
} as const;
export const SVC_SLOTS = 3;

/** WRITER_ID of a writer that has ended by its own doing. */
export const WRITER_GONE = -1;
/** 13 slots, rounded up to an even count so the Float64 counters after them are 8-byte aligned. */
export const CTL_SLOTS = 14;

/** Float64 slots, only ever touched by the LOCK holder (the lock's atomics order them). */
export const Num = {
  /** Bytes in the current segment, for the rotation decision. */
  FILE_BYTES: 0,
  /** Bytes written to all segments since open. */
  BYTES_TOTAL: 1,
  /** Event lines written since open (markers excluded). */
  LINES: 2,
  /** Events accepted by the caller that never reached the file (write faults). */
  LOST: 3,
  /** Index covered by the last line written, -1 before any: crash recovery skips at or below it. */
  LAST_INDEX: 4,
  /** First index of a lost range still owed a marker line in the file, -1 when none. */
  OWED_FIRST: 5,
  /** Last index of that range. */
  OWED_LAST: 6,
  /** LINES and LAST_INDEX as they were before the publish in progress. */
  PREV_LINES: 7,
  PREV_LAST_INDEX: 8,
} as const;
export const NUM_SLOTS = 10;

export const CTL_BYTES = CTL_SLOTS * 4;
export const NUM_OFFSET = CTL_BYTES; // 56: 8-byte aligned for the Float64Array view
// DATA_OFFSET = 56 + 80 = 136, a multiple of 8 as records need.
export const DATA_OFFSET = NUM_OFFSET + NUM_SLOTS * 8;

export const WorkerState = { STARTING: 0, RUNNING: 1, NAPPING: 2, SLEEPING: 3, EXITED: 4 } as const;
export const LockOwner = { FREE: 0, WORKER: 1, CALLER: 2 } as const;
