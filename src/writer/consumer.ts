// Turns published ring records into lines in the file. Whoever holds the ring's LOCK runs it: the
// writer worker in normal operation, the caller's thread on exit and in flushSync(). Everything it
// must hand over between the two lives in the ring header.

import * as fs from 'node:fs';
import { Flag, Kind } from '../ring/records.js';
import { areaKeyName } from '../ring/key-areas.js';
import type { KeyTable } from '../ring/keys.js';
import { u32diff, type RingViews } from '../ring/memory.js';
import { CLOSED_FD, Ctl, Num } from '../ring/slots.js';
import { LineBuilder, type Source } from './line-builder.js';
import type { Redaction } from './redact.js';
import { droppedLine, projectedLine, segmentPath } from '../files/format.js';
import type { WriterProjection } from './record-projection.js';
import { lastLineOfSet, scanTail } from '../files/segments.js';
import { SegmentWriter, WriteFault, type FileIo } from './segment-writer.js';

export interface ConsumerHooks {
  /** The bytes of an EXTERNAL record, or undefined when they have not arrived yet. */
  external(id: number): Source | undefined;
  /** Called after an EXTERNAL record is written, so its memory can go. */
  externalDone(id: number): void;
  /** A persistent write fault; `lost` events of this batch will never reach the file. */
  fault(err: unknown, lost: number): void;
  /** Writing works again after a fault. */
  recovered(): void;
  /** A rotation completed: `segment` is the new current one, every earlier one is closed. */
  rotated?(segment: number): void;
}

/** After a persistent fault, records are counted as lost without a write attempt for this long,
 *  doubling per failed retry up to MAX: the disk gets a slow, steady probe, not a hammering. */
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2000;

export type DrainResult = 'idle' | 'waiting-external';

export class RingConsumer {
  readonly builder: LineBuilder;
  readonly writer: SegmentWriter;
  /** Records whose last index is at or below this are already in the file. */
  private skipThrough = -1;
  private retryDelay = 0;
  private retryAt = 0;
  /** End offset, in the writer's pending bytes, of a lost-range marker not yet written; -1: none. */
  private markerEnd = -1;
  /** A write succeeded since the last fault. */
  private wroteSinceFault = false;
  /** Last index covered by the last record handed to the writer (what a failed commit loses). */
  private lastBuilt = -1;

  constructor(
    private readonly ring: RingViews,
    keys: KeyTable,
    private readonly basePath: string,
    rotateBytes: number,
    private readonly hooks: ConsumerHooks,
    redaction: Redaction | null,
    io?: FileIo,
    /** Durable projection (the writer thread's consumer only: the caller's thread never projects,
     *  so a drain there writes every event). */
    private readonly projection: WriterProjection | null = null,
  ) {
    // Keys interned by producers other than the owner are defined in the ring itself.
    keys.areas = (id) => areaKeyName(ring, id);
    this.builder = new LineBuilder(keys, redaction);
    this.writer = new SegmentWriter(ring, basePath, rotateBytes, io, (len) => this.written(len), (segment) => hooks.rotated?.(segment));
  }

  /**
   * Consumes every record published so far. Returns 'waiting-external' when it stopped at an
   * EXTERNAL record whose bytes have not arrived (the worker yields to its message queue then).
   */
  drain(final = false): DrainResult {
    // A last drain (close, flushSync, exit) tries the disk once more whatever the backoff says.
    if (final) this.retryAt = 0;
    const { ctl, dv, u8, mask } = this.ring;
    let r = Atomics.load(ctl, Ctl.READ_POS) >>> 0;
    const w = Atomics.load(ctl, Ctl.WRITE_POS) >>> 0;
    while (r !== w) {
      const off = r & mask;
      const len = dv.getUint32(off, true);
      const kind = u8[off + 4];
      if (kind === Kind.EXTERNAL) {
        const id = dv.getUint32(off + 8, true);
        const src = this.hooks.external(id);
        if (src === undefined) {
          this.endRun(r);
          this.commit();
          this.endOfDrain();
          return 'waiting-external';
        }
        this.record(src, 0);
        this.hooks.externalDone(id);
      } else if (kind !== Kind.PAD) {
        this.record(this.ring, off);
      }
      r = (r + len) >>> 0;
      // Ring space is given back only up to a run of left-out events whose marker is not pending
      // yet: a holder that dies before writing it leaves the run to its successor to read again.
      if (this.projection === null || !this.projection.runOpen) this.writer.advance(r);
    }
    if (final) this.settleDebt();
    // Every drain ends with the file accounting for every index it consumed, so flush() (which
    // waits for the last index to be published) never waits on a run of left-out events.
    this.endRun(r);
    this.commit();
    this.endOfDrain();
    return 'idle';
  }

