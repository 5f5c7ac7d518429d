// Views over the ring's SharedArrayBuffer (laid out by slots.ts), and the few operations on it that
// every thread shares: making a ring, wrapping position arithmetic, waking the writer.

import { fast, type FastBuffer } from '../node-buffer.js';
import { osThreadExists } from '../threads/os-thread.js';
import { CLAIM_OFFSET, CLAIM_SLOTS, CLOSED_FD, Ctl, CTL_SLOTS, DATA_OFFSET, Num, NUM_OFFSET, NUM_SLOTS, Svc, SVC_SLOTS, WorkerState, WRITER_GONE } from './slots.js';

/**
 * Wakes the writer after a request to it (records published, STOP, an fsync). `svc` is the writer
 * thread's own slots (slots.ts, Svc), shared by every sink it serves. A sleeping writer waits on
 * its state slot and re-checks every request of every sink after announcing SLEEPING: a request
 * stored before that announcement is seen by the re-check, one stored after it finds SLEEPING here
 * and flips it, so no wake-up is lost (a lost one left close() waiting forever). A napping writer
 * looks again within a millisecond; a notify just saves it the wait.
 */
export function wakeWriter(svc: Int32Array): void {
  if (Atomics.compareExchange(svc, Svc.WORKER_STATE, WorkerState.SLEEPING, WorkerState.RUNNING) !== WorkerState.SLEEPING) {
    if (Atomics.load(svc, Svc.WORKER_STATE) !== WorkerState.NAPPING) return;
  }
  Atomics.notify(svc, Svc.WORKER_STATE);
}

/** Whom a producer wakes: the writer thread's slots (they change when a retired writer's
 *  successor starts). */
export interface Waker {
  readonly svc: Int32Array;
}

/**
 * Whether the writer thread whose slots these are is known to have ended: it announced its own end
 * (WRITER_GONE), or its kernel task is gone (terminate(), the heap limit; Linux). Seen without
 * the event loop, which may not be turning.
 */
export function writerGone(svc: Int32Array): boolean {
  return Atomics.load(svc, Svc.WRITER_ID) === WRITER_GONE || !osThreadExists(Atomics.load(svc, Svc.WRITER_TID));
}

/** The writer thread's slots, in a SharedArrayBuffer of their own. */
export function createSvc(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(SVC_SLOTS * 4));
}

export interface RingViews {
  readonly sab: SharedArrayBuffer;
  readonly ctl: Int32Array;
  readonly num: Float64Array;
  /** The Claim slots (slots.ts). */
  readonly claim: Float64Array;
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly buf: FastBuffer;
  /** The data region as UTF-16 code units (DATA_OFFSET is even), for STR16 strings. */
  readonly u16: Uint16Array;
  /** Data region size, a power of two. */
  readonly size: number;
  readonly mask: number;
}

/**
 * Whether the writer keeps up with the ring: less than half of it waits to be written. While it
 * does, the caller leaves the writer thread the work it can take (EventEncoder.writerSlack); once
 * the writer is behind, the caller does that work itself, so under a sustained load the two
 * threads share it instead of the writer alone setting the pace. Half, not less: the caller then
 * takes on work only when the ring is on its way to full, where it would otherwise wait, queue or
 * drop (with a quarter, bursts of numeric events at 20,000/s raised the caller's p99 by half).
 */
export function writerHasSlack(ring: RingViews): boolean {
  return u32diff(Atomics.load(ring.ctl, Ctl.WRITE_POS), Atomics.load(ring.ctl, Ctl.READ_POS)) < ring.size >>> 1;
}

export function ringViews(sab: SharedArrayBuffer): RingViews {
  const size = sab.byteLength - DATA_OFFSET;
  return {
    sab,
    ctl: new Int32Array(sab, 0, CTL_SLOTS),
    num: new Float64Array(sab, NUM_OFFSET, NUM_SLOTS),
    claim: new Float64Array(sab, CLAIM_OFFSET, CLAIM_SLOTS),
    u8: new Uint8Array(sab, DATA_OFFSET, size),
    dv: new DataView(sab, DATA_OFFSET, size),
    buf: fast(Buffer.from(sab, DATA_OFFSET, size)),
    u16: new Uint16Array(sab, DATA_OFFSET, size >>> 1),
    size,
    mask: size - 1,
  };
}

export function createRing(size: number): RingViews {
  const views = ringViews(new SharedArrayBuffer(DATA_OFFSET + size));
  views.num[Num.LAST_INDEX] = -1;
  views.num[Num.OWED_FIRST] = -1;
  views.num[Num.OWED_LAST] = -1;
  views.ctl[Ctl.STALE_FD] = CLOSED_FD;
  return views;
}

/** Wrapping u32 distance a - b, for free-running positions and counts. */
export function u32diff(a: number, b: number): number {
  return (a - b) >>> 0;
}
/** True when wrapping count `a` has reached `b` (a >= b within half the u32 range). */
export function reached(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}
