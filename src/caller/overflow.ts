// What a sink holds on the caller's thread, outside the ring, in index order: records queued
// behind a full ring (overload 'buffer'), records too big for the ring (each in shared memory of
// its own, announced to the writer, with a small EXTERNAL placeholder in the ring), and overload
// drops not yet written as an `events_dropped` marker. The pump moves it into the ring as room
// appears; a drain on this thread writes it straight to the file.

import { reached } from '../ring/memory.js';
import { Ctl } from '../ring/slots.js';
import type { RingConsumer } from '../writer/consumer.js';
import { sourceOf, type Source } from '../writer/line-builder.js';
import { droppedRecord, EXTERNAL_RECORD, externalRecord } from './encoder.js';
import type { RingProducer } from './producer.js';

/** While anything is queued, try to move it into the ring this often. */
export const PUMP_INTERVAL_MS = 1;

interface Queued {
  readonly bytes: Buffer;
  /** Set for an EXTERNAL placeholder: the id of the record it stands for. */
  readonly externalId?: number;
}

interface External {
  readonly sab: SharedArrayBuffer;
  readonly src: Source;
  /** Ring position after its placeholder, once the placeholder is in the ring; -1 before. */
  endPos: number;
}

export class Overflow {
  readonly #producer: RingProducer;
  readonly #ctl: Int32Array;
  /** Hands a new external record's memory to the writer (before its placeholder is in the ring). */
  readonly #postExternal: (id: number, sab: SharedArrayBuffer) => void;
  /** Told whether anything is held here after each change (a worker's sink: the main thread's exit waits for it). */
  readonly #onHeld: (held: boolean) => void;