  /** Writes the marker of a lost range that no later record has carried into the file yet. */
  private settleDebt(): void {
    const num = this.ring.num;
    if (num[Num.OWED_FIRST]! < 0) return;
    this.tryPayDebt(num[Num.OWED_LAST]! + 1);
  }

  /** Writes one record that is not in the ring (the caller's overflow queue at exit). */
  direct(src: Source, off: number): void {
    this.record(src, off);
  }

  /** Writes out whatever is pending and publishes it. */
  commit(): void {
    try {
      this.writer.commit();
    } catch (err) {
      if (!(err instanceof WriteFault)) throw err;
      this.failed(err, this.writer.discard());
    }
  }

  /**
   * Makes the file consistent after a holder died mid-batch (or at the first hold): cuts a torn
   * last line and resumes after the last whole line, so nothing is written twice.
   */
  recover(): void {
    const { ctl, num } = this.ring;
    if (Atomics.load(ctl, Ctl.PUBLISHING) === 1) {
      // The previous holder died inside publish(): undo its counters unless it got as far as
      // storing READ_POS (then everything else was stored before it).
      if (Atomics.load(ctl, Ctl.READ_POS) !== Atomics.load(ctl, Ctl.PUB_TARGET)) {
        num[Num.LINES] = num[Num.PREV_LINES]!;
        num[Num.LAST_INDEX] = num[Num.PREV_LAST_INDEX]!;
        num[Num.PROJECTED] = num[Num.PREV_PROJECTED]!;
      }
      Atomics.store(ctl, Ctl.PUBLISHING, 0);
    }
    const segment = this.currentSegment();
    const where = segmentPath(this.basePath, segment);
    const tail = scanTail(this.writer.currentFd(), where);
    const last = tail.last ?? (segment > 0 ? lastLineOfSet(this.basePath, segment - 1) : null);
    num[Num.FILE_BYTES] = tail.size;
    const lastIndex = Math.max(num[Num.LAST_INDEX]!, last ? last.lastIndex : -1);
    this.skipThrough = lastIndex;
    num[Num.LAST_INDEX] = lastIndex;
    Atomics.store(ctl, Ctl.WRITTEN, (lastIndex + 1) | 0);
  }

  /** Serves a flush({ fsync: true }) whose events were all written before it asked. */
  serveFsync(): void {
    this.writer.maybeFsync();
  }

  /**
   * The segment the shared fd really belongs to. A holder killed in the middle of a rotation may
   * have stored the next segment's number but not its fd yet: then the fd is still the previous
   * segment's, and writing on under the new number would let the next rotation truncate a file
   * that holds lines.
   */
  private currentSegment(): number {
    const { ctl } = this.ring;
    const segment = Atomics.load(ctl, Ctl.SEGMENT);
    // Closed (idle) between two batches, never in the middle of a rotation: SEGMENT is current.
    if (segment === 0 || Atomics.load(ctl, Ctl.FD) === CLOSED_FD) return segment;
    const fdStat = fs.fstatSync(Atomics.load(ctl, Ctl.FD));
    let named: fs.Stats | undefined;
    try {
      named = fs.statSync(segmentPath(this.basePath, segment));
    } catch {
      named = undefined;
    }
    if (named && named.ino === fdStat.ino && named.dev === fdStat.dev) return segment;
    try {
      const previous = fs.statSync(segmentPath(this.basePath, segment - 1));
      if (previous.ino === fdStat.ino && previous.dev === fdStat.dev) {
        Atomics.store(ctl, Ctl.SEGMENT, segment - 1);
        return segment - 1;
      }
    } catch {
      // Neither name is the fd's file (renamed or removed under us): keep what the header says.
    }
    return segment;
  }

