// JsonlEventSink, the caller's side. handleEvent stamps the index and time, snapshots the event
// into the sink's ring (producer.ts), and returns; the writer thread (src/writer/entry.ts) does the
// rest. What does not fit waits in the overflow (overflow.ts) or is dropped by policy, counted in
// losses.ts. When no writer can (not started yet at exit, or dead) this thread writes the ring
// itself with the same consumer code (drain-here.ts), so exit never depends on the writer. Once a
// handle shares the ring with other threads, records are placed under the claim lock instead
// (src/ring/claim.ts).

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Worker } from 'node:worker_threads';
import { fdOpener, mayClose } from '../threads/descriptors.js';
import { ErrorCode, SinkError } from '../errors.js';
import { segmentPath } from '../files/format.js';
import { Janitor } from '../files/janitor.js';
import { lockPath, type PathLock } from '../files/path-lock.js';
import { emptySet, lastLineOfSet, RESUMED_SEGMENT, resumeSegment, scanTail } from '../files/segments.js';
import { CLOSED, DROPPED, SharedProducer, settleClaims, type PlaceOptions, type SharedRing } from '../ring/claim.js';
import { KeyArea } from '../ring/key-areas.js';
import { createRing, reached, u32diff, wakeWriter, writerHasSlack, type RingViews } from '../ring/memory.js';
import { Claim, CLOSED_FD, Ctl, Num } from '../ring/slots.js';
import { waitAsync, waitSync } from '../ring/wait.js';
import { mirrorHeld, releaseMirror, takeMirror, type Mirror } from '../ring/worker-rings.js';
import type { AgentEvent, AgentEventSink, EventContext, SinkStats } from '../types.js';
import type { FromWriter } from '../writer/messages.js';
import { announce } from './adopt.js';
import { DrainHere } from './drain-here.js';
import { EventEncoder, EXTERNAL_FRACTION, EXTERNAL_RECORD, externalRecord, JsonText, Scratch } from './encoder.js';
import { trackForExit, untrackForExit, type ExitFlushable } from './exit.js';
import { Losses } from './losses.js';
import { describe, resolveOptions, ROTATE_BYTES, type JsonlEventSinkOptions, type ResolvedOptions } from './options.js';
import { Overflow, PUMP_INTERVAL_MS } from './overflow.js';
import { RingProducer } from './producer.js';
import { errorText, snapshot, SNAPSHOT_PUBLISHED, SNAPSHOT_REJECTED } from './snapshot.js';
import { WriterLink } from './writer-service.js';

/** The first scratch buffer; it doubles as needed for big events. */
const SCRATCH_INITIAL = 64 * 1024;
/** Blocking waits re-check the writer's health at least this often. */
const WAIT_SLICE_MS = 10;
/** Period of the keep-alive timer of a pending flush: it never needs to fire, only to exist. */
const KEEP_ALIVE_MS = 60_000;
/**
 * With no writer thread (it cannot run here), this thread writes once this much is waiting in the
 * ring: 64 KiB is ~50 events of the reference corpus and well under a millisecond of writing, so
 * the loop never stalls for long, while each write still carries many lines (about the cost of a
 * buffered synchronous writer).
 */
const INLINE_SLICE_BYTES = 64 * 1024;
/** ... and what is left after a burst is written this soon after it, so lines stay visible. */
const INLINE_IDLE_MS = 1;
/**
 * Inline with producers in other threads: how often this thread writes what they placed. 5 ms
 * bounds how long their lines wait and how long a producer blocked on a full ring waits, at a
 * cost of 200 cheap checks a second while the sink is open that way.
 */
const SHARED_INLINE_POLL_MS = 5;
/**
 * A signal handled by other listeners: how long their turn may wait for the writer to let go of
 * the file. A batch takes milliseconds; longer is a stuck disk, and the exit flush deals with that.
 */
const SIGNAL_FLUSH_MS = 100;
/** process.emitWarning code of the switch to writing on the caller's thread. */
export const WRITER_FALLBACK_WARNING = 'RINGLOG_WRITER_FALLBACK';
let fallbackWarned = false;

let shareOf: (sink: JsonlEventSink) => SharedRing;
/** Shares `sink`'s ring with producers in other threads (for sinkHandle only). */
export function shareRing(sink: JsonlEventSink): SharedRing {
  return shareOf(sink);
}

const enum State {
  OPEN,
  CLOSING,
  CLOSED,
  /** The process is exiting: every event is written at its call (exit is last: exit.ts). */
  EXITING,
}


/** Only open() holds it: the constructor's first argument, so nothing else can construct a sink. */
const OPENING: unique symbol = Symbol('JsonlEventSink.open');
export class JsonlEventSink implements AgentEventSink, ExitFlushable {
  /** The reference's rotation threshold: 100 MiB. */
  static readonly ROTATE_BYTES = ROTATE_BYTES;
  static {
    shareOf = (sink) => sink.#share();
  }

  readonly basePath: string;
  readonly #opts: ResolvedOptions;
  readonly #ring: RingViews;
  readonly #enc: EventEncoder;
  readonly #producer: RingProducer;
  #next: number;
  readonly #firstIndex: number;
  #lastTs: number;
  readonly #segmentAtOpen: number;
  #state = State.OPEN;
  #encoding = false;
  /** handleEvent calls made from inside the encoding of another event (a getter, a toJSON). */
  readonly #reentrant: { index: number; ts: number; event: AgentEvent; context: EventContext | undefined }[] = [];

