// The producer half of the ring, mirror of the writer's RingConsumer: where the next record goes,
// how much room there is, publishing records (in place, or copied with a PAD at the wrap point)
// and waking the writer when it sleeps. Only the caller's thread of one sink writes WRITE_POS.

import { Kind } from '../ring/records.js';
import { u32diff, wakeWriter, type RingViews, type Waker } from '../ring/memory.js';
import { Ctl, Svc, WorkerState } from '../ring/slots.js';
import { mirrorWritePos, ringMirror, type Mirror } from '../ring/worker-rings.js';

export class RingProducer {
  readonly ring: RingViews;
  /** Local copy of WRITE_POS (only this thread writes it). */
  #w = 0;
  /** Lower bound of free ring bytes; refreshed from READ_POS only when it looks too small. */
  #free: number;
  #highWater = 0;

  readonly #waker: Waker;
  /** The main thread's mirror of this ring, for a sink opened in a worker thread. */
  readonly #mirror: Mirror | undefined;

  constructor(ring: RingViews, waker: Waker) {
    this.ring = ring;
    this.#waker = waker;
    this.#free = ring.size;
    this.#mirror = ringMirror(ring.ctl);
  }

  /** Free-running position after the last published record. */
  get position(): number {
    return this.#w;
  }

  /** Most ring bytes ever in use at once. */
  get highWater(): number {
    return this.#highWater;
  }

  /** Where a record may be made in place: [offset, limit) of the ring's data, up to the wrap point. */
  room(): { offset: number; limit: number } {
    const { size, mask } = this.ring;
    const offset = this.#w & mask;
    const contiguous = size - offset;
    if (this.#free < contiguous && this.#free < size >>> 1) this.refreshFree();
    return { offset, limit: offset + Math.min(contiguous, this.#free) };
  }

  /** Copies a finished record into the ring (wrapping with a PAD if needed); false when no room. */
  copy(bytes: Uint8Array): boolean {
    const ring = this.ring;
    const len = bytes.length;
    let off = this.#w & ring.mask;
    const contiguous = ring.size - off;
    if (this.#free < len + (contiguous < len ? contiguous : 0)) this.refreshFree();
    if (contiguous < len) {
      if (this.#free < contiguous + len) return false;
      ring.dv.setUint32(off, contiguous, true);
      ring.u8[off + 4] = Kind.PAD;
      this.publish(contiguous);
      off = 0;
    }
    if (this.#free < len) return false;
    ring.u8.set(bytes, off);
    this.publish(len);
    return true;
  }

  refreshFree(): void {
    const { ctl, size } = this.ring;
    this.#free = size - u32diff(this.#w, Atomics.load(ctl, Ctl.READ_POS));
  }

  /** Makes the `len` bytes after WRITE_POS visible to the writer. */
  publish(len: number): void {
    const { ctl, size } = this.ring;
    this.#w = (this.#w + len) >>> 0;
    this.#free -= len;
    Atomics.store(ctl, Ctl.WRITE_POS, this.#w | 0);
    if (this.#mirror !== undefined) mirrorWritePos(this.#mirror, this.#w | 0);
    // #free only shrinks between refreshes; refresh once it says the ring is half full, so the
    // high-water mark and the wake decision below see the writer's real progress.
    if (this.#free < size >>> 1) this.refreshFree();
    const used = size - this.#free;
    if (used > this.#highWater) this.#highWater = used;
    const svc = this.#waker.svc;
    const state = Atomics.load(svc, Svc.WORKER_STATE);
    // A napping writer polls every millisecond; only a deep sleeper, or a napper facing a half-full
    // ring, is worth the cost of a notify.
    if (state === WorkerState.SLEEPING || (state === WorkerState.NAPPING && used > size >>> 1)) wakeWriter(svc);
  }
}
