// Appends lines to the current segment and rotates. Used by whichever thread holds the ring's
// LOCK (the writer worker, or the caller draining on exit), so all its state that must survive a
// change of hands lives in the ring header, not in this object.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { segmentPath } from '../files/format.js';
import { FRESH_SEGMENT, RESUMED_SEGMENT } from '../files/segments.js';
import { reached, type RingViews } from '../ring/memory.js';
import { CLOSED_FD, Ctl, Num } from '../ring/slots.js';
import { fdOpener, mayClose, tracksDescriptors } from '../threads/descriptors.js';
import { sleepSync } from '../ring/wait.js';
import { mirrorReadPos, ringMirror, type Mirror } from '../ring/worker-rings.js';
import { OutBuffer } from './out-buffer.js';

/** Opens tried when a segment's directory is missing, each after making it again: a remover still
 *  at work (`rm -rf` going round again on a directory that filled meanwhile) can take the new
 *  directory away between the mkdir and the open; a few rounds outlast it. */
const MAKE_DIR_ATTEMPTS = 4;

/** The writer's I/O boundary: real fs calls, replaceable in tests to inject faults that cannot be
 *  produced for real (EIO, EBADF…). */
export interface FileIo {
  write(fd: number, buf: Uint8Array, off: number, len: number): number;
  openForRotation(path: string): number;
  /** Opens an existing or new segment for appending (recreating one removed under the sink). */
  openForAppend(path: string): number;
  /** Names the file still has (0 once it was removed under the sink). */
  linkCount(fd: number): number;
  /** Creates a directory and any missing parents (a segment's directory removed under the sink). */
  makeDir(path: string): void;
  close(fd: number): void;
  fsync(fd: number): void;
  truncate(fd: number, len: number): void;
}

export const realIo: FileIo = {
  write: (fd, buf, off, len) => fs.writeSync(fd, buf, off, len),
  openForRotation: (path) => fs.openSync(path, FRESH_SEGMENT),
  openForAppend: (path) => fs.openSync(path, RESUMED_SEGMENT),
  linkCount: (fd) => fs.fstatSync(fd).nlink,
  makeDir: (dir) => void fs.mkdirSync(dir, { recursive: true }),
  close: (fd) => fs.closeSync(fd),
  fsync: (fd) => fs.fsyncSync(fd),
  truncate: (fd, len) => fs.ftruncateSync(fd, len),
};

/** Errors worth retrying in place: the next attempt usually succeeds (a full pipe, a signal). */
const TRANSIENT = new Set(['EAGAIN', 'EINTR', 'EBUSY']);
/** 1+2+…+64 ms ≈ 127 ms of backoff before a transient error counts as persistent. */
const TRANSIENT_RETRIES = 7;
/** One write syscall per this many bytes: large enough to amortise the call, small enough that a
 *  line is not held back long at high rates (256 KiB ≈ 200 events of the reference corpus). */
export const OUT_FLUSH = 256 * 1024;
const NEWLINE = 0x0a;

export class WriteFault extends Error {
  constructor(override readonly cause: unknown) {
    super(String((cause as Error)?.message ?? cause));
  }
}

export class SegmentWriter {
  /** Lines not yet written; the line builder appends to it directly. */
  readonly out = new OutBuffer(2 * OUT_FLUSH);
  /** What the bytes in `out` cover, published once they are in the file. */
  private pendingLast = -1;
  private pendingEvents = 0;
  /** Events left out by durable projection that the pending marker lines stand for. */
  private pendingProjected = 0;
  private pendingReadPos = -1;
  /** The main thread's mirror of this ring, for a sink opened in a worker thread. */
  private readonly mirror: Mirror | undefined;

  constructor(
    private readonly ring: RingViews,
    private readonly basePath: string,
    private readonly rotateBytes: number,
    private readonly io: FileIo = realIo,
    /** Called after every successful write of the first `len` pending bytes. */
    private readonly onWritten: (len: number) => void = () => {},
    /** Called once a rotation is complete: `segment` is the new current one. */
    private readonly onRotated: (segment: number) => void = () => {},
  ) {
    this.mirror = ringMirror(ring.ctl);
  }