  /** Records and drops held on this thread, outside the ring. */
  readonly #overflow: Overflow;
  readonly #losses: Losses;

  readonly #writer: WriterLink;
  /** Opened in a worker thread: the main thread's exit waits on this mirror of the ring. */
  readonly #mirror: Mirror | undefined;
  #mirrorReleased = false;
  /** Set once a handle shares the ring with other threads: every record is then claimed. */
  #shared: SharedProducer | undefined;
  /** How this thread's records are placed once shared (made once: handleEvent allocates nothing). */
  #placeOpts: PlaceOptions | undefined;
  /** The file is a regular file (not a FIFO or a device: those keep their fd and a writer of their own). */
  readonly #regular: boolean;
  /** The base path's lock (one writer per path), held from open() to close() or exit. */
  readonly #lock: PathLock;
  /** Set when no writer thread can run: this thread writes, in slices (INLINE_SLICE_BYTES). */
  #inline = false;
  #inlineTimer: NodeJS.Timeout | undefined;
  /** Inline and shared: what producers in other threads place is written from here, on a timer. */
  #sharedInlineTimer: NodeJS.Timeout | undefined;
  /**
   * READ_POS when a blocking wait last timed out, -1 when none: until the writer moves past it,
   * no event waits again (a stall costs the loop one blockTimeoutMs, not one per event).
   */
  #stalledAt = -1;
  #stalls = 0;
  /** Exiting: when the exit's writing must be done by, and whether it already failed (said once). */
  #exitDeadline = 0;
  #exitFailed = false;
  /** Flushes in progress, and the timer that keeps the loop alive meanwhile. */
  #flushesPending = 0;
  #keepAlive: NodeJS.Timeout | undefined;
  /** This thread writing the file itself (flushSync, exit, no writer thread). */
  readonly #here: DrainHere;
  #closePromise: Promise<void> | undefined;
  /** Retention and compression of closed segments; absent when neither is asked for. */
  readonly #janitor: Janitor | undefined;