  /** Bytes published but not yet consumed. */
  backlog(): number {
    const { ctl } = this.ring;
    return u32diff(Atomics.load(ctl, Ctl.WRITE_POS), Atomics.load(ctl, Ctl.READ_POS));
  }

  private record(src: Source, off: number): void {
    const { u8, dv } = src;
    const kind = u8[off + 4];
    if (kind === Kind.DROPPED && (u8[off + 5]! & Flag.IF_MISSING) !== 0 && !this.onlyMissing(src, off)) return;
    const first = dv.getFloat64(off + 8, true);
    const last = kind === Kind.DROPPED ? first + dv.getFloat64(off + 16, true) - 1 : first;
    const events = kind === Kind.DROPPED ? 0 : 1;
    const num = this.ring.num;
    this.lastBuilt = last;
    if (last <= this.skipThrough) {
      // Written by a holder that died before publishing it: count it now.
      this.skim(src, off);
      num[Num.LINES] = num[Num.LINES]! + events;
      return;
    }
    // An earlier loss is marked first, where those events would have been. A failure to write the
    // marker starts a new backoff, so this record is then lost below, like any other during one.
    if (num[Num.OWED_FIRST]! >= 0 && this.markerEnd < 0 && !this.backingOff()) this.tryPayDebt(first);
    if (this.backingOff()) {
      // Lost too, and owed a marker.
      this.skim(src, off);
      this.owe(first, last);
      num[Num.LOST] = num[Num.LOST]! + events;
      this.writer.publish(last, 0);
      return;
    }
    // Judged once per event, in index order, before its line is built (a snapshot left out is never built).
    const projection = kind === Kind.EVENT ? this.projection : null;
    const verdict = projection === null ? 'keep' : projection.judgeRecord(this.builder, src, off);
    if (verdict === 'leave') {
      projection!.leftOut(first, dv.getFloat64(off + 16, true));
      return;
    }
    const out = this.writer.out;
    const start = out.len;
    try {
      this.builder.build(src, off, out);
    } catch (err) {
      out.len = start;
      throw err;
    }
    if (verdict === 'line' && !projection!.keepLine(out.buf, start, out.len)) {
      out.len = start;
      projection!.leftOut(first, dv.getFloat64(off + 16, true));
      return;
    }
    let handedOver = false;
    try {
      const at = this.closeRun(start);
      handedOver = true;
      this.writer.lineEnd(at, last, events);
    } catch (err) {
      if (!(err instanceof WriteFault)) throw err;
      // Once handed over, discard() counts the line with the rest of the batch, exactly once.
      this.failed(err, this.writer.discard() + (handedOver ? 0 : events), last);
    }
  }

  /** Ends the open run of left-out events (its marker), then gives back the ring up to `r`. A
   *  failed write counts the run lost with the rest of the batch, as any line's. */
  private endRun(r: number): void {
    try {
      this.closeRun();
    } catch (err) {
      if (!(err instanceof WriteFault)) throw err;
      this.failed(err, this.writer.discard());
    }
    this.writer.advance(r);
  }

  /**
   * Writes the marker of the events projection left out since the last kept line, before the line
   * built at `lineStart` (if any: the line's bytes move after the marker). Returns where that line
   * now starts.
   */
  private closeRun(lineStart = this.writer.out.len): number {
    const run = this.projection?.takeRun();
    if (run === undefined) return lineStart;
    const out = this.writer.out;
    // Rare (once per kept snapshot after a run), so a copy of the one line is fine.
    const line = lineStart < out.len ? Buffer.from(out.buf.subarray(lineStart, out.len)) : undefined;
    out.len = lineStart;
    this.writer.appendText(projectedLine(run.first, run.emittedAtMs, run.count), run.first + run.count - 1, 0, run.count);
    const at = out.len;
    if (line !== undefined) out.bytes(line, 0, line.length);
    return at;
  }