  /** Marks ring bytes up to `readPos` as consumed once the pending lines are written. */
  advance(readPos: number): void {
    this.pendingReadPos = readPos;
  }

  /** Adds a line given as text (markers); `projected`: the events a projection marker stands for. */
  appendText(line: string, lastIndex: number, events: number, projected = 0): void {
    const start = this.out.len;
    this.out.utf8(line);
    this.lineEnd(start, lastIndex, events, projected);
  }

  /**
   * Completes the line built into `out` from `start`: adds the newline, rotates first if the line
   * would make the current segment cross rotateBytes, and writes out once enough is pending.
   * `events` is 1 for an event line, 0 for a marker. From this call on the line is the writer's to
   * account for: it is published once written, and if any write fails first — here or in a later
   * commit — it is among the events discard() returns, once.
   */
  lineEnd(start: number, lastIndex: number, events: number, projected = 0): void {
    const out = this.out;
    out.ensure(1);
    out.buf[out.len++] = NEWLINE;
    const len = out.len - start;
    const inFile = this.ring.num[Num.FILE_BYTES]! + start;
    if (inFile > 0 && inFile + len > this.rotateBytes) {
      try {
        // What came before this line closes the current segment; the line opens the next.
        this.commit(start);
        this.rotate();
      } catch (err) {
        // Not yet in the pending counters (a rotation publishes only what precedes the line), so
        // it joins them here, to be lost with whatever else the failed write carried.
        out.len = 0;
        this.pendingEvents += events;
        this.pendingProjected += projected;
        throw err instanceof WriteFault ? err : new WriteFault(err);
      }
    }
    this.pendingLast = lastIndex;
    this.pendingEvents += events;
    this.pendingProjected += projected;
    if (out.len >= OUT_FLUSH) this.commit();
  }

  /**
   * Writes the first `len` pending bytes (all by default) and publishes what they cover. On a
   * persistent error, cuts the segment back to its last whole line and throws WriteFault; the
   * pending lines are then discarded and the caller accounts for them.
   */
  commit(len = this.out.len): void {
    const { ctl, num } = this.ring;
    const out = this.out;
    if (len > 0) {
      try {
        const fd = this.currentFd();
        this.writeAll(fd, len);
        // Someone removed the file (or its whole directory) under the sink: writes to it succeed
        // but reach no name. Write the batch again into a file recreated at the same path, and go
        // on there.
        if (this.io.linkCount(fd) === 0) this.writeAll(this.recreate(), len);
      } catch (err) {
        const fd = Atomics.load(ctl, Ctl.FD);
        if (fd !== CLOSED_FD) this.cutBack(fd);
        out.len = 0;
        throw new WriteFault(err);
      }
      num[Num.FILE_BYTES] = num[Num.FILE_BYTES]! + len;
      num[Num.BYTES_TOTAL] = num[Num.BYTES_TOTAL]! + len;
      this.onWritten(len);
      if (out.len > len) out.buf.copyWithin(0, len, out.len);
      out.len -= len;
    }
    // Lines are added to the pending counters only after append() decided where they go, so
    // these always describe exactly the bytes just written.
    this.publish(this.pendingLast, this.pendingEvents, this.pendingProjected);
    this.pendingEvents = 0;
    this.pendingProjected = 0;
  }

  /** Forgets pending lines after a fault; returns how many events they held (those a projection
   *  marker stood for included: without their marker they are as lost as the rest). */
  discard(): number {
    const lost = this.pendingEvents + this.pendingProjected;
    this.out.len = 0;
    this.pendingEvents = 0;
    this.pendingProjected = 0;
    return lost;
  }

