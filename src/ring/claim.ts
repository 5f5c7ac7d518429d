// The producer half of a ring that several threads write into (the owner's thread and every thread
// holding a sinkHandle): each record is placed under a claim lock that takes its index and its ring
// space together, so the ring, and therefore the file, is in index order across all producers, and
// each producer's events stay in its own order. Events are snapshotted before the claim (into the
// producer's own scratch), so the lock covers a copy and a few stores, never user code.
//
// A producer can die while it holds the claim (worker.terminate() lands between two statements).
// The lock word names the holder by its kernel task id, so whoever finds the lock held too long
// can tell a dead holder from a slow one (src/threads/os-thread.ts) and take the lock over; the
// index it had taken becomes an IF_MISSING loss marker, written and counted by the consumer. Every
// holder leaves PUBLISHED_NEXT equal to NEXT_INDEX, so a new holder that finds them apart knows its
// predecessor died mid-claim, whoever noticed the death.

import { threadId } from 'node:worker_threads';
import { currentOsThreadId, osThreadExists } from '../threads/os-thread.js';
import { u32diff, wakeWriter, type RingViews, type Waker } from './memory.js';
import { Flag, Kind, RECORD_HEADER } from './records.js';
import { Claim, Ctl, Svc, WorkerState } from './slots.js';
import { mirrorWritePos, ringMirror, type Mirror } from './worker-rings.js';

/** place() returned no index: the event was dropped by the overload policy (and counted). */
export const DROPPED = -1;
/** place() returned no index: the owner closed the sink; nothing is published after that. */
export const CLOSED = -2;

/** A DROPPED record: header | f64 first index | f64 count | f64 emitted_at_ms. */
const DROPPED_BYTES = RECORD_HEADER + 24;
/** Spins before a claimer sleeps on the lock: the holder is copying one record, well under a
 *  microsecond for typical events. Short, because with more producer threads than cores the
 *  holder is often descheduled, and a spin then only takes CPU from it and from the writer. */
const SPIN = 20;
/** While the lock is held, a waiter sleeps in slices this long and looks at the holder's health
 *  every DEATH_CHECK_MS (one read of /proc: microseconds, but not per spin). */
const WAIT_SLICE_MS = 1;
const DEATH_CHECK_MS = 20;
/** A producer waiting for room re-checks the writer's progress at least this often. */
const ROOM_SLICE_MS = 10;

let ownId = 0;
/**
 * This thread's name in the claim lock: its kernel task id where the platform has one (a death
 * can then be seen from another thread), else -(threadId + 1), which is never taken for dead.
 */
export function producerId(): number {
  if (ownId === 0) {
    const tid = currentOsThreadId();
    ownId = tid > 0 ? tid : -(threadId + 1);
  }
  return ownId;
}

function holderAlive(id: number): boolean {
  return id < 0 || osThreadExists(id);
}

/** What a handle carries so another thread can write into a sink's ring (fan-out/handle.ts). */
export interface SharedRing {
  readonly sab: SharedArrayBuffer;
  /** The writer thread's slots, to wake it. */
  readonly svc: SharedArrayBuffer;
  readonly maxDepth: number;
  readonly overload: 'drop' | 'block' | 'buffer';
  readonly blockTimeoutMs: number;
  /** The sink's path, for error messages. */
  readonly name: string;
}

export interface PlaceOptions {
  /** Wait up to timeoutMs for room (else drop at once). */
  readonly wait: boolean;
  readonly timeoutMs: number;
  /** Called while waiting for room: the owner writes on its own thread when it has no writer. */
  readonly whileWaiting?: () => void;
  /** The owner's own events: CLOSED is for producers in other threads (the owner knows better:
   *  at exit, events of later exit listeners are still written, by its final drains). */
  readonly owner?: boolean;
}

export class SharedProducer {
  readonly ring: RingViews;
  readonly #waker: Waker;
  readonly #id: number;
  readonly #dropped = Buffer.alloc(DROPPED_BYTES);
  /** Free-running ring position after the last record this producer published. */
  lastEnd = 0;
  /** Waits for room that ran out (blockTimeoutMs) on this thread. */
  stalls = 0;
  /** READ_POS when a wait last ran out, -1 when the writer has moved since. */
  #stalledAt = -1;

  /** The main thread's mirror of this ring, for a sink opened in a worker thread. */
  readonly #mirror: Mirror | undefined;

