// What a sink holds on the caller's thread, outside the ring, in index order: records queued
// behind a full ring (overload 'buffer'), records too big for the ring (each in shared memory of
// its own, announced to the writer, with a small EXTERNAL placeholder in the ring), and overload
// drops not yet written as an `events_dropped` marker. The pump moves it into the ring as room
// appears; a drain on this thread writes it straight to the file.

import { reached } from '../ring/memory.js';
import { Kind, RECORD_HEADER } from '../ring/records.js';
import { Ctl } from '../ring/slots.js';
import type { RingConsumer } from '../writer/consumer.js';
import { sourceOf, type Source } from '../writer/line-builder.js';
import { droppedRecord, EXTERNAL_RECORD, externalRecord } from './encoder.js';
import type { RingProducer } from './producer.js';

/** While anything is queued, try to move it into the ring this often. */
export const PUMP_INTERVAL_MS = 1;

/**
 * Queued records are kept back to back in chunks, not each in a Buffer of its own: with the ring
 * full, allocating a Buffer per record (and the collector's work for their backing stores) took
 * about a fifth of the caller's thread in the saturated phase of the pipeline benchmark (profile,
 * large corpus). Records are self-describing (length first) and 8-byte multiples, so a chunk reads
 * as a Source like the ring. A queue starts with a small chunk and doubles up to CHUNK_MAX, so a
 * sink that queues a little holds little; the one small chunk a queue empties is kept for the
 * next time (at the edge of saturation a queue empties and refills at every event).
 */
const CHUNK_MIN = 16 * 1024;
const CHUNK_MAX = 1 << 20;
/** A record this big gets a buffer of its exact size: a chunk's unused tail stays under it, so the
 *  queue's memory stays within ~1/16 of the bytes it counts against maxBufferBytes. */
const OWN_BUFFER_BYTES = CHUNK_MAX / 16;

interface Chunk {
  readonly buf: Buffer;
  readonly src: Source;
  /** Bytes in use from the start. */
  end: number;
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

  /** Queued records, oldest first: from #headOff of the first chunk to the last chunk's end. */
  #chunks: Chunk[] = [];
  #headOff = 0;
  #queued = 0;
  /** An emptied CHUNK_MIN chunk, kept for the queue's next start. */
  #spare: Chunk | undefined;
  /** Set while writeInto() runs: a pump from a callback of its writes (a fault reported to a
   *  listener that logs) must not move the records it is walking. */
  #writing = false;
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
    return this.#queued === 0 && this.#dropCount === 0;
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
      this.#append(externalRecord(id));
      // Held: the record's own memory, counted with its placeholder's bytes (#append).
      this.#account(record.length);
    } else {
      this.#append(record);
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
    if (this.#writing) return;
    this.reclaim();
    while (this.#queued > 0) {
      const chunk = this.#chunks[0]!;
      const at = this.#headOff;
      const len = chunk.buf.readUInt32LE(at);
      if (!this.#producer.copy(chunk.buf.subarray(at, at + len))) break;
      // An EXTERNAL placeholder's bytes stay held, with its record's, until the writer reads past it.
      const ext = externalAt(this.#externals, chunk.buf, at);
      if (ext !== undefined) ext.endPos = this.#producer.position;
      else this.#bytes -= len;
      this.#shift(len);
    }
    if (this.#queued === 0 && this.#dropCount > 0) {
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
    this.#writing = true;
    try {
      // Records queued meanwhile (by such a callback) come after, with later indexes: written too.
      while (this.#queued > 0) {
        const chunk = this.#chunks[0]!;
        const at = this.#headOff;
        const len = chunk.buf.readUInt32LE(at);
        const ext = externalAt(this.#externals, chunk.buf, at);
        if (ext !== undefined) consumer.direct(ext.src, 0);
        else consumer.direct(chunk.src, at);
        this.#shift(len);
      }
    } finally {
      this.#writing = false;
    }
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
    this.#append(record);
  }

  /** Queues a copy of the record that fills `record` (its length is its first field). */
  #append(record: Uint8Array): void {
    const len = record.length;
    let tail = this.#chunks[this.#chunks.length - 1];
    if (tail === undefined || tail.buf.length - tail.end < len) {
      if (len < OWN_BUFFER_BYTES && tail === undefined && this.#spare !== undefined) {
        tail = this.#spare;
        this.#spare = undefined;
      } else {
        const size = len >= OWN_BUFFER_BYTES ? len : tail === undefined ? CHUNK_MIN : Math.min(CHUNK_MAX, 2 * tail.buf.length);
        // Never a slice of Node's shared pool (allocUnsafe could be, were Buffer.poolSize raised):
        // the chunk starts its own memory, so a record's 8-byte alignment there is its alignment
        // in memory (STR16 strings are read in place through a Uint16Array).
        const buf = Buffer.allocUnsafeSlow(size);
        tail = { buf, src: sourceOf(buf), end: 0 };
      }
      this.#chunks.push(tail);
    }
    tail.buf.set(record, tail.end);
    tail.end += len;
    this.#queued++;
    this.#account(len);
  }

  /** The oldest queued record, `len` bytes, is gone: a chunk emptied is let go of (a small one
   *  kept as the spare). */
  #shift(len: number): void {
    this.#queued--;
    this.#headOff += len;
    const head = this.#chunks[0]!;
    if (this.#headOff === head.end) {
      this.#chunks.shift();
      this.#headOff = 0;
      if (head.buf.length === CHUNK_MIN) {
        head.end = 0;
        this.#spare = head;
      }
    }
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

/** The external record whose placeholder is the queued record at `at`, or undefined for any other. */
function externalAt(externals: Map<number, External>, buf: Buffer, at: number): External | undefined {
  return buf[at + 4] === Kind.EXTERNAL ? externals.get(buf.readUInt32LE(at + RECORD_HEADER))! : undefined;
}
