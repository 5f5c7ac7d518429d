// Reading a rotated set in index order — once (readEvents/readRecords) or following a live writer
// (followEvents/followRecords) — plus eventAt and one NDJSON stream (readStream).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { segmentName } from '../files/format.js';
import { decodeEnvelope } from './decode.js';
import { DamagedData, ioError, listSegments, openSegment, type ChunkSource } from './files.js';
import { EVENTS, IndexChecker, IssueItem, LineProcessor, RECORDS, issueSink, selection, type LineKind } from './lines.js';
import { checkpointFor, forEachLine, getIndex } from './sparse-index.js';
import {
  ReadError,
  type FollowOptions,
  type PersistedEvent,
  type RawRecord,
  type ReadIssue,
  type ReadOptions,
  type SegmentInfo,
  type UntypedEvent,
} from './types.js';

/**
 * Default poll interval of a follower. File-system notifications normally wake it at once; the
 * poll is the fallback where they do not arrive (network and some container file systems, or
 * fs.watch unavailable), and 100 ms keeps a watched tail feeling live to a person while costing
 * ten stat+readdir calls a second.
 */
export const DEFAULT_POLL_MS = 100;

export function readEvents<E extends object = UntypedEvent>(basePath: string, options: ReadOptions = {}): AsyncIterableIterator<PersistedEvent<E>> {
  return walkSet(basePath, options, eventsAs<E>(), null);
}

export function readRecords(basePath: string, options: ReadOptions = {}): AsyncIterableIterator<RawRecord> {
  return walkSet(basePath, options, RECORDS, null);
}

export function followEvents<E extends object = UntypedEvent>(basePath: string, options: FollowOptions): AsyncIterableIterator<PersistedEvent<E>> {
  return walkSet(basePath, options, eventsAs<E>(), followConfig(options));
}

/** Lines are parsed, not validated against `E`: the type parameter is the caller's assertion. */
const eventsAs = <E extends object>(): LineKind<PersistedEvent<E>> => EVENTS as LineKind<PersistedEvent<E>>;

export function followRecords(basePath: string, options: FollowOptions): AsyncIterableIterator<RawRecord> {
  return walkSet(basePath, options, RECORDS, followConfig(options));
}

interface Follow {
  signal: AbortSignal;
  pollMs: number;
}

function followConfig(options: FollowOptions): Follow {
  if (!(options?.signal instanceof AbortSignal)) throw new TypeError('followEvents needs options.signal (an AbortSignal) to be stopped by');
  const pollMs = options.pollIntervalMs ?? DEFAULT_POLL_MS;
  if (typeof pollMs !== 'number' || !(pollMs > 0) || !Number.isFinite(pollMs)) throw new RangeError(`pollIntervalMs must be a positive number, got ${pollMs}`);
  return { signal: options.signal, pollMs };
}

/** Delivers a batch: records are yielded, issues thrown or handed to the issue sink, in order. */
function* deliver<T>(batch: (T | IssueItem)[], onIssue: (issue: ReadIssue) => void): Generator<T> {
  for (const item of batch) {
    if (item instanceof IssueItem) onIssue(item.issue);
    else yield item;
  }
}