  /** Publishes progress: the ring space and the index range are done with. */
  publish(lastIndex: number, events: number, projected = 0): void {
    const { ctl, num } = this.ring;
    // Several fields change together; a holder killed among them must leave its successor able to
    // tell which did. The old counters and the READ_POS about to be stored are saved first: if
    // READ_POS still differs from the target, the successor restores the counters and re-reads
    // (and recounts) the records; if it equals it, all of this publish happened.
    const target = this.pendingReadPos >= 0 ? this.pendingReadPos | 0 : Atomics.load(ctl, Ctl.READ_POS);
    num[Num.PREV_LINES] = num[Num.LINES]!;
    num[Num.PREV_LAST_INDEX] = num[Num.LAST_INDEX]!;
    num[Num.PREV_PROJECTED] = num[Num.PROJECTED]!;
    Atomics.store(ctl, Ctl.PUB_TARGET, target);
    Atomics.store(ctl, Ctl.PUBLISHING, 1);
    num[Num.LINES] = num[Num.LINES]! + events;
    num[Num.PROJECTED] = num[Num.PROJECTED]! + projected;
    if (lastIndex > num[Num.LAST_INDEX]!) num[Num.LAST_INDEX] = lastIndex;
    Atomics.store(ctl, Ctl.READ_POS, target);
    if (this.mirror !== undefined) mirrorReadPos(this.mirror, target);
    this.pendingReadPos = -1;
    Atomics.store(ctl, Ctl.PUBLISHING, 0);
    Atomics.store(ctl, Ctl.WRITTEN, (num[Num.LAST_INDEX]! + 1) | 0);
    this.maybeFsync();
    Atomics.notify(ctl, Ctl.READ_POS);
    Atomics.notify(ctl, Ctl.WRITTEN);
  }

  /** fsyncs the current segment if a flush({ fsync: true }) asked and its events are written. */
  maybeFsync(): void {
    const { ctl } = this.ring;
    const want = Atomics.load(ctl, Ctl.FSYNC_REQUEST);
    // DONE holds the WRITTEN value the last fsync covered, which may be past the request.
    if (reached(Atomics.load(ctl, Ctl.FSYNC_DONE), want)) return;
    const written = Atomics.load(ctl, Ctl.WRITTEN);
    if (((written - want) | 0) < 0) return;
    try {
      this.io.fsync(this.currentFd());
    } catch {
      // fsync is unsupported on pipes and some file systems; the data is written all the same.
    }
    Atomics.store(ctl, Ctl.FSYNC_DONE, written);
    Atomics.notify(ctl, Ctl.FSYNC_DONE);
  }

