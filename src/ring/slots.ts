// The shared ring's slots: where each field lives in the SharedArrayBuffer. Constants only; every
// thread imports them from here, so the caller and the writer can never disagree about a slot.
// (The views over the memory and the helpers that read it: memory.ts.)
//
// One SharedArrayBuffer per sink:
//   [ Int32 control slots | Float64 counters | Float64 claim slots | key areas | data region (power of two) ]
// One more per writer thread, shared by every sink it serves: the Svc slots (its state and identity).

import { MAX_KEYS } from './keys.js';

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
  /** File descriptor of the current segment, shared by both threads (fds are process-wide), or
   *  CLOSED_FD while it is closed to keep the process's descriptors bounded (reopened on demand). */
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
  // Producers in several threads (src/ring/claim.ts). Before the owner hands out its
  // first handle the ring has one producer and these stay 0.
  /** 1 once producers in other threads may write into the ring: every producer then claims. */
  SHARED: 13,
  /** Claim lock: 0 free, else the holder's ProducerId. Held from taking an index to publishing. */
  CLAIM: 14,
  /** Producers waiting for CLAIM or for room, so a release notifies only when someone waits. */
  CLAIM_WAITERS: 15,
  /** 1 while the Claim slots hold dropped indexes not yet published as a DROPPED record. */
  DROPS_PENDING: 16,
  /** Events dropped by claimers (no room within the overload policy), all producers together;
   *  counted by the consumer as it writes their marker. */
  CLAIM_DROPPED: 17,
  /** Events whose index a producer took and never published because it died: counted by the
   *  consumer as it writes their marker. */
  PRODUCER_LOST: 18,
  /** 1 once the owner closed the sink or began its exit drain: other threads place nothing after,
   *  so everything they placed is in the ring when the final drain runs. */
  CLOSED: 19,
  /** 1 when the segments are regular files, whose fd may be closed while idle and opened again
   *  (a FIFO's reader would see end-of-file if its only writer let go). */
  CLOSABLE: 20,
  /** Entry + 1 of the sink in the main thread's table of worker-opened sinks (worker-rings.ts),
   *  0 for none: whoever moves WRITE_POS or READ_POS stores it there too. */
  MIRROR: 21,
  /** The threadId of the worker thread that opened FD and tracks it, 0 when no thread tracks it
   *  (the main thread, a writer thread): who may close it (src/threads/descriptors.ts). */
  FD_OPENER: 22,
  /** A segment fd let go of by a thread that may not close it, CLOSED_FD when none: the next
   *  holder of LOCK that may close it does (its opener in STALE_OPENER). */
  STALE_FD: 23,
  STALE_OPENER: 24,
  /** Key areas handed out to producers (key-areas.ts), counted up and never given back: area n
   *  (1-based) is the taker's while n <= KEY_AREAS. */
  KEY_AREAS_TAKEN: 25,
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

/** FD of a sink whose segment is closed for now: the LOCK holder opens it again to write. */
export const CLOSED_FD = -1;

/** WRITER_ID of a writer that has ended by its own doing. */
export const WRITER_GONE = -1;
/** 26 slots: an even count, so the Float64 counters after them are 8-byte aligned. */
export const CTL_SLOTS = 26;

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
  /** Events durable projection left out, counted once their `events_projected` marker is written. */
  PROJECTED: 9,
  /** PROJECTED as it was before the publish in progress. */
  PREV_PROJECTED: 10,
} as const;
export const NUM_SLOTS = 11;

/** Float64 slots only ever touched by the CLAIM holder (the claim lock's atomics order them). */
export const Claim = {
  /** The index the next claim takes. */
  NEXT_INDEX: 0,
  /** Index after the last record published (or dropped): below NEXT_INDEX only while a claim is
   *  in flight, or forever when its producer died there. */
  PUBLISHED_NEXT: 1,
  /** emitted_at_ms of the last claim, so the file's times never step back across producers. */
  LAST_TS: 2,
  /** Dropped indexes waiting for room to be published as one DROPPED record. */
  DROP_FIRST: 3,
  DROP_COUNT: 4,
  DROP_TS: 5,
} as const;
export const CLAIM_SLOTS = 6;

/**
 * Key areas: where a producer other than the owner's thread interns its keys (key-areas.ts). Key
 * ids are u16 on the wire, 16 blocks of MAX_KEYS (4,096): block 0 is the owner's, defined inside
 * records; blocks 1..15 are these areas, one per producer thread, so 15 threads per ring intern
 * keys (later ones send keys whole). Each area: a u32 count, a u32 of bytes used and the taking
 * thread's threadId + 1 (padded to 16 bytes), a u32 entry per key (name offset << 8 | UTF-8
 * length: a name is at most 64 UTF-16 units, 192 bytes), then the names: 64 KiB, 16 bytes a key
 * on average, which agent events' keys stay under. Untouched, the pages cost no memory (a
 * SharedArrayBuffer is zero pages until written).
 */
export const KEY_AREAS = 15;
/** A block of key ids: the owner's table holds as many. */
export const KEY_AREA_KEYS = MAX_KEYS;
export const KEY_AREA_NAME_BYTES = 64 * 1024;
export const KEY_AREA_ENTRIES_OFFSET = 16;
export const KEY_AREA_NAMES_OFFSET = KEY_AREA_ENTRIES_OFFSET + KEY_AREA_KEYS * 4;
export const KEY_AREA_BYTES = KEY_AREA_NAMES_OFFSET + KEY_AREA_NAME_BYTES;

export const CTL_BYTES = CTL_SLOTS * 4;
export const NUM_OFFSET = CTL_BYTES; // 104: 8-byte aligned for the Float64Array view
export const CLAIM_OFFSET = NUM_OFFSET + NUM_SLOTS * 8;
// 104 + 88 + 48 = 240, and each key area is a multiple of 8 bytes: records need 8-byte alignment.
export const KEY_AREAS_OFFSET = CLAIM_OFFSET + CLAIM_SLOTS * 8;
export const DATA_OFFSET = KEY_AREAS_OFFSET + KEY_AREAS * KEY_AREA_BYTES;

export const WorkerState = { STARTING: 0, RUNNING: 1, NAPPING: 2, SLEEPING: 3, EXITED: 4 } as const;
export const LockOwner = { FREE: 0, WORKER: 1, CALLER: 2 } as const;