function walkSet<T>(basePath: string, options: ReadOptions, kind: LineKind<T>, follow: Follow | null): AsyncIterableIterator<T> {
  if (typeof basePath !== 'string' || basePath.length === 0) throw new TypeError('basePath must be a non-empty string');
  const sel = selection(options);
  const onIssue = issueSink(options);
  const signal = options.signal;
  return walk();

  async function* walk(): AsyncGenerator<T> {
    if (signal?.aborted) return;
    const checker = new IndexChecker();
    const proc = new LineProcessor(kind, sel, checker);
    let segs = await listSegments(basePath);
    if (segs.length === 0 && !follow) {
      throw new ReadError(`${basePath}: no such event log (neither the base file nor any segment exists)`, {
        code: 'ERR_RINGLOG_READ_IO',
        file: basePath,
        line: 0,
      });
    }
    // Where to start: the start of the set, or near fromIndex when the sparse index knows where.
    let next: SegmentInfo | undefined = segs[0];
    let offset = 0;
    let firstLine = 1;
    if (sel.from > 0 && segs.length > 0) {
      const s = await seek(basePath, segs, sel.from);
      next = s.seg;
      offset = s.offset;
      firstLine = s.line;
    }
    const waiter = follow ? new ChangeWaiter(segmentName(basePath).dir, follow) : null;
    let lastNumber = -1;
    try {
      for (;;) {
        if (next === undefined) {
          if (!waiter) return;
          // Following and nothing newer yet: wait for the set to start or for the next segment.
          if (!(await waiter.wait())) return;
          segs = await listSegments(basePath);
          next = segs.find((s) => s.number > lastNumber);
          continue;
        }
        const seg: SegmentInfo = next;
        const src = await openSegment(seg, offset);
        if (!src) {
          // Gone since it was listed: compressed meanwhile (read the other form, from the same
          // decompressed offset), or deleted by retention (move on; the index check sees a gap).
          segs = await listSegments(basePath);
          const same = segs.find((s) => s.number === seg.number);
          if (same && same.compressed !== seg.compressed) next = same;
          else {
            next = segs.find((s) => s.number > seg.number);
            offset = 0;
            firstLine = 1;
          }
          continue;
        }
        proc.file = seg.path;
        proc.line = firstLine - 1;
        // How a set's start is told (README, Reading it back): a set read from the start of its
        // base file starts at index 0; one whose base file is gone or empty starts wherever the first
        // line of its oldest remaining segment does, since retention removes whole segments,
        // oldest first. Only the first line read is affected: everything after is checked as usual.
        checker.startAt(seg.number === 0 && offset === 0 ? 0 : undefined);
        let carry: Buffer | null = null;
        try {
          for (;;) {
            if (signal?.aborted) return;
            const chunk = await readChunk(src, seg.path, proc.line);
            if (chunk instanceof IssueItem) {
              // The lines inflated before the damage were delivered; a line cut by it is part of
              // the damage, not a torn line of its own. The next segment is read as usual, and the
              // index check reports what the damage took as a gap.
              yield* deliver<T>([chunk], onIssue);
              carry = null;
              break;
            }
            if (chunk === null) {
              if (!waiter) break;
              // A newer segment exists: this file is complete (the writer finishes a file before
              // it creates the next), so anything left is a torn line, reported below.
              if (segs.some((s) => s.number > seg.number)) break;
              if (!(await waiter.wait())) return;
              // Look for a newer segment before reading on, so the read that follows sees every
              // byte written before the rotation.
              segs = await listSegments(basePath);
              continue;
            }
            const data: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
            const batch: (T | IssueItem)[] = [];
            const used = proc.chunk(data, batch);
            carry = used < data.length ? data.subarray(used) : null;
            yield* deliver(batch, onIssue);
            if (proc.done) return;
          }
          if (carry !== null) {
            // Only the set's very last line may lack its newline (a writer killed mid-line): it is
            // skipped. Anywhere else it is damage.
            const isLast = !segs.some((s) => s.number > seg.number);
            if (!isLast || waiter) yield* deliver<T>([proc.torn(carry.length)], onIssue);
            else options.onTornTail?.({ file: seg.path, bytes: carry.length });
          }
        } finally {
          await src.close();
        }
        lastNumber = seg.number;
        next = segs.find((s) => s.number > seg.number);
        if (next !== undefined && next.number !== seg.number + 1) {
          // A directory listing is no snapshot: taken while the writer rotates, it can miss a
          // segment created while it ran yet show a newer one. Look again before the index check
          // calls the jump a gap. (A segment still missing then is a hole, or one retention removed
          // before this reader got to it: events it can no longer read, a gap either way.)
          segs = await listSegments(basePath);
          next = segs.find((s) => s.number > seg.number);
        }
        offset = 0;
        firstLine = 1;
      }
    } finally {
      waiter?.close();
    }
  }
}

/** The next chunk; a compressed segment that cannot be inflated to its end gives an issue instead. */
async function readChunk(src: ChunkSource, file: string, line: number): Promise<Buffer | null | IssueItem> {
  try {
    return await src.read();
  } catch (err) {
    if (err instanceof DamagedData) {
      const at = line + 1;
      return new IssueItem({
        code: 'ERR_RINGLOG_READ_CORRUPT',
        message: `${file}:${at}: compressed data damaged ${err.offset} bytes into the segment (${err.message}): line ${at} and the rest of the segment cannot be read`,
        file,
        line: at,
      });
    }
    throw ioError(err, file);
  }
}

/** The segment, offset and line number to start at so that `from` is not missed. */
async function seek(basePath: string, segs: SegmentInfo[], from: number): Promise<{ seg: SegmentInfo; offset: number; line: number }> {
  const idx = await getIndex(basePath, segs);
  const byName = new Map(idx.segments.map((e) => [e.name, e]));
  let best: { seg: SegmentInfo; offset: number; line: number } = { seg: segs[0]!, offset: 0, line: 1 };
  for (const seg of segs) {
    const e = byName.get(path.basename(seg.path));
    if (!e || e.firstIndex === null || e.firstIndex > from) continue;
    const [, offset, line] = checkpointFor(e, from);
    best = { seg, offset, line };
  }
  return best;
}

/**
 * The record covering `index`: found through the sparse index (built on first use, then reused,
 * extended or rebuilt), reading at most about one checkpoint interval of lines. A drop marker is
 * returned for the indexes it covers; an index the set does not hold gives undefined.
 */