  /**
   * A loss marker for indexes a dying producer took: the part of its range this consumer has not
   * seen is what was lost (the producer may have published some of it just before it died). The
   * record is cut down to that part in place; false when nothing of it is missing.
   */
  private onlyMissing(src: Source, off: number): boolean {
    const { dv } = src;
    const first = dv.getFloat64(off + 8, true);
    const last = first + dv.getFloat64(off + 16, true) - 1;
    const seen = Math.max(this.lastBuilt, this.skipThrough, this.ring.num[Num.LAST_INDEX]!);
    if (last <= seen) return false;
    const from = Math.max(first, seen + 1);
    dv.setFloat64(off + 8, from, true);
    dv.setFloat64(off + 16, last - from + 1, true);
    const died = (dv.getUint8(off + 5) & Flag.PRODUCER_DIED) !== 0;
    dv.setUint8(off + 5, 0);
    Atomics.add(this.ring.ctl, died ? Ctl.PRODUCER_LOST : Ctl.CLAIM_DROPPED, last - from + 1);
    return true;
  }

  /** After a persistent fault, records are counted lost without a write until the retry time. */
  private backingOff(): boolean {
    return this.retryDelay > 0 && Date.now() < this.retryAt;
  }

  /** Builds a record that is not written: its key definitions are needed by later records. */
  private skim(src: Source, off: number): void {
    const out = this.writer.out;
    const start = out.len;
    try {
      this.builder.build(src, off, out);
    } finally {
      out.len = start;
    }
  }

  private tryPayDebt(nextIndex: number): void {
    try {
      this.payDebt(nextIndex);
    } catch (err) {
      if (!(err instanceof WriteFault)) throw err;
      this.failed(err, this.writer.discard());
    }
  }

  /**
   * The marker line for a lost range, written where those events would have been. The range stays
   * owed until the marker's bytes are in the file, so a failed write extends it instead of
   * forgetting it.
   */
  private payDebt(nextIndex: number): void {
    if (this.markerEnd >= 0) return;
    const num = this.ring.num;
    const first = num[Num.OWED_FIRST]!;
    const last = Math.max(num[Num.OWED_LAST]!, nextIndex - 1);
    const count = last - first + 1;
    this.writer.appendText(droppedLine(first, Date.now(), count), last, 0);
    this.markerEnd = this.writer.out.len;
  }

  /** After a successful write of `len` bytes from the front of the pending ones. */
  private written(len: number): void {
    if (this.markerEnd >= 0) {
      if (len >= this.markerEnd) {
        const num = this.ring.num;
        num[Num.OWED_FIRST] = -1;
        num[Num.OWED_LAST] = -1;
        this.markerEnd = -1;
      } else {
        this.markerEnd -= len;
      }
    }
    this.wroteSinceFault = true;
  }

  /** A fault streak ends with a drain that wrote and did not fail (a write that succeeds just
   *  before a rotation that fails again is not a recovery). */
  private endOfDrain(): void {
    if (this.retryDelay === 0 || !this.wroteSinceFault) return;
    this.retryDelay = 0;
    this.hooks.recovered();
  }

  private owe(first: number, last: number): void {
    const num = this.ring.num;
    if (num[Num.OWED_FIRST]! < 0) num[Num.OWED_FIRST] = first;
    num[Num.OWED_LAST] = last;
  }

  private failed(err: WriteFault, lost: number, through = -1): void {
    // Events left out and not yet marked are in the lost range below, and counted with it.
    lost += this.projection?.reset() ?? 0;
    this.markerEnd = -1;
    this.wroteSinceFault = false;
    const num = this.ring.num;
    const first = num[Num.LAST_INDEX]! + 1;
    const last = Math.max(through, this.lastBuilt);
    this.owe(first, last);
    num[Num.LOST] = num[Num.LOST]! + lost;
    // Reported before publishing: a flush() woken by the publish must find the fault counted.
    this.hooks.fault(err.cause, lost);
    this.writer.publish(last, 0);
    this.retryDelay = this.retryDelay === 0 ? RETRY_FIRST_MS : Math.min(RETRY_MAX_MS, this.retryDelay * 2);
    this.retryAt = Date.now() + this.retryDelay;
  }
}