  readonly #queue: (Queued | undefined)[] = [];
  #head = 0;
  readonly #externals = new Map<number, External>();
  #nextExternalId = 1;
  #dropFirst = -1;
  #dropCount = 0;
  #dropTs = 0;
  #bytes = 0;
  #highWater = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    producer: RingProducer,
    ctl: Int32Array,
    postExternal: (id: number, sab: SharedArrayBuffer) => void,
    onHeld: (held: boolean) => void,
  ) {
    this.#producer = producer;
    this.#ctl = ctl;
    this.#postExternal = postExternal;
    this.#onHeld = onHeld;
  }

  /** Bytes held: queued records, and external records until the writer has read past them. */
  get bytes(): number {
    return this.#bytes;
  }

  get highWater(): number {
    return this.#highWater;
  }

  /** Nothing queued and no drop pending: a new record may go straight into the ring. */
  get idle(): boolean {
    return this.#head === this.#queue.length && this.#dropCount === 0;
  }

  /** Whether `cost` more bytes fit under `max`; a record always fits when nothing is held. */
  admits(cost: number, max: number): boolean {
    return this.#bytes === 0 || this.#bytes + cost <= max;
  }

  /** An event dropped by the overload policy: it joins the pending marker (one per run of drops). */
  drop(index: number, ts: number): void {
    if (this.#dropCount === 0) {
      this.#dropFirst = index;
      this.#dropTs = ts;
    }
    this.#dropCount++;
    this.#onHeld(true);
    this.#schedule();
  }

  /** Queues a finished record (copied), behind the marker of any drops before it, and pumps. */
  queue(record: Uint8Array, external: boolean): void {
    this.#materializeDrops();
    if (external) {
      const id = this.addExternal(record, record.length);
      this.#queue.push({ bytes: externalRecord(id), externalId: id });
      this.#account(record.length + EXTERNAL_RECORD);
    } else {
      this.#push(Buffer.from(record));
    }
    this.#onHeld(true);
    this.pump();
  }

  /** Copies `len` bytes of `record` into shared memory of their own, announced to the writer; its id. */
  addExternal(record: Uint8Array, len: number): number {
    const id = this.#nextExternalId++;
    const sab = new SharedArrayBuffer(len);
    const src = sourceOf(sab);
    src.buf.set(record.subarray(0, len));
    this.#externals.set(id, { sab, src, endPos: -1 });
    this.#postExternal(id, sab);
    return id;
  }

  /** A claimed external record's placeholder ends at `endPos` in the ring. */
  placedExternal(id: number, endPos: number): void {
    const ext = this.#externals.get(id)!;
    ext.endPos = endPos;
    this.#account(ext.src.buf.length + EXTERNAL_RECORD);
  }

  /** A claimed external record was refused: its memory is let go of. */
  cancelExternal(id: number): void {
    this.#externals.delete(id);
  }

  /** The memory of external record `id`, for the consumer that meets its placeholder. */
  external(id: number): Source | undefined {
    return this.#externals.get(id)?.src;
  }

  /** Every external record not yet read, announced again (to a writer that has just started). */
  announceExternals(post: (id: number, sab: SharedArrayBuffer) => void): void {
    for (const [id, ext] of this.#externals) post(id, ext.sab);
  }

  /** Moves queued records into the ring while they fit; keeps a timer going while any remain. */
  pump(): void {
    this.reclaim();
    const queue = this.#queue;
    while (this.#head < queue.length) {
      const item = queue[this.#head]!;
      if (!this.#producer.copy(item.bytes)) break;
      queue[this.#head++] = undefined;
      if (item.externalId !== undefined) this.#externals.get(item.externalId)!.endPos = this.#producer.position;
      else this.#bytes -= item.bytes.length;
    }
    if (this.#head === queue.length && this.#head > 0) {
      queue.length = 0;
      this.#head = 0;
    }
    if (this.#head === queue.length && this.#dropCount > 0) {
      this.#materializeDrops();
      this.pump();
      return;
    }
    this.#onHeld(!this.idle);
    if (!this.idle) this.#schedule();
  }

  /** External records the writer has read past no longer count as held. */
  reclaim(): void {
    if (this.#externals.size === 0) return;
    const readPos = Atomics.load(this.#ctl, Ctl.READ_POS);
    for (const [id, ext] of this.#externals) {
      if (ext.endPos < 0 || !reached(readPos, ext.endPos)) break;
      this.#externals.delete(id);
      this.#bytes -= ext.src.buf.length + EXTERNAL_RECORD;
    }
  }

  /**
   * Writes what is held through `consumer`, which holds the file and has drained the ring (so
   * every record here comes after what it wrote), then forgets it all. The caller commits.
   */
  writeInto(consumer: RingConsumer): void {
    for (let i = this.#head; i < this.#queue.length; i++) {
      const item = this.#queue[i]!;
      consumer.direct(item.externalId !== undefined ? this.#externals.get(item.externalId)!.src : sourceOf(item.bytes), 0);
    }
    this.#queue.length = 0;
    this.#head = 0;
    if (this.#dropCount > 0) {
      consumer.direct(sourceOf(droppedRecord(this.#dropFirst, this.#dropCount, this.#dropTs)), 0);
      this.#dropCount = 0;
    }
    this.#externals.clear();
    this.#bytes = 0;
    this.#onHeld(false);
  }

  /** The sink is closed: no more timers. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Pending drops become one DROPPED record, queued ahead of whatever comes next. */
  #materializeDrops(): void {
    if (this.#dropCount === 0) return;
    const record = droppedRecord(this.#dropFirst, this.#dropCount, this.#dropTs);
    this.#dropCount = 0;
    this.#push(record);
  }

  #push(bytes: Buffer): void {
    this.#queue.push({ bytes });
    this.#account(bytes.length);
  }

  #account(bytes: number): void {
    this.#bytes += bytes;
    if (this.#bytes > this.#highWater) this.#highWater = this.#bytes;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.pump();
    }, PUMP_INTERVAL_MS);
    // The exit flush writes whatever is still queued, so a pending pump must not hold the process.
    this.#timer.unref();
  }
}