  private constructor(token: typeof OPENING, basePath: string, opts: ResolvedOptions, fd: number, segment: number, fileBytes: number, next: number, lastTs: number, lock: PathLock) {
    // TypeScript stops `new JsonlEventSink()`; plain JavaScript does not, and would fail later
    // with a message about undefined fields.
    if (token !== OPENING) throw new TypeError('ringlog: JsonlEventSink has no public constructor: use JsonlEventSink.open(path, options)');
    this.basePath = basePath;
    this.#lock = lock;
    this.#opts = opts;
    this.#ring = createRing(opts.ringBytes);
    this.#losses = new Losses(this.#ring, basePath, opts.overload, opts.onError);
    // Opened in a worker thread: the main thread may have to write this ring at its exit
    // (adopt.ts), with no key table of ours, so keys are interned in a key area of the ring.
    this.#mirror = takeMirror(this.#ring.ctl);
    this.#enc = new EventEncoder(opts.maxDepth, new Scratch(SCRATCH_INITIAL), undefined, undefined, this.#mirror === undefined ? undefined : KeyArea.of(this.#ring));
    this.#next = next;
    this.#firstIndex = next;
    this.#lastTs = lastTs;
    this.#segmentAtOpen = segment;
    this.#regular = regularFile(fd);
    const { ctl, num } = this.#ring;
    Atomics.store(ctl, Ctl.FD_OPENER, fdOpener());
    Atomics.store(ctl, Ctl.FD, fd);
    Atomics.store(ctl, Ctl.SEGMENT, segment);
    Atomics.store(ctl, Ctl.WRITTEN, next | 0);
    Atomics.store(ctl, Ctl.FSYNC_REQUEST, next | 0);
    Atomics.store(ctl, Ctl.FSYNC_DONE, next | 0);
    num[Num.FILE_BYTES] = fileBytes;
    num[Num.LAST_INDEX] = next - 1;
    if (opts.compress !== false || opts.maxFiles !== Infinity) {
      this.#janitor = new Janitor(
        { basePath, maxFiles: opts.maxFiles, compress: opts.compress === 'gzip', level: opts.compressLevel, onError: opts.onError },
        segment,
      );
      // In truncate mode the set holds only the empty base file; in append mode an earlier run may
      // have left closed segments to compress or retire.
      if (opts.mode === 'append') this.#janitor.resume();
    }
    this.#writer = new WriterLink(
      this.#ring,
      () => ({
        sab: this.#ring.sab,
        keys: this.#enc.keys.names.slice(),
        basePath: this.basePath,
        rotateBytes: this.#opts.rotateBytes,
        redact: this.#opts.redact,
        durableProjection: this.#opts.durableProjection,
      }),
      opts.writerResourceLimits,
      !this.#regular,
      {
        message: (msg) => this.#onMessage(msg),
        died: (cause) =>
          this.#losses.report(
            new SinkError(`ringlog: the writer thread of "${this.basePath}" died (${errorText(cause)})`, {
              sink: this.basePath,
              code: ErrorCode.WORKER,
              droppedEvents: this.#losses.total(),
              cause,
            }),
          ),
        started: (post) => this.#overflow.announceExternals((id, sab) => post({ type: 'external', sink: this.#writer.id, id, sab })),
        gaveUp: (cause, attempts) => this.#goInline(cause, attempts),
      },
    );
    this.#producer = new RingProducer(this.#ring, this.#writer);
    const mirror = this.#mirror;
    this.#overflow = new Overflow(
      this.#producer,
      this.#ring.ctl,
      (id, sab) => this.#writer.postExternal(id, sab),
      mirror === undefined ? () => {} : (held) => mirrorHeld(mirror, held),
    );
    if (this.#mirror !== undefined) {
      announce({
        type: 'opened',
        entry: this.#mirror.entry,
        generation: this.#mirror.generation,
        sab: this.#ring.sab,
        svc: this.#writer.svc.buffer as SharedArrayBuffer,
        basePath,
        rotateBytes: opts.rotateBytes,
        redact: opts.redact,
        lockPath: lock.lockPath,
        lockToken: lock.token,
      });
    }
    this.#here = new DrainHere({
      ring: this.#ring,
      writer: this.#writer,
      basePath,
      rotateBytes: opts.rotateBytes,
      redact: opts.redact,
      keys: this.#enc.keys,
      overflow: this.#overflow,
      losses: this.#losses,
      janitor: this.#janitor,
    });
    this.#writer.start();
    trackForExit(this);
  }

  /**
   * Opens a sink on `basePath` (parent directories are created). Throws synchronously: TypeError
   * or RangeError for bad arguments, SinkError (code ERR_RINGLOG_OPEN) for an unusable path.
   */
  static open(basePath: string, options?: JsonlEventSinkOptions): JsonlEventSink {
    if (typeof basePath !== 'string') throw new TypeError(`ringlog: basePath must be a string, got ${describe(basePath)}`);
    if (basePath === '') throw new TypeError('ringlog: basePath must not be empty');
    const opts = resolveOptions(options);
    const abs = path.resolve(basePath);
    const fail = (err: unknown, what: string): never => {
      throw new SinkError(`ringlog: cannot open event log "${abs}": ${what}: ${(err as Error).message}`, {
        sink: abs,
        code: ErrorCode.OPEN,
        cause: err,
      });
    };
    // A directory made just now holds nothing of an earlier session or a crashed opener: the
    // scans for those are skipped (they are a readdir each, and a sink must be cheap to open).
    let freshDir = false;
    try {
      freshDir = fs.mkdirSync(path.dirname(abs), { recursive: true }) !== undefined;
    } catch (err) {
      fail(err, 'cannot create its directory');
    }
    // Nothing on disk is destroyed before every check that can fail has passed: the path's lock is
    // taken (one writer per path), the file is opened without O_TRUNC (so permissions are proven)
    // and the writer is started (or given up on: that degrades, it does not fail) before truncate
    // mode empties the set.
    const lock = lockPath(abs, freshDir);
    const truncate = opts.mode === 'truncate';
    let fd = -1;
    let sink: JsonlEventSink;
    try {
      const segment = truncate ? 0 : resumeSegment(abs);
      const current = segmentPath(abs, segment);
      try {
        fd = fs.openSync(current, RESUMED_SEGMENT);
      } catch (err) {
        fail(err, truncate ? 'cannot open the file for writing' : 'cannot open the file for appending');
      }
      try {
        if (truncate) sink = new JsonlEventSink(OPENING, abs, opts, fd, 0, 0, 0, 0, lock);
        else {
          const tail = scanTail(fd, current);
          const last = tail.last ?? (segment > 0 ? lastLineOfSet(abs, segment - 1) : null);
          sink = new JsonlEventSink(OPENING, abs, opts, fd, segment, tail.size, last ? last.lastIndex + 1 : 0, last ? last.emittedAtMs : 0, lock);
        }
      } catch (err) {
        fs.closeSync(fd);
        return fail(err, 'cannot resume the existing log');
      }
    } catch (err) {
      lock.release();
      throw err;
    }
    if (truncate && !freshDir) {
      try {
        emptySet(abs, fd);
      } catch (err) {
        sink.#abandonOpen();
        fail(err, 'cannot empty the previous session');
      }
    }
    sink.#letGoOfFile(fd);
    return sink;
  }

  /**
   * A regular file is closed once open() has proven it can be written: the writer opens it again
   * for its first batch and closes it when the sink idles among many (src/writer/entry.ts), so
   * the process's descriptors stay bounded however many sinks are open. Nothing can be written
   * before open() returns, so no other thread uses the fd yet.
   */
  #letGoOfFile(fd: number): void {
    if (!this.#regular) return;
    const { ctl } = this.#ring;
    // CLOSABLE last: until then the writer leaves this fd alone, so it is closed exactly once.
    Atomics.store(ctl, Ctl.FD, CLOSED_FD);
    fs.closeSync(fd);
    Atomics.store(ctl, Ctl.CLOSABLE, 1);
  }

  /** Closes the current segment's fd if it is open. */
  #closeFile(): void {
    const { ctl } = this.#ring;
    // One another thread tracks is closed by it when it ends (src/threads/descriptors.ts).
    if (mayClose(Atomics.load(ctl, Ctl.STALE_OPENER))) {
      const stale = Atomics.exchange(ctl, Ctl.STALE_FD, CLOSED_FD);
      if (stale !== CLOSED_FD) fs.closeSync(stale);
    }
    if (!mayClose(Atomics.load(ctl, Ctl.FD_OPENER))) return;
    const fd = Atomics.exchange(ctl, Ctl.FD, CLOSED_FD);
    if (fd !== CLOSED_FD) fs.closeSync(fd);
  }

  /** open() failed after the constructor: nothing was accepted, so there is nothing to write. */
  #abandonOpen(): void {
    this.#state = State.CLOSED;
    untrackForExit(this);
    this.#releaseMirror();
    void this.#writer.stop();
    this.#closeFile();
    this.#lock.release();
  }

  /** The next index to be stamped: the number of events of this session so far. */
  eventCount(): number {
    return this.#shared === undefined ? this.#next : this.#shared.nextIndex();
  }

  /**
   * Logs one event given as the JSON text of an object: another logger's line (pino's, say), with
   * or without its newline. The text goes into the ring as it is — nothing is parsed or serialised
   * on this thread — and the writer splices ringlog's envelope in front of its members (fields named
   * like an envelope key are renamed, as handleEvent does). Text that is not a JSON object is kept
   * whole as `{"type":"log_line","line":"…"}`. Otherwise as handleEvent: an index, a time, never
   * blocks beyond the overload policy. A line that is not a string is a TypeError.
   */
  handleJsonLine(line: string, context?: EventContext): void {
    if (typeof line !== 'string') throw new TypeError(`ringlog: handleJsonLine expects a string (one JSON object), got ${describe(line)}`);
    this.handleEvent(new JsonText(line), context);
  }

  /** Stamps and snapshots `event`. Never throws, never waits on I/O (see the overload policy). */
  handleEvent(event: AgentEvent, context?: EventContext): void {
    if (this.#state !== State.OPEN && this.#state !== State.EXITING) {
      // Nowhere to write it: counted as dropped, and no index is spent on it.
      this.#losses.afterClose++;
      return;
    }
    // Shared, the index is taken when the record is placed (ring/claim.ts); 0 holds its place.
    const index = this.#shared === undefined ? this.#next++ : 0;
    let ts = Date.now();
    if (ts < this.#lastTs) ts = this.#lastTs; // wall clock stepped back: keep the file non-decreasing
    this.#lastTs = ts;
    if (this.#encoding) {
      // Re-entered from a getter or toJSON of the event being encoded: its index is taken now, and
      // it is snapshotted right after the outer event, so the ring stays in index order.
      this.#reentrant.push({ index, ts, event, context });
      return;
    }
    this.#encoding = true;
    try {
      this.#accept(index, ts, event, context);
      for (let i = 0; i < this.#reentrant.length; i++) {
        const r = this.#reentrant[i]!;
        this.#accept(r.index, r.ts, r.event, r.context);
      }
    } finally {
      // Setting an array's length is a runtime call: only pay it when there was something.
      if (this.#reentrant.length > 0) this.#reentrant.length = 0;
      this.#encoding = false;
    }
    if (this.#inline) this.#inlineStep();
  }

  #accept(index: number, ts: number, event: AgentEvent, context: EventContext | undefined): void {
    const outcome = snapshot(this.#enc, index, ts, event, context, this.#encodeEvent);
    if (outcome === SNAPSHOT_PUBLISHED) return;
    if (outcome === SNAPSHOT_REJECTED) this.#losses.rejected++;
    if (this.#shared !== undefined) this.#placeShared(this.#shared, ts);
    else this.#placeScratch(index, ts);
  }

  /**
   * Snapshots the event once: straight into the ring when nothing waits ahead of it (true: it is
   * published), else, or when it outgrows the ring's free bytes, into scratch for #placeScratch.
   */
  readonly #encodeEvent = (index: number, ts: number, frameDepth: unknown, executionId: string | undefined, body: object): boolean => {
    const enc = this.#enc;
    let offset = 0;
    // Shared: the record takes its index (and room) when it is placed, so it is made in scratch.
    // With no writer thread this thread does the writer's work anyway: at once is cheaper.
    const slack = !this.#inline && writerHasSlack(this.#ring);
    if (this.#shared === undefined && this.#overflow.idle) {
      const room = this.#producer.room();
      offset = room.offset;
      enc.begin(this.#ring, offset, room.limit);
      enc.writerSlack = slack;
    } else {
      enc.begin();
      // Shared: as any producer. Queued behind an overflow: the writer is behind by definition.
      enc.writerSlack = this.#shared !== undefined && slack;
    }
    enc.event(index, ts, frameDepth, executionId, body);
    if (enc.spilled) return false;
    this.#producer.publish(enc.pos - offset);
    return true;
  };

  /**
   * Shared: the record in scratch is placed under the claim, which gives it its index. 'buffer'
   * waits like 'block' here: a queue on this thread would let other producers' later events
   * overtake it, and the index must follow the file. A big record travels outside the ring as
   * always; its index is written into its own memory under the claim.
   */
  #placeShared(shared: SharedProducer, ts: number): void {
    const len = this.#enc.pos;
    const scratch = this.#enc.scratch.buf;
    const opts = this.#placeOpts!;
    let outcome: number;
    if (len > this.#ring.size / EXTERNAL_FRACTION) {
      const overflow = this.#overflow;
      const id = overflow.addExternal(scratch, len);
      outcome = shared.place(overflow.external(id)!.buf, len, ts, { ...opts, wait: true }, externalRecord(id));
      if (outcome >= 0) overflow.placedExternal(id, shared.lastEnd);
      else overflow.cancelExternal(id);
    } else {
      outcome = shared.place(scratch, len, ts, opts);
    }
    if (outcome === DROPPED) {
      this.#enc.abandon();
      this.#losses.noRoom(() => this.#whyNoRoom());
    } else if (outcome === CLOSED) {
      this.#enc.abandon();
      this.#losses.afterClose++;
    }
  }

  /** While a producer waits for room: a death seen without the loop, or no writer at all. */
  readonly #makeRoom = (): void => {
    this.#writer.poll();
    if (this.#inline) this.#writeHere();
  };

  /**
   * The record now in scratch goes into the ring, the overflow queue, or is dropped, by policy:
   * 'drop' never waits; 'block' waits for ring space; 'buffer' queues up to maxBufferBytes, then
   * waits. Waits end at blockTimeoutMs with a drop. A record over a quarter of the ring travels
   * outside it (EXTERNAL) and is admitted whenever nothing else is buffered, so an event bigger
   * than every limit still goes through whole.
   */
  #placeScratch(index: number, ts: number): void {
    const len = this.#enc.pos;
    const bytes = this.#enc.scratch.buf.subarray(0, len);
    const external = len > this.#ring.size / EXTERNAL_FRACTION;
    const overflow = this.#overflow;
    const direct = (): boolean => !external && overflow.idle && this.#producer.copy(bytes);
    overflow.pump();
    if (direct()) return;
    if (this.#inline) {
      // No writer thread: room is made by writing here, never by waiting.
      this.#writeHere();
      if (direct()) return;
    }
    const cost = external ? len + EXTERNAL_RECORD : len;
    const { overload, maxBufferBytes, blockTimeoutMs } = this.#opts;
    const admit = (): boolean => overflow.admits(cost, maxBufferBytes);
    let ok: boolean;
    if (overload === 'drop') {
      ok = external && admit();
    } else if (overload === 'block' && !external) {
      if (this.#blockUntil(direct, blockTimeoutMs)) return;
      ok = false;
    } else {
      ok = admit() || this.#blockUntil(admit, blockTimeoutMs);
    }
    if (!ok) {
      this.#enc.abandon();
      this.#drop(index, ts);
      return;
    }
    overflow.queue(bytes, external);
  }

  #drop(index: number, ts: number): void {
    this.#losses.noRoom(() => this.#whyNoRoom());
    this.#losses.policyDropped++;
    this.#overflow.drop(index, ts);
  }

  /** The main thread no longer watches this sink (written by its own thread: closed, or exited). */
  #releaseMirror(): void {
    if (this.#mirror === undefined || this.#mirrorReleased) return;
    this.#mirrorReleased = true;
    releaseMirror(this.#mirror, this.#ring.ctl);
    announce({ type: 'closed', entry: this.#mirror.entry, generation: this.#mirror.generation });
  }

  /**
   * Blocks the caller (pumping the queue) until `cond` holds or `timeoutMs` passes. Bounded per
   * stall, not per event: once a wait has timed out, later calls do not wait again until the
   * writer has moved READ_POS. A writer that dies meanwhile is replaced from here (the loop is not
   * turning, so its 'exit' event cannot be heard); with no writer at all, this thread writes.
   */
  #blockUntil(cond: () => boolean, timeoutMs: number): boolean {
    const { ctl } = this.#ring;
    if (this.#stalledAt !== -1) {
      if (Atomics.load(ctl, Ctl.READ_POS) === this.#stalledAt) timeoutMs = 0;
      else this.#stalledAt = -1;
    }
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.#overflow.pump();
      if (cond()) return true;
      this.#writer.poll();
      if (this.#inline) {
        this.#writeHere();
        this.#overflow.pump();
        // Writing here made no room (it is failing too): waiting would not help either.
        return cond();
      }
      const left = deadline - Date.now();
      if (left <= 0) {
        if (timeoutMs > 0) this.#stalls++;
        this.#stalledAt = Atomics.load(ctl, Ctl.READ_POS);
        return false;
      }
      wakeWriter(this.#writer.svc);
      waitSync(ctl, Ctl.READ_POS, Atomics.load(ctl, Ctl.READ_POS), Math.min(left, WAIT_SLICE_MS));
    }
  }

  /** Why an event found no room, for the flush error that reports the drop. */
  #whyNoRoom(): string {
    const policy = `overload policy '${this.#opts.overload}'`;
    const death = this.#writer.lastDeath;
    if (this.#writer.starting) {
      return death === undefined
        ? `the writer thread was still starting (${policy})`
        : `the writer thread died (${errorText(death)}) and its replacement was still starting (${policy})`;
    }
    return `the writer could not keep up (${policy})`;
  }

  /** Inline mode, after each event: write once a slice has gathered, else soon after the burst. */
  #inlineStep(): void {
    const { ctl } = this.#ring;
    if (this.#state === State.EXITING) {
      // Nothing will run after the exit listeners: written now, or never.
      this.#writeHere();
      return;
    }
    if (u32diff(Atomics.load(ctl, Ctl.WRITE_POS), Atomics.load(ctl, Ctl.READ_POS)) >= INLINE_SLICE_BYTES) {
      this.#writeHere();
      return;
    }
    if (this.#inlineTimer !== undefined || this.#state !== State.OPEN) return;
    this.#inlineTimer = setTimeout(() => {
      this.#inlineTimer = undefined;
      if (this.#state === State.OPEN) this.#writeHere();
    }, INLINE_IDLE_MS);
    // The exit flush writes whatever is left, so this timer must not hold the process.
    this.#inlineTimer.unref();
  }

  /** Writes everything pending on this thread, from a path that must not throw (handleEvent). */
  #writeHere(): void {
    const exiting = this.#state === State.EXITING;
    try {
      // Exiting, the lock stays with this thread (the writer thread must not take it back), and the
      // whole exit has one deadline: a writer stuck in write(2) costs it once, not once per event.
      this.#drainHere(exiting ? this.#exitDeadline : Date.now() + this.#opts.exitTimeoutMs, exiting);
    } catch (err) {
      if (exiting) {
        if (this.#exitFailed) return;
        this.#exitFailed = true;
      }
      // Write faults are counted and reported by the consumer; this is anything else (a
      // redaction module that cannot load on this thread either): reported, never thrown.
      this.#losses.report(
        new SinkError(`ringlog: writing "${this.basePath}" on the caller's thread failed: ${errorText(err)}`, {
          sink: this.basePath,
          code: ErrorCode.WORKER,
          droppedEvents: this.#losses.total(),
          cause: err,
        }),
      );
    }
  }

  /**
   * No writer thread can run: this thread writes from now on. Said once, loudly: a process warning
   * (seen without any option set) and onError, both carrying the real cause.
   */
  #goInline(cause: unknown, attempts: number): void {
    this.#inline = true;
    const how = attempts === 1 ? 'could not be started' : `died ${attempts} times in a row before writing anything`;
    const err = new SinkError(
      `ringlog: the writer thread of "${this.basePath}" ${how} (${errorText(cause)}); writing continues on the caller's thread, in slices`,
      { sink: this.basePath, code: ErrorCode.WORKER, droppedEvents: this.#losses.total(), cause },
    );
    // Once per process: a process that cannot start threads would otherwise warn once per sink.
    if (!fallbackWarned) {
      fallbackWarned = true;
      process.emitWarning(err.message, { type: 'RinglogWarning', code: WRITER_FALLBACK_WARNING });
    }
    this.#losses.report(err);
    // What the dead writers left in the ring goes now.
    this.#writeHere();
    this.#pollSharedInline();
  }

  /**
   * No writer thread and producers in other threads: they cannot write the file, and this thread's
   * own events may not come to do it for them, so it looks at the ring on a timer of its own.
   */
  #pollSharedInline(): void {
    if (!this.#inline || this.#shared === undefined || this.#sharedInlineTimer !== undefined) return;
    const shared = this.#shared;
    this.#sharedInlineTimer = setInterval(() => {
      if (this.#state !== State.OPEN) return;
      settleClaims(shared);
      if (u32diff(Atomics.load(this.#ring.ctl, Ctl.WRITE_POS), Atomics.load(this.#ring.ctl, Ctl.READ_POS)) > 0) this.#writeHere();
    }, SHARED_INLINE_POLL_MS);
    // The exit flush writes whatever is left: this timer must not hold the process.
    this.#sharedInlineTimer.unref();
  }

  /** Moves every accepted event into the ring (blocking on ring space as long as it takes). */
  async #settleQueue(): Promise<void> {
    while (!this.#overflow.idle) {
      this.#overflow.pump();
      if (this.#overflow.idle) break;
      if (!this.#writer.alive) {
        this.#drainHere(Date.now() + this.#opts.exitTimeoutMs, false);
        break;
      }
      wakeWriter(this.#writer.svc);
      await new Promise((r) => setTimeout(r, PUMP_INTERVAL_MS));
    }
  }

  /**
   * Resolves once every event accepted before the call is in the file (fsynced too with
   * `{ fsync: true }`). Rejects with a SinkError once any event has been lost: the error carries
   * the first cause and the total count, and every later flush reports it again.
   */
  async flush(options?: { fsync?: boolean }): Promise<void> {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError(`ringlog: flush options must be an object, got ${describe(options)}`);
    }
    const fsync = options?.fsync === undefined ? false : options.fsync;
    if (typeof fsync !== 'boolean') throw new TypeError(`ringlog: flush option "fsync" must be a boolean, got ${describe(fsync)}`);
    if (this.#state === State.CLOSED) return this.#losses.throwIfLost();
    const target = this.#flushTarget() | 0;
    this.#holdProcess(1);
    try {
      await this.#settleQueue();
      const { ctl } = this.#ring;
      if (fsync) Atomics.store(ctl, Ctl.FSYNC_REQUEST, target);
      const slot = fsync ? Ctl.FSYNC_DONE : Ctl.WRITTEN;
      wakeWriter(this.#writer.svc);
      for (;;) {
        const cur = Atomics.load(ctl, slot);
        if (reached(cur, target) && (!fsync || reached(Atomics.load(ctl, Ctl.WRITTEN), target))) break;
        if (!this.#writer.alive) {
          // No writer: this thread writes everything accepted, so the barrier holds after it.
          if (this.#shared !== undefined) settleClaims(this.#shared);
          this.#drainHere(Date.now() + this.#opts.exitTimeoutMs, false);
          if (fsync) this.#here.fsync(target);
          break;
        }
        await waitAsync(ctl, slot, cur, WAIT_SLICE_MS);
      }
      await this.#losses.faultMessagesArrived(() => this.#writer.alive);
      this.#overflow.reclaim();
    } finally {
      this.#holdProcess(-1);
    }
    this.#losses.throwIfLost();
  }

  /**
   * Blocks until every accepted event is in the file, writing on this thread: for exit paths and
   * other places that cannot await. Throws a SinkError (ERR_RINGLOG_TIMEOUT) if the writer holds
   * the file longer than `timeoutMs` (default: the exitTimeoutMs option).
   */
  flushSync(options?: { timeoutMs?: number }): void {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw new TypeError(`ringlog: flushSync options must be an object, got ${describe(options)}`);
    }
    const timeoutMs = options?.timeoutMs === undefined ? this.#opts.exitTimeoutMs : options.timeoutMs;
    if (typeof timeoutMs !== 'number') throw new TypeError(`ringlog: flushSync option "timeoutMs" must be a number, got ${describe(timeoutMs)}`);
    if (!(timeoutMs >= 0)) throw new RangeError(`ringlog: flushSync option "timeoutMs" must be >= 0, got ${timeoutMs}`);
    if (this.#encoding) throw new Error('ringlog: flushSync() cannot be called while an event is being encoded (from its getter or toJSON)');
    if (this.#state === State.CLOSED) return this.#losses.throwIfLost();
    const exiting = this.#state === State.EXITING;
    this.#drainHere(exiting ? this.#exitDeadline : Date.now() + timeoutMs, exiting);
    this.#losses.throwIfLost();
  }

  /** The index flush() waits for: every event accepted so far, by any producer. */
  #flushTarget(): number {
    return this.#shared === undefined ? this.#next : this.#shared.nextIndex();
  }

  /**
   * Lets producers in other threads write into this sink's ring (fan-out/handle.ts). From here on
   * every record, this thread's included, is claimed (ring/claim.ts). Anything this thread
   * still queues has its index already: it is written first, so no claim can overtake it.
   */
  #share(): SharedRing {
    if (this.#encoding) throw new Error('ringlog: sinkHandle() cannot be called while an event of the sink is being encoded (from its getter or toJSON)');
    if (this.#state !== State.OPEN) {
      // Closing, closed or exiting: a handle made now may place nothing (nothing would drain it).
      Atomics.store(this.#ring.ctl, Ctl.CLOSED, 1);
    } else if (this.#shared === undefined) {
      if (!this.#overflow.idle) this.#drainHere(Date.now() + this.#opts.exitTimeoutMs, false);
      const { ctl, claim } = this.#ring;
      claim[Claim.NEXT_INDEX] = this.#next;
      claim[Claim.PUBLISHED_NEXT] = this.#next;
      claim[Claim.LAST_TS] = this.#lastTs;
      this.#shared = new SharedProducer(this.#ring, this.#writer);
      this.#placeOpts = { wait: this.#opts.overload !== 'drop', timeoutMs: this.#opts.blockTimeoutMs, whileWaiting: this.#makeRoom, owner: true };
      this.#pollSharedInline();
      Atomics.store(ctl, Ctl.SHARED, 1);
    }
    return {
      sab: this.#ring.sab,
      svc: this.#writer.svc.buffer as SharedArrayBuffer,
      maxDepth: this.#opts.maxDepth,
      overload: this.#opts.overload,
      blockTimeoutMs: this.#opts.blockTimeoutMs,
      name: this.basePath,
    };
  }

  /** Flushes, stops the writer and closes the file. Later handleEvent calls are counted as dropped. */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    let failure: unknown;
    try {
      await this.flush();
    } catch (err) {
      failure = err;
    }
    this.#state = State.CLOSING;
    const { ctl } = this.#ring;
    this.#closeToProducers();
    await this.#writer.stop();
    // Markers that found no room before the writer's final drain.
    this.#settleShared();
    // Anything the writer could not take (it died on the way out) is written here.
    if (u32diff(Atomics.load(ctl, Ctl.WRITE_POS), Atomics.load(ctl, Ctl.READ_POS)) > 0) {
      try {
        this.#drainHere(Date.now() + this.#opts.exitTimeoutMs, true);
      } catch (err) {
        // Reported below; the file and the path are let go of all the same.
        failure ??= err;
      }
    }
    this.#state = State.CLOSED;
    untrackForExit(this);
    this.#releaseMirror();
    this.#overflow.stop();
    if (this.#inlineTimer) clearTimeout(this.#inlineTimer);
    if (this.#sharedInlineTimer) clearInterval(this.#sharedInlineTimer);
    try {
      this.#closeFile();
    } catch (err) {
      failure ??= err;
    }
    if (this.#janitor) {
      // A rotation message still in flight is covered by reading the segment from the header; the
      // janitor's own failures went to onError and do not make close() fail.
      this.#janitor.closed(Atomics.load(ctl, Ctl.SEGMENT));
      await this.#janitor.close();
    }
    // Last: until the janitor is done, a new sink on this path would compress the same segments.
    this.#lock.release();
    if (failure !== undefined) throw failure;
    this.#losses.throwIfLost();
  }

  /**
   * Producers in other threads place nothing from here on. Set under the claim, so each of their
   * records is either in the ring before the final drain (and written) or refused (and counted by
   * its producer's flush): none is placed where no drain will find it.
   */
  #closeToProducers(): void {
    if (this.#shared === undefined) return;
    this.#shared.lock();
    Atomics.store(this.#ring.ctl, Ctl.CLOSED, 1);
    this.#shared.settle();
    this.#shared.unlock();
  }

  /** Markers still owed (drops, a dead producer's claim) go into the ring, where there is room. */
  #settleShared(): void {
    if (this.#shared === undefined) return;
    this.#shared.lock();
    this.#shared.settle();
    this.#shared.unlock();
  }

  /** A signal arrived that other listeners handle: everything accepted so far goes to the file now
   *  (they may end the process without an 'exit' event); the sink stays open. */
  signalFlush(): void {
    if (this.#state !== State.OPEN) return;
    try {
      this.#drainHere(Date.now() + SIGNAL_FLUSH_MS, false);
    } catch {
      // The writer holds the file (a slow disk): the other listeners are not kept waiting for it.
      // What is left is written by the exit flush, or before a fatal re-raise (exit.ts).
    }
  }

  /**
   * Called when the process ends ('exit', or a fatal signal): writes everything still pending on
   * this thread, and from then on every event at its call — events logged by later 'exit' listeners
   * included. The path's lock goes now: what other listeners still log takes microseconds.
   */
  exitFlush(): void {
    if (this.#state === State.CLOSED) return;
    if (this.#state !== State.EXITING) {
      this.#state = State.EXITING;
      this.#exitDeadline = Date.now() + this.#opts.exitTimeoutMs;
      this.#inline = true;
      // Exit cannot wait for compression: closed segments left plain are compressed by the next
      // open in append mode.
      this.#janitor?.abandon();
      this.#writer.abandon();
      this.#closeToProducers();
    }
    try {
      this.#drainHere(this.#exitDeadline, true);
      if (this.#shared !== undefined) {
        // Markers that found no room before the drain, now that it made room.
        this.#settleShared();
        this.#drainHere(this.#exitDeadline, true);
      }
      // Thousands of sinks end together: each lets go of its segment once written (a later event
      // opens it again), so the exit does not run out of descriptors.
      if (Atomics.load(this.#ring.ctl, Ctl.CLOSABLE) === 1) this.#closeFile();
      // A worker thread ending by itself writes its own sinks (here): the main thread need not.
      this.#releaseMirror();
      // Retention is a few unlinks, and the drain above may have rotated many times: without this,
      // a process that exits with a full ring would leave far more than maxFiles segments.
      this.#janitor?.retireAtExit(Atomics.load(this.#ring.ctl, Ctl.SEGMENT));
    } finally {
      this.#lock.release();
    }
  }

  stats(): SinkStats {
    const { ctl, num, size } = this.#ring;
    // Calls after close() are counted in both accepted and dropped, so the sum always holds.
    const next = this.#shared === undefined ? this.#next : this.#ring.claim[Claim.NEXT_INDEX]!;
    const accepted = next - this.#firstIndex + this.#losses.afterClose;
    const written = num[Num.LINES]!;
    const dropped = this.#losses.total();
    const projected = num[Num.PROJECTED]!;
    return {
      accepted,
      written,
      dropped,
      projected,
      rejected: this.#losses.rejected,
      pending: Math.max(0, accepted - written - dropped - projected),
      bytes: num[Num.BYTES_TOTAL]!,
      segment: Atomics.load(ctl, Ctl.SEGMENT),
      rotations: Atomics.load(ctl, Ctl.SEGMENT) - this.#segmentAtOpen,
      ringBytes: size,
      ringHighWater: this.#producer.highWater,
      bufferedBytes: this.#overflow.bytes,
      bufferHighWater: this.#overflow.highWater,
      stalls: this.#stalls + (this.#shared?.stalls ?? 0),
      workerRestarts: this.#writer.restarts,
      faults: this.#losses.faults,
      segmentsCompressed: this.#janitor?.stats.segmentsCompressed ?? 0,
      segmentsRemoved: this.#janitor?.stats.segmentsRemoved ?? 0,
    };
  }

  /** A pending flush keeps the process alive: the Atomics waits it uses do not hold the loop. */
  #holdProcess(delta: number): void {
    this.#flushesPending += delta;
    if (this.#flushesPending === 1 && delta > 0) this.#keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
    if (this.#flushesPending === 0 && this.#keepAlive !== undefined) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  /** Takes the ring's lock on this thread and writes everything pending, ring then overflow. */
  #drainHere(deadline: number, final: boolean): void {
    this.#here.run(deadline, final, this.#afterDrainHere);
  }

  /**
   * Records this thread consumed may have defined keys the writer never saw: the key table starts
   * afresh so every later record defines what it uses. Inline, no writer will read them.
   */
  readonly #afterDrainHere = (): void => {
    if (!this.#inline) this.#enc.resetKeys();
  };

  #onMessage(msg: FromWriter): void {
    switch (msg.type) {
      case 'fault':
        this.#losses.fault(msg.fault, msg.lost, true);
        return;
      case 'recovered':
        this.#losses.recovered();
        return;
      case 'rotated':
        this.#janitor?.closed(msg.segment);
        return;
    }
  }

  /** For tests of crash recovery: the writer thread, to terminate from outside. */
  get writerThread(): Worker | undefined {
    return this.#writer.thread;
  }
}

function regularFile(fd: number): boolean {
  try {
    return fs.fstatSync(fd).isFile();
  } catch {
    // Unknown: treated as a FIFO is (kept open, written by a thread of its own).
    return false;
  }
}