export async function eventAt<E extends object = UntypedEvent>(basePath: string, index: number): Promise<PersistedEvent<E> | undefined> {
  if (typeof index !== 'number') throw new TypeError('index must be a number');
  if (!Number.isSafeInteger(index) || index < 0) return undefined;
  const segs = await listSegments(basePath);
  if (segs.length === 0) return undefined;
  const idx = await getIndex(basePath, segs);
  const byName = new Map(segs.map((s) => [path.basename(s.path), s]));
  for (const e of idx.segments) {
    if (e.firstIndex === null || e.lastIndex === null || index < e.firstIndex || index > e.lastIndex) continue;
    const seg = byName.get(e.name);
    if (!seg) continue;
    const [, offset] = checkpointFor(e, index);
    const src = await openSegment(seg, offset);
    if (!src) continue;
    let found: PersistedEvent<E> | undefined;
    let past = false;
    try {
      await forEachLine(src, (buf, start, end) => {
        const env = decodeEnvelope(buf, start, end);
        if (typeof env === 'string') return true;
        if (env.index <= index && index < env.index + env.covers) {
          try {
            found = JSON.parse(buf.toString('utf8', start, end)) as PersistedEvent<E>;
            return false;
          } catch {
            // A line whose envelope reads but whose body is not JSON is not an event.
            return true;
          }
        }
        if (env.index > index) {
          past = true;
          return false;
        }
        return true;
      });
    } catch (err) {
      throw ioError(err, seg.path);
    } finally {
      await src.close();
    }
    if (found !== undefined) return found;
    if (past) return undefined;
  }
  return undefined;
}

/**
 * One un-rotated NDJSON stream (stdin for `ringlog cat -`), with the same checks. Its last line
 * may lack a newline (a torn tail): skipped, as at the end of a set.
 */
export function readStream(stream: NodeJS.ReadableStream, options: ReadOptions = {}): AsyncIterableIterator<RawRecord> {
  if (stream === null || typeof stream !== 'object' || typeof (stream as AsyncIterable<unknown>)[Symbol.asyncIterator] !== 'function') {
    throw new TypeError('stream must be a readable stream');
  }
  const sel = selection(options);
  const onIssue = issueSink(options);
  const signal = options.signal;
  return (async function* (): AsyncGenerator<RawRecord> {
    const proc = new LineProcessor(RECORDS, sel, new IndexChecker());
    proc.file = '-';
    let carry: Buffer | null = null;
    const it = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
    try {
      for (;;) {
        if (signal?.aborted) return;
        let r: IteratorResult<Buffer | string>;
        try {
          r = await it.next();
        } catch (err) {
          throw ioError(err, '-');
        }
        if (r.done) {
          if (carry !== null) options.onTornTail?.({ file: '-', bytes: carry.length });
          return;
        }
        const chunk = typeof r.value === 'string' ? Buffer.from(r.value, 'utf8') : r.value;
        const data: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
        const batch: (RawRecord | IssueItem)[] = [];
        const used = proc.chunk(data, batch);
        carry = used < data.length ? data.subarray(used) : null;
        yield* deliver(batch, onIssue);
        if (proc.done) return;
      }
    } finally {
      await it.return?.();
    }
  })();
}

/** readStream over process.stdin unless another stream is given. */
export function readStdin(stream: NodeJS.ReadableStream = process.stdin, options: ReadOptions = {}): AsyncIterableIterator<RawRecord> {
  return readStream(stream, options);
}

/**
 * Wakes a follower when the directory changes (fs.watch), when the poll interval passes, or when
 * the signal aborts. A notification that arrives while the follower is busy reading is remembered,
 * so the next wait returns at once and no write is missed between a read and a wait.
 */
class ChangeWaiter {
  private watcher: fs.FSWatcher | null = null;
  private wake: (() => void) | null = null;
  private dirty = false;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly follow: Follow,
  ) {
    this.watch();
  }

  private watch(): void {
    if (this.watcher || this.closed) return;
    try {
      const w = fs.watch(this.dir, () => this.poke());
      w.on('error', () => {
        w.close();
        if (this.watcher === w) this.watcher = null;
      });
      this.watcher = w;
    } catch {
      // Directory not there yet, or no watch available: the poll carries on alone.
    }
  }

  private poke(): void {
    if (this.wake) this.wake();
    else this.dirty = true;
  }

  /** Resolves true on a change or poll tick, false once the signal aborted. */
  wait(): Promise<boolean> {
    const { signal, pollMs } = this.follow;
    if (signal.aborted) return Promise.resolve(false);
    this.watch();
    if (this.dirty) {
      this.dirty = false;
      return Promise.resolve(true);
    }
    return new Promise<boolean>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.wake = null;
        this.dirty = false;
        resolve(!signal.aborted);
      };
      const timer = setTimeout(done, pollMs);
      signal.addEventListener('abort', done, { once: true });
      this.wake = done;
    });
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    this.watcher = null;
    this.wake?.();
  }
}