  constructor(ring: RingViews, waker: Waker, id = producerId()) {
    this.ring = ring;
    this.#waker = waker;
    this.#id = id;
    this.#mirror = ringMirror(ring.ctl);
  }

  /**
   * Places a finished record, the first `len` bytes of `record` (EVENT or REJECTED, its index and
   * time fields to be filled in), and returns its index, or DROPPED / CLOSED. With `stub`, the
   * record travels outside the ring (its index and time are written into `record`) and the stub
   * is what goes into the ring.
   */
  place(record: Buffer, len: number, ts: number, opts: PlaceOptions, stub?: Buffer): number {
    const { ctl } = this.ring;
    // Bounded per stall, not per event (the owner's rule, README "Overload"): once a wait ran
    // out, later events do not wait again until the writer has moved READ_POS.
    let timeoutMs = opts.timeoutMs;
    if (this.#stalledAt !== -1) {
      if (Atomics.load(ctl, Ctl.READ_POS) === this.#stalledAt) timeoutMs = 0;
      else this.#stalledAt = -1;
    }
    const deadline = opts.wait ? Date.now() + timeoutMs : 0;
    const inRing = stub === undefined ? len : stub.length;
    for (;;) {
      this.lock();
      if (Atomics.load(ctl, Ctl.CLOSED) === 1 && opts.owner !== true) {
        this.unlock();
        return CLOSED;
      }
      if (this.settle()) {
        const index = this.#publish(record, len, stub, ts);
        if (index >= 0) {
          this.unlock();
          this.#wake();
          return index;
        }
      }
      if (!opts.wait || Date.now() >= deadline) {
        this.#drop(ts);
        this.unlock();
        if (opts.wait && timeoutMs > 0) this.stalls++;
        if (opts.wait) this.#stalledAt = Atomics.load(ctl, Ctl.READ_POS);
        // The writer publishes the marker when there is room: it must not sleep past it.
        this.#wake(true);
        return DROPPED;
      }
      this.unlock();
      this.#wake(true);
      this.#awaitRoom(inRing, deadline, opts.whileWaiting);
    }
  }

  /**
   * Sleeps until the ring looks to have room for `len` bytes (or the deadline). Looked at without
   * the lock, so producers waiting on a full ring do not queue on the lock each time the writer
   * frees a batch: only those that see room compete for it.
   */
  #awaitRoom(len: number, deadline: number, whileWaiting: (() => void) | undefined): void {
    const { ctl, size } = this.ring;
    // Twice the record (a wrap may waste up to one record's worth at the end of the ring).
    const want = Math.min(size, 2 * len);
    for (;;) {
      whileWaiting?.();
      const readPos = Atomics.load(ctl, Ctl.READ_POS);
      if (size - u32diff(Atomics.load(ctl, Ctl.WRITE_POS), readPos) >= want) return;
      const left = deadline - Date.now();
      if (left <= 0) return;
      Atomics.wait(ctl, Ctl.READ_POS, readPos, Math.min(left, ROOM_SLICE_MS));
    }
  }

