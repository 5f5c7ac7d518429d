// Retention and compression of closed segments. It runs on the caller's thread but does no
// blocking work there: gzip runs in a thread of its own (compressor.ts), removals go through
// fs.promises. Nothing it does can affect writing: its failures reach onError with their own codes
// (ERR_RINGLOG_COMPRESS, ERR_RINGLOG_RETENTION), and a segment it fails to compress stays plain.
//
// Retention removes one segment at a time, oldest first, every form of it before the next: a
// process that dies at any point (exit, SIGKILL) leaves the newest segments as one contiguous run,
// which readers take for a set whose beginning was removed (README, Reading it back). Removing
// several at once, or skipping one that is busy, would leave a hole in the middle: a real gap.

import * as fs from 'node:fs';
import { Compressor } from './compressor.js';
import { ErrorCode, faultInfo, SinkError, type FaultInfo } from '../errors.js';
import type { CompressResult, CompressTask } from './compress-messages.js';
import { GZ_SUFFIX, GZ_TMP_SUFFIX, listSegmentFiles, segmentPath } from './format.js';

/** close() keeps the process alive while it waits for the last jobs; the timer never needs to fire. */
const KEEP_ALIVE_MS = 60_000;

export interface JanitorOptions {
  readonly basePath: string;
  /** Segments kept, the current one included; Infinity: no limit. */
  readonly maxFiles: number;
  readonly compress: boolean;
  readonly level: number;
  readonly onError: ((err: SinkError) => void) | undefined;
}

export interface JanitorStats {
  /** Segments compressed by this sink. */
  readonly segmentsCompressed: number;
  /** Segments removed by retention. */
  readonly segmentsRemoved: number;
}

export class Janitor {
  readonly #o: JanitorOptions;
  /** The current segment as last heard: every lower one is closed. */
  #current: number;
  /** Segments at or below this are gone or going (retention): none is compressed any more. */
  #retiredThrough = -1;
  /** Segments still to remove, ascending; the first is removed before the next is touched. */
  readonly #doomed: number[] = [];
  /** A removal is in flight (of #doomed[0]). */
  #removing = false;
  /** The oldest doomed segment could not be removed: retention waits for the next rotation to retry. */
  #removalBlocked = false;
  /** The segment whose removal failure was reported (once per segment, not once per retry). */
  #reportedFailure = -1;
  /** Closed segments waiting to be compressed, ascending; taken newest first, one job at a time. */
  readonly #queue: number[] = [];
  #running: number | undefined;
  #nextJob: NodeJS.Timeout | undefined;
  /** The open-time tidy-up of stale temporary files in flight. */
  readonly #chores = new Set<Promise<void>>();
  /**
   * One compression thread, one job at a time: the writer thread and the caller's thread already
   * want a core each on a two-core machine; a second compressor would take the writer's share, and
   * one gzip stream at the default level (~200 MB/s on the 2-core VM) keeps up with any sink not
   * writing flat out.
   */
  readonly #compressor = new Compressor();
  #stopped = false;
  #closing = false;
  #keepAlive: NodeJS.Timeout | undefined;
  readonly #idleWaiters: (() => void)[] = [];
  /** No compression thread can start here: closed segments are left plain. */
  #compressOff = false;
  #compressed = 0;
  #removed = 0;

  constructor(opts: JanitorOptions, current: number) {
    this.#o = opts;
    this.#current = current;
  }