  private writeAll(fd: number, len: number): void {
    let off = 0;
    let attempt = 0;
    while (off < len) {
      try {
        off += this.io.write(fd, this.out.buf, off, len - off);
        attempt = 0;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!TRANSIENT.has(code) || attempt >= TRANSIENT_RETRIES) throw err;
        sleepSync(1 << attempt++);
      }
    }
  }

  /**
   * The current segment's fd, opened again if it was closed to keep the process's descriptors
   * bounded (an idle sink's segment is closed, see closeFd). Only the LOCK holder calls this.
   */
  currentFd(): number {
    const { ctl } = this.ring;
    if (Atomics.load(ctl, Ctl.STALE_FD) !== CLOSED_FD) this.closeStale();
    const fd = Atomics.load(ctl, Ctl.FD);
    if (fd !== CLOSED_FD) return fd;
    const opened = this.openMakingDir(this.io.openForAppend, segmentPath(this.basePath, Atomics.load(ctl, Ctl.SEGMENT)));
    this.setFd(opened);
    return opened;
  }

  /**
   * Makes `fd`, just opened by this thread, the current segment's; the one before is let go.
   * CLOSED_FD first: a holder killed between the stores leaves no fd under another's opener (the
   * next holder opens the segment again by its path).
   */
  private setFd(fd: number): void {
    const { ctl } = this.ring;
    // Whatever was parked for this thread goes first, so the slot is free if the old fd must be.
    this.closeStale();
    const oldOpener = Atomics.load(ctl, Ctl.FD_OPENER);
    const old = Atomics.exchange(ctl, Ctl.FD, CLOSED_FD);
    Atomics.store(ctl, Ctl.FD_OPENER, fdOpener());
    Atomics.store(ctl, Ctl.FD, fd);
    this.letGo(old, oldOpener);
  }

  /**
   * Closes a segment fd this sink is done with, or, when another thread tracks it
   * (src/threads/descriptors.ts), parks it for that thread, which closes it the next time it
   * holds the lock (closeStale). Only a worker thread's own flushSync or exit drain rotating past
   * its writer's segment parks one. Two threads at most ever hold a sink's lock and each collects
   * what is parked for it before it parks anything (setFd), so the slot is free when one is parked.
   */
  private letGo(fd: number, opener: number): void {
    if (fd === CLOSED_FD) return;
    if (mayClose(opener)) {
      this.closeQuietly(fd);
      return;
    }
    const { ctl } = this.ring;
    Atomics.store(ctl, Ctl.STALE_FD, CLOSED_FD);
    Atomics.store(ctl, Ctl.STALE_OPENER, opener);
    Atomics.store(ctl, Ctl.STALE_FD, fd);
  }

  /** Closes the fd another thread let go of, if it is this thread's to close. */
  closeStale(): void {
    const { ctl } = this.ring;
    if (!mayClose(Atomics.load(ctl, Ctl.STALE_OPENER))) return;
    const fd = Atomics.exchange(ctl, Ctl.STALE_FD, CLOSED_FD);
    if (fd !== CLOSED_FD) this.closeQuietly(fd);
  }

  private closeQuietly(fd: number): void {
    try {
      this.io.close(fd);
    } catch {
      // A segment this sink is done with: what was written through it is in the file already.
    }
  }

  /** Closes the current segment's fd until the next write needs it. Only the LOCK holder calls this. */
  closeFd(): void {
    const { ctl } = this.ring;
    // One this thread may not close stays where it is, still good to write through.
    if (!mayClose(Atomics.load(ctl, Ctl.FD_OPENER))) return;
    this.letGo(Atomics.exchange(ctl, Ctl.FD, CLOSED_FD), fdOpener());
  }

  /**
   * A worker thread's own drain (flushSync, a barrier with no writer) lets go of a segment it
   * opened before it lets go of the lock: its writer could not close it, and would leave it open.
   */
  closeIfTracked(): void {
    if (!tracksDescriptors()) return;
    this.closeStale();
    // A FIFO's or a device's fd is the sink's for its whole life (its reader would see end-of-file).
    if (Atomics.load(this.ring.ctl, Ctl.CLOSABLE) !== 1) return;
    if (Atomics.load(this.ring.ctl, Ctl.FD_OPENER) === fdOpener()) this.closeFd();
  }

  /** Opens the current segment's path afresh (its file was removed) and makes it the shared fd. */
  private recreate(): number {
    const { ctl, num } = this.ring;
    const fd = this.openMakingDir(this.io.openForAppend, segmentPath(this.basePath, Atomics.load(ctl, Ctl.SEGMENT)));
    num[Num.FILE_BYTES] = 0;
    // The old fd points at a file with no name: nothing to keep.
    this.setFd(fd);
    return fd;
  }

  /**
   * Opens a segment; when its directory is gone (removed under the sink, a log cleaner's rm -rf),
   * makes it again with its parents first, as open() did, so that logging is not over for good.
   * Anything else in the way (a regular file where the directory was, no permission) stays a
   * persistent fault, tried again after each backoff like any other.
   */
  private openMakingDir(open: (path: string) => number, where: string): number {
    for (let attempt = 1; ; attempt++) {
      try {
        return open(where);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt === MAKE_DIR_ATTEMPTS) throw err;
        this.io.makeDir(path.dirname(where));
      }
    }
  }

  /** After a failed write the segment may end mid-line: cut it back to what was committed. */
  private cutBack(fd: number): void {
    try {
      this.io.truncate(fd, this.ring.num[Num.FILE_BYTES]!);
    } catch {
      // The next holder's tail scan repairs it (DIRTY stays set while the fault persists).
    }
  }

  /**
   * Closes the current segment and starts the next, empty one. SEGMENT is stored before FD: a
   * holder killed between the two leaves the next segment's number with the previous segment's fd,
   * which recovery detects by the fd's identity (SegmentWriter never truncates a file it did not
   * just create).
   */
  private rotate(): void {
    const { ctl, num } = this.ring;
    const next = Atomics.load(ctl, Ctl.SEGMENT) + 1;
    const fd = this.openMakingDir(this.io.openForRotation, segmentPath(this.basePath, next));
    num[Num.FILE_BYTES] = 0;
    Atomics.store(ctl, Ctl.SEGMENT, next);
    this.setFd(fd);
    this.onRotated(next);
  }
}