  /** Takes the claim lock, taking it over from a holder that died with it. */
  lock(): void {
    const { ctl } = this.ring;
    let spins = 0;
    // Each wait for the lock starts watching its holder afresh.
    this.#seenHolder = 0;
    for (;;) {
      const seen = Atomics.compareExchange(ctl, Ctl.CLAIM, 0, this.#id);
      if (seen === 0) return;
      if (seen === this.#id) throw new Error('ringlog: claim lock re-entered on the same thread (a bug in ringlog)');
      if (++spins < SPIN) continue;
      if (this.healthDue(seen) && !holderAlive(seen) && Atomics.compareExchange(ctl, Ctl.CLAIM, seen, this.#id) === seen) return;
      Atomics.add(ctl, Ctl.CLAIM_WAITERS, 1);
      Atomics.wait(ctl, Ctl.CLAIM, seen, WAIT_SLICE_MS);
      Atomics.sub(ctl, Ctl.CLAIM_WAITERS, 1);
    }
  }

  /** The holder last seen on the lock while waiting for it (lock) or passing it by (the writer's
   *  settleClaims), and since when. */
  #seenHolder = 0;
  #seenSince = 0;

  /** Whether `holder`'s health is due a look: it is the holder seen DEATH_CHECK_MS ago or more
   *  (a holder seen for the first time starts the clock, and each look starts it again). */
  healthDue(holder: number): boolean {
    const now = Date.now();
    if (holder !== this.#seenHolder) {
      this.#seenHolder = holder;
      this.#seenSince = now;
      return false;
    }
    if (now - this.#seenSince < DEATH_CHECK_MS) return false;
    this.#seenSince = now;
    return true;
  }

  /** Takes the lock only if it is free, or held by a thread that is gone. */
  tryLock(): boolean {
    const { ctl } = this.ring;
    const seen = Atomics.compareExchange(ctl, Ctl.CLAIM, 0, this.#id);
    if (seen === 0) return true;
    return !holderAlive(seen) && Atomics.compareExchange(ctl, Ctl.CLAIM, seen, this.#id) === seen;
  }

  unlock(): void {
    const { ctl } = this.ring;
    Atomics.store(ctl, Ctl.CLAIM, 0);
    if (Atomics.load(ctl, Ctl.CLAIM_WAITERS) > 0) Atomics.notify(ctl, Ctl.CLAIM);
  }

  /**
   * Under the lock: what a dead holder left (an index taken, its record maybe unpublished) and
   * dropped indexes waiting for room go into the ring ahead of anything else. False while some of
   * it still waits for room.
   */
  settle(): boolean {
    const { claim, ctl } = this.ring;
    // Pending drops first: their indexes are all below what a dead holder took (while a dead
    // holder's range is owed, new drops join that range instead: see #drop).
    if (Atomics.load(ctl, Ctl.DROPS_PENDING) === 1) {
      if (!this.#publishDropped(claim[Claim.DROP_FIRST]!, claim[Claim.DROP_COUNT]!, claim[Claim.DROP_TS]!, Flag.IF_MISSING)) return false;
      Atomics.store(ctl, Ctl.DROPS_PENDING, 0);
    }
    const next = claim[Claim.NEXT_INDEX]!;
    const published = claim[Claim.PUBLISHED_NEXT]!;
    if (published < next) {
      // A holder died between taking `published`.. and publishing them (it may have published
      // some: the consumer marks only what it has not seen, and counts it).
      if (!this.#publishDropped(published, next - published, claim[Claim.LAST_TS]!, Flag.IF_MISSING | Flag.PRODUCER_DIED)) return false;
      claim[Claim.PUBLISHED_NEXT] = next;
    }
    return true;
  }

  /** The index the next claim takes (read under the lock, so no claim is half done). */
  nextIndex(): number {
    this.lock();
    const next = this.ring.claim[Claim.NEXT_INDEX]!;
    this.unlock();
    return next;
  }

  #publishDropped(first: number, count: number, ts: number, flags: number): boolean {
    const b = this.#dropped;
    b.writeUInt32LE(DROPPED_BYTES, 0);
    b[4] = Kind.DROPPED;
    b[5] = flags;
    b.writeDoubleLE(first, RECORD_HEADER);
    b.writeDoubleLE(count, RECORD_HEADER + 8);
    b.writeDoubleLE(ts, RECORD_HEADER + 16);
    return this.#copy(b) >= 0;
  }

  /** Under the lock: takes an index for `record` and publishes it; -1 when there is no room. */
  #publish(record: Buffer, len: number, stub: Buffer | undefined, ts: number): number {
    const { claim, dv, buf } = this.ring;
    const off = this.#room(stub === undefined ? len : stub.length);
    if (off < 0) return -1;
    const index = claim[Claim.NEXT_INDEX]!;
    const lastTs = claim[Claim.LAST_TS]!;
    if (ts < lastTs) ts = lastTs;
    // Taken before it is published: a death from here to PUBLISHED_NEXT leaves them apart.
    claim[Claim.NEXT_INDEX] = index + 1;
    claim[Claim.LAST_TS] = ts;
    if (stub !== undefined) {
      record.writeDoubleLE(index, RECORD_HEADER);
      record.writeDoubleLE(ts, RECORD_HEADER + 8);
      stub.copy(buf, off);
      this.#advance(stub.length);
    } else {
      record.copy(buf, off, 0, len);
      dv.setFloat64(off + RECORD_HEADER, index, true);
      dv.setFloat64(off + RECORD_HEADER + 8, ts, true);
      this.#advance(len);
    }
    claim[Claim.PUBLISHED_NEXT] = index + 1;
    return index;
  }

  /** Under the lock: copies a record as it is; its ring offset, or -1 when there is no room. */
  #copy(bytes: Buffer): number {
    const off = this.#room(bytes.length);
    if (off < 0) return -1;
    bytes.copy(this.ring.buf, off);
    this.#advance(bytes.length);
    return off;
  }

  /** Bytes a PAD made at the wrap point, waiting to be published with the record after it. */
  #pad = 0;

  /** Where `len` bytes go (after a PAD at the wrap point if needed), or -1 when they do not fit. */
  #room(len: number): number {
    const { ctl, size, mask, dv, u8 } = this.ring;
    const w = Atomics.load(ctl, Ctl.WRITE_POS) >>> 0;
    const free = size - u32diff(w, Atomics.load(ctl, Ctl.READ_POS));
    const off = w & mask;
    const contiguous = size - off;
    if (contiguous >= len) {
      if (free < len) return -1;
      this.#pad = 0;
      return off;
    }
    if (free < contiguous + len) return -1;
    dv.setUint32(off, contiguous, true);
    u8[off + 4] = Kind.PAD;
    this.#pad = contiguous;
    return 0;
  }

  #advance(len: number): void {
    const { ctl } = this.ring;
    const end = ((Atomics.load(ctl, Ctl.WRITE_POS) >>> 0) + this.#pad + len) >>> 0;
    this.#pad = 0;
    Atomics.store(ctl, Ctl.WRITE_POS, end | 0);
    if (this.#mirror !== undefined) mirrorWritePos(this.#mirror, end | 0);
    this.lastEnd = end;
  }

  /**
   * Under the lock: the event gets an index that a DROPPED record will stand for. Ordered so a
   * death between any two steps leaves the index covered once: taken first (NEXT_INDEX), then
   * recorded as pending, then PUBLISHED_NEXT; a successor that finds PUBLISHED_NEXT behind marks
   * it, and the consumer drops a marker for indexes it has already seen. The consumer counts every
   * marked index as it writes the marker, so counts are exact too.
   */
  #drop(ts: number): void {
    const { claim, ctl } = this.ring;
    const index = claim[Claim.NEXT_INDEX]!;
    const owed = claim[Claim.PUBLISHED_NEXT]! < index;
    claim[Claim.NEXT_INDEX] = index + 1;
    // A dead holder's range still waits for room: this index joins it (one marker, in order).
    if (owed) return;
    if (Atomics.load(ctl, Ctl.DROPS_PENDING) === 0) {
      claim[Claim.DROP_FIRST] = index;
      claim[Claim.DROP_COUNT] = 1;
      claim[Claim.DROP_TS] = ts;
      Atomics.store(ctl, Ctl.DROPS_PENDING, 1);
    } else {
      claim[Claim.DROP_COUNT] = claim[Claim.DROP_COUNT]! + 1;
    }
    claim[Claim.PUBLISHED_NEXT] = index + 1;
  }

  /** Same rule as the single producer's: notify only a deep sleeper, or a napper facing a
   *  half-full ring (or a producer about to wait for room). */
  #wake(urgent = false): void {
    const { ctl, size } = this.ring;
    const svc = this.#waker.svc;
    const state = Atomics.load(svc, Svc.WORKER_STATE);
    if (state === WorkerState.SLEEPING) return wakeWriter(svc);
    if (state === WorkerState.NAPPING && (urgent || u32diff(Atomics.load(ctl, Ctl.WRITE_POS), Atomics.load(ctl, Ctl.READ_POS)) > size >>> 1)) wakeWriter(svc);
  }
}

/**
 * For the writer (and an owner with no writer): a claim left by a dead producer, or dropped
 * indexes nobody has published because no producer came back, are settled here; true while
 * something is still owed (the caller keeps looking rather than sleeping).
 */
export function settleClaims(p: SharedProducer): boolean {
  const { ctl, claim } = p.ring;
  const holder = Atomics.load(ctl, Ctl.CLAIM);
  // Unlocked reads: a stale answer only means one more look on the next pass.
  if (holder === 0 && Atomics.load(ctl, Ctl.DROPS_PENDING) === 0 && claim[Claim.PUBLISHED_NEXT] === claim[Claim.NEXT_INDEX]) return false;
  // A held lock is the common case with busy producers: looking at the holder's task (a read of
  // /proc) is kept for a holder seen on it for DEATH_CHECK_MS, as the claimers do.
  if (holder !== 0 && (!p.healthDue(holder) || holderAlive(holder))) return true;
  if (!p.tryLock()) return true;
  try {
    return !p.settle();
  } finally {
    p.unlock();
  }
}