  get stats(): JanitorStats {
    return { segmentsCompressed: this.#compressed, segmentsRemoved: this.#removed };
  }

  /**
   * Open in append mode: finish what an earlier run left. Stale `.gz.tmp` files go (no job of this
   * sink has started yet), closed segments still plain are compressed — also those a crash left in
   * both forms: compressing again is simpler than proving the `.gz` complete, and just as safe,
   * since the job replaces it by rename — and retention applies to the whole set.
   */
  resume(): void {
    const files = listSegmentFiles(this.#o.basePath);
    const current = this.#current;
    this.#retire(current - this.#o.maxFiles, files);
    if (!this.#o.compress) return;
    const plain = new Set(files.filter((f) => f.form === 'plain' && f.n < current && f.n > this.#retiredThrough).map((f) => f.n));
    for (const f of files) {
      // A segment about to be compressed keeps its stale temporary file: the job truncates it, and
      // removing it here could race with the job that recreates it.
      if (f.form === 'tmp' && f.n > this.#retiredThrough && !plain.has(f.n)) this.#chore(() => removeAll([f.path]), f.n);
    }
    this.#queue.push(...[...plain].sort((a, b) => a - b));
    this.#schedule();
  }

  /** The writer now writes `current`: every lower segment is closed for good. Idempotent. */
  closed(current: number): void {
    if (this.#stopped || current <= this.#current) return;
    if (this.#o.compress && !this.#compressOff) for (let n = this.#current; n < current; n++) this.#queue.push(n);
    this.#current = current;
    this.#removalBlocked = false;
    this.#retire(current - this.#o.maxFiles);
    this.#schedule();
  }

  /** Waits for every job and removal (new ones included until the queue is empty). */
  async close(): Promise<void> {
    if (this.#stopped) return;
    this.#closing = true;
    this.#keepAlive ??= setInterval(() => {}, KEEP_ALIVE_MS);
    try {
      this.#schedule();
      if (!this.#idle()) await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      await this.#compressor.destroy();
    } finally {
      clearInterval(this.#keepAlive);
      this.#keepAlive = undefined;
    }
  }

  /** At process exit: start nothing more. A job in flight dies with the process; its segment stays
   *  plain, and its temporary file is removed by the next open in append mode. */
  abandon(): void {
    this.#stopped = true;
    this.#queue.length = 0;
    if (this.#nextJob) clearTimeout(this.#nextJob);
  }

  /**
   * After abandon(), at process exit, once the last lines are written (`current` is the segment
   * they ended in): applies retention synchronously, oldest first, as far as it can. It stops below
   * a segment whose compression is in flight: the compression thread may still rename its `.gz`
   * into place before the process ends, so that segment and the younger ones stay, and the next
   * open in append mode removes them. A removal in flight is harmless: it targets the oldest doomed
   * segment, which this starts with too.
   */
  retireAtExit(current: number): void {
    const through = current - this.#o.maxFiles;
    for (let n = this.#retiredThrough + 1; n <= through; n++) this.#doomed.push(n);
    this.#retiredThrough = Math.max(this.#retiredThrough, through);
    for (const n of this.#doomed) {
      if (n === this.#running) return;
      try {
        if (removeAllSync(formsOf(segmentPath(this.#o.basePath, n)))) this.#removed++;
      } catch (err) {
        this.#report(ErrorCode.RETENTION, `cannot remove segment ${n}; younger segments are kept until it goes`, faultInfo(err));
        return;
      }
    }
    this.#doomed.length = 0;
  }

  /**
   * Dooms segments at or below `through`. With `files` (the listing at open), the ones listed;
   * otherwise every number since the last call: segments appear one by one as the writer rotates.
   */
  #retire(through: number, files?: readonly { n: number }[]): void {
    if (through > this.#retiredThrough) {
      // Queued jobs for these segments are pointless now; #startNext skips them.
      if (files) this.#doomed.push(...[...new Set(files.filter((f) => f.n <= through).map((f) => f.n))].sort((a, b) => a - b));
      else for (let n = this.#retiredThrough + 1; n <= through; n++) this.#doomed.push(n);
      this.#retiredThrough = through;
    }
    this.#removeNext();
  }

  /**
   * Removes the oldest doomed segment, then the next, one at a time. A segment being compressed is
   * waited for (#jobEnded calls back): its job renames a `.gz` into place, which would bring back a
   * segment already removed. The job is asked to stop, so the wait is one chunk of gzip rather
   * than the whole job. A failure stops retention at that segment until the next rotation
   * retries it: removing younger ones past it would make the hole this order exists to prevent.
   */
  #removeNext(): void {
    if (this.#stopped || this.#removing || this.#removalBlocked) return;
    const n = this.#doomed[0];
    if (n === undefined) return this.#settle();
    if (n === this.#running) return this.#compressor.cancel(segmentPath(this.#o.basePath, n));
    this.#removing = true;
    void removeAll(formsOf(segmentPath(this.#o.basePath, n))).then(
      (removed) => {
        this.#removing = false;
        if (this.#doomed[0] === n) this.#doomed.shift();
        if (removed) this.#removed++;
        this.#removeNext();
      },
      (err: unknown) => {
        this.#removing = false;
        this.#removalBlocked = true;
        if (this.#reportedFailure !== n) {
          this.#reportedFailure = n;
          this.#report(ErrorCode.RETENTION, `cannot remove segment ${n}; younger segments are kept until it goes`, faultInfo(err));
        }
        this.#settle();
      },
    );
  }

  #chore(work: () => Promise<unknown>, n: number): void {
    const p = work().then(
      () => undefined,
      (err: unknown) => this.#report(ErrorCode.RETENTION, `cannot remove a temporary file of segment ${n}`, faultInfo(err)),
    );
    const tracked = p.finally(() => {
      this.#chores.delete(tracked);
      this.#settle();
    });
    this.#chores.add(tracked);
  }

  /**
   * Starts the next job from a timer that does not hold the process: a program whose loop ends
   * without close() waits at most for the job in flight (the compression thread holds the process while
   * a job runs), never for the rest of the queue.
   */
  #schedule(): void {
    if (this.#stopped || this.#running !== undefined || this.#nextJob !== undefined) return;
    if (this.#queue.length === 0) return this.#settle();
    if (this.#closing) return this.#startNext();
    this.#nextJob = setTimeout(() => {
      this.#nextJob = undefined;
      this.#startNext();
    }, 0);
    this.#nextJob.unref();
  }

  #startNext(): void {
    let n: number | undefined;
    // Newest first: when compression lags behind rotation, the oldest waiting segments are the
    // next ones retention removes, so compressing them would be wasted work that retention then
    // has to wait for.
    while ((n = this.#queue.pop()) !== undefined && n <= this.#retiredThrough);
    if (n === undefined) return this.#settle();
    const segment = n;
    this.#running = segment;
    const source = segmentPath(this.#o.basePath, segment);
    void this.#run({ source, level: this.#o.level }).then(
      (result) => this.#jobEnded(segment, result),
      (err: unknown) => this.#jobEnded(segment, { type: 'failed', fault: faultInfo(err) }),
    );
  }

  #run(task: CompressTask): Promise<CompressResult> {
    return this.#compressor.run(task);
  }

  #jobEnded(segment: number, result: CompressResult): void {
    this.#running = undefined;
    if (result.type === 'done') this.#compressed++;
    else if (result.type === 'failed' && segment > this.#retiredThrough) {
      this.#report(ErrorCode.COMPRESS, `cannot compress segment ${segment}; it stays uncompressed`, result.fault);
    } else if (result.type === 'unavailable') {
      // Said once: no thread will ever start here, so nothing more is queued for it.
      this.#report(ErrorCode.COMPRESS, 'cannot start the compression thread; segments stay uncompressed', result.fault);
      this.#queue.length = 0;
      this.#compressOff = true;
    }
    // Retention may have been waiting for this segment.
    this.#removeNext();
    this.#schedule();
  }

  #idle(): boolean {
    const removals = this.#removing || (this.#doomed.length > 0 && !this.#removalBlocked && !this.#stopped);
    return this.#running === undefined && this.#queue.length === 0 && this.#chores.size === 0 && this.#nextJob === undefined && !removals;
  }

  #settle(): void {
    if (!this.#idle()) return;
    for (const resolve of this.#idleWaiters.splice(0)) resolve();
  }

  #report(code: ErrorCode, what: string, fault: FaultInfo): void {
    const onError = this.#o.onError;
    if (!onError) return;
    const err = new SinkError(`ringlog: ${what} in "${this.#o.basePath}" (${fault.code}: ${fault.message})`, {
      sink: this.#o.basePath,
      code,
      cause: fault,
    });
    try {
      onError(err);
    } catch (thrown) {
      // As from any other onError call: the application's own exception surfaces, uncaught.
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }
}

function formsOf(plain: string): string[] {
  return [plain, plain + GZ_SUFFIX, plain + GZ_TMP_SUFFIX];
}

/** removeAll, synchronously (for process exit). */
function removeAllSync(paths: readonly string[]): boolean {
  let any = false;
  for (const p of paths) {
    try {
      fs.unlinkSync(p);
      any = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return any;
}

/**
 * Removes the paths that exist; true when any did. All at once: they are the forms of one segment,
 * which stays part of the set while any of them is left, so their order does not matter, and
 * retention, which cannot overlap segments, then costs one round trip per segment rather than three.
 */
async function removeAll(paths: readonly string[]): Promise<boolean> {
  const results = await Promise.allSettled(paths.map((p) => fs.promises.unlink(p)));
  let any = false;
  for (const r of results) {
    if (r.status === 'fulfilled') any = true;
    else if ((r.reason as NodeJS.ErrnoException).code !== 'ENOENT') throw r.reason;
  }
  return any;
}
