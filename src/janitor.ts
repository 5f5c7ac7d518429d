// Retention and compression of closed segments. It runs on the caller's thread but does no
// blocking work there: gzip runs in a thread of its own (src/compressor.ts), removals go through
// fs.promises. Nothing it does can affect writing: its failures reach onError with their own codes
// (ERR_RINGLOG_COMPRESS, ERR_RINGLOG_RETENTION), and a segment it fails to compress stays plain.

import * as fs from 'node:fs';
import { Compressor } from './compressor.js';
import { ErrorCode, faultInfo, SinkError, type FaultInfo } from './errors.js';
import type { CompressResult, CompressTask } from './protocol.js';
import { GZ_SUFFIX, GZ_TMP_SUFFIX, listSegmentFiles, segmentPath } from './segments.js';

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
  /** Segments at or below this are gone or being removed (retention). */
  #retiredThrough = -1;
  /** Closed segments waiting to be compressed, oldest first (jobs run one at a time). */
  readonly #queue: number[] = [];
  #running: number | undefined;
  #nextJob: NodeJS.Timeout | undefined;
  /** Removals and the open-time tidy-up in flight. */
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
    if (this.#o.compress) for (let n = this.#current; n < current; n++) this.#queue.push(n);
    this.#current = current;
    this.#retire(current - this.#o.maxFiles);
    this.#schedule();
  }

  /** Waits for every job and removal (new ones included until the queue is empty), then ends the pool. */
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

  /** Removes segments at or below `through` in every form; one being compressed goes once its job ends. */
  #retire(through: number, files?: readonly { n: number; path: string }[]): void {
    if (through <= this.#retiredThrough) return;
    const from = this.#retiredThrough + 1;
    this.#retiredThrough = through;
    // Queued jobs for these segments are pointless now; #startNext skips them.
    if (files) {
      const doomed = new Map<number, string[]>();
      for (const f of files) if (f.n <= through) doomed.set(f.n, [...(doomed.get(f.n) ?? []), f.path]);
      for (const [n, paths] of doomed) this.#chore(() => removeAll(paths), n, true);
      return;
    }
    for (let n = from; n <= through; n++) {
      if (n === this.#running) continue; // #jobEnded removes it
      this.#chore(() => removeAll(formsOf(segmentPath(this.#o.basePath, n))), n, true);
    }
  }

  #chore(work: () => Promise<unknown>, n: number, counts = false): void {
    const p = work().then(
      (removed) => {
        if (counts && removed === true) this.#removed++;
      },
      (err: unknown) => this.#report(ErrorCode.RETENTION, `cannot remove segment ${n}`, faultInfo(err)),
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
    while ((n = this.#queue.shift()) !== undefined && n <= this.#retiredThrough);
    if (n === undefined) return this.#settle();
    const segment = n;
    this.#running = segment;
    const source = segmentPath(this.#o.basePath, segment);
    void this.#run({ source, level: this.#o.level }).then(
      (result) => this.#jobEnded(segment, result),
      (err: unknown) => this.#jobEnded(segment, { status: 'failed', fault: faultInfo(err) }),
    );
  }

  #run(task: CompressTask): Promise<CompressResult> {
    return this.#compressor.run(task);
  }

  #jobEnded(segment: number, result: CompressResult): void {
    this.#running = undefined;
    if (result.status === 'done') this.#compressed++;
    else if (result.status === 'failed') {
      this.#report(ErrorCode.COMPRESS, `cannot compress segment ${segment}; it stays uncompressed`, result.fault);
    }
    if (segment <= this.#retiredThrough) {
      this.#chore(() => removeAll(formsOf(segmentPath(this.#o.basePath, segment))), segment, true);
    }
    this.#schedule();
  }

  #idle(): boolean {
    return this.#running === undefined && this.#queue.length === 0 && this.#chores.size === 0 && this.#nextJob === undefined;
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

/** Removes the paths that exist; true when any did. */
async function removeAll(paths: readonly string[]): Promise<boolean> {
  let any = false;
  for (const p of paths) {
    try {
      await fs.promises.unlink(p);
      any = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return any;
}
