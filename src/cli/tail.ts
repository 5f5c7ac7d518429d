// `ringlog tail`: the last lines of a set, found by reading the last segment(s) backwards from the
// end (so the cost does not grow with the set), then, with -f, the lines appended after them. With
// filters, the last lines that pass them (read backwards as far as it takes). Readable on a
// terminal, as written when piped.

import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { envelopeOf } from '../files/format.js';
import { followRecords, readRecords } from '../reader/index.js';
import type { RawRecord, SegmentInfo } from '../reader/index.js';
import { stopOnSignals, type Run } from './context.js';
import { makeFilter, recordOfText, reportUnmatchedTypes, type Filter, type FilterOptions } from './filters.js';
import { warn } from './output.js';
import { lineStyle, styled, type LineStyle } from './pretty.js';
import { withSource, type SetSource, type SourceArgs, type TopicSource } from './source.js';
import { logFailure, PAGE, topicRecord } from './topic-source.js';

export interface TailOptions extends SourceArgs, FilterOptions {
  lines: number;
  follow?: boolean;
  json?: boolean;
  pretty?: boolean;
}

/** What one run of tail prints with: its filter and its line style. */
interface Printing {
  readonly filter: Filter;
  readonly style: LineStyle;
  keep(text: string): boolean;
}

const NEWLINE = 0x0a;
/** Bytes per backward read: a few typical lines of the large corpus per step, and one cheap syscall. */
const BACK_STEP = 64 * 1024;

export async function tail(run: Run, arg: string | undefined, opts: TailOptions): Promise<void> {
  const filter = makeFilter(opts);
  const p: Printing = { filter, style: lineStyle(opts), keep: (text) => !filter.active || filter.test(recordOfText(text)) };
  let readAll = true;
  await withSource(arg, opts, async (src) => {
    if (src.kind === 'topic') {
      // Read backwards only as far as it takes: it cannot tell that a type matched nothing.
      readAll = false;
      return tailTopic(run, src, opts, p);
    }
    const { out } = run;
    if (src.kind === 'set') {
      const { lines, last, complete } = await lastLines(src.segments, opts.lines, p.keep);
      // Only a read of the whole set can tell that a type matched nothing.
      readAll = complete;
      for (const line of lines) {
        out.line(styled(line, p.style));
        if (out.full) await out.flush();
      }
      await out.flush();
      if (opts.follow && !run.signal.aborted) await follow(run, src, p, last);
      return;
    }
    // A stream can only be read forwards: keep the last lines as they pass. (-f has nothing to
    // follow on a pipe, as with tail(1): the stream's end is the end.)
    const ring = new LineRing(opts.lines, p.keep);
    for await (const chunk of src.stream as AsyncIterable<Buffer | string>) {
      ring.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
      if (run.signal.aborted) return;
    }
    for (const line of ring.lines()) out.line(styled(line.toString('utf8'), p.style));
    await out.flush();
  });
  if (!opts.follow && !run.signal.aborted && readAll) reportUnmatchedTypes(filter);
}

/** The topic's last events (found from its latest id, so the cost does not grow with the topic), then with -f its live ones. */
async function tailTopic(run: Run, src: TopicSource, opts: TailOptions, p: Printing): Promise<void> {
  const { log, topic } = src;
  const { out } = run;
  let unhook = (): void => undefined;
  try {
    const latest = (await log.latest(topic)) ?? 0;
    // Pages backwards from the latest id until enough events pass the filters (ids are gap-free,
    // compaction only removes a prefix, so a page is a range of ids).
    let shown: RawRecord[] = [];
    for (let end = latest; end > 0 && shown.length < opts.lines && !run.signal.aborted; ) {
      const start = Math.max(0, end - Math.max(PAGE, opts.lines));
      const page = await log.readRange(topic, start, end - start);
      if (page.length === 0) break;
      const kept = page.map((e) => topicRecord(topic, e, 0)).filter((r) => !p.filter.active || p.filter.test(r));
      shown = kept.slice(Math.max(0, kept.length - (opts.lines - shown.length))).concat(shown);
      end = start;
    }
    for (const text of shown.map((r) => r.text)) {
      out.line(styled(text, p.style));
      if (out.full) await out.flush();
    }
    await out.flush();
    if (!opts.follow || run.signal.aborted) return;
    // From the latest id, by the log's own subscription: no gap, no duplicate at the seam.
    unhook = stopOnSignals(run);
    for await (const e of log.subscribe(topic, latest, { signal: run.signal })) {
      const rec = topicRecord(topic, e, 0);
      if (p.filter.active && !p.filter.test(rec)) continue;
      out.line(styled(rec.text, p.style));
      if (out.full) await out.flush();
      else out.flushSoon();
    }
    await out.flush();
  } catch (err) {
    throw logFailure(err);
  } finally {
    unhook();
  }
}

/** Prints what is appended after `last`, the set's last line when tail read it. */
async function follow(run: Run, src: SetSource, p: Printing, last: string | undefined): Promise<void> {
  const from = last === undefined ? 0 : (nextIndexAfter([last]) ?? (await nextIndexByScan(src.base, run.signal)));
  const unhook = stopOnSignals(run);
  const { out } = run;
  try {
    const records = followRecords(src.base, { fromIndex: from, signal: run.signal, issues: 'warn', onIssue: (issue) => warn(issue.message) });
    for await (const rec of records) {
      if (p.filter.active && !p.filter.test(rec)) continue;
      out.line(styled(rec.text, p.style));
      // A follower is read by a person or a pipeline waiting for each line: write as soon as the
      // burst that arrived together is in, and only wait for drain when a lot is pending.
      if (out.full) await out.flush();
      else out.flushSoon();
    }
    await out.flush();
  } finally {
    unhook();
  }
}

/** The index after the last of these lines that has a readable envelope. */
function nextIndexAfter(lines: readonly string[]): number | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    let value: unknown;
    try {
      value = JSON.parse(lines[i]!);
    } catch {
      continue;
    }
    const env = envelopeOf(value, false);
    if (typeof env !== 'string') return env.index + env.covers;
  }
  return undefined;
}

/** Slow path, for a set whose last lines are all damaged: the index after the last readable record. */
async function nextIndexByScan(base: string, signal: AbortSignal): Promise<number> {
  let next = 0;
  for await (const rec of readRecords(base, { issues: 'warn', onIssue: () => undefined, signal })) next = rec.index + rec.covers;
  return next;
}

/** The last `want` complete lines of the set (an unterminated line at the end is not one yet). */
/** The set's last lines that `keep` accepts, oldest first, and its very last line (kept or not). */
export interface LastLines {
  readonly lines: string[];
  /** The last complete line of the set when it was read: where -f continues from. */
  readonly last: string | undefined;
  /** Whether every line of the set was looked at (so a filter that kept nothing matched nothing). */
  readonly complete: boolean;
}

/** The last `want` complete lines of the set that `keep` accepts (an unterminated line at the end is not one yet). */
export async function lastLines(segments: readonly SegmentInfo[], want: number, keep: (text: string) => boolean = () => true): Promise<LastLines> {
  let lines: string[] = [];
  let last: string | undefined;
  let complete = true;
  // At least the last line is looked at, even for -n 0, since -f follows from it.
  for (let i = segments.length - 1; i >= 0; i--) {
    if (lines.length >= want && last !== undefined) {
      complete = false;
      break;
    }
    const seg = segments[i]!;
    const found = seg.compressed ? await lastLinesGz(seg.path, want - lines.length, keep) : await lastLinesPlain(seg.path, want - lines.length, keep);
    last ??= found.last;
    lines = found.lines.concat(lines);
    if (!found.complete) {
      complete = false;
      break;
    }
  }
  return { lines, last, complete };
}

/** Reads backwards from the end of the file, a block at a time, until `want` lines are kept. */
async function lastLinesPlain(file: string, want: number, keep: (text: string) => boolean): Promise<LastLines> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (err) {
    // Removed since it was listed (retention): it has no lines to give.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], last: undefined, complete: true };
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    const kept: string[] = [];
    let last: string | undefined;
    // The blocks (in file order) read after the current one that hold no newline yet: the end of a
    // line that began before them, joined once (a long line is copied once, not once per block).
    let tail: Buffer[] = [];
    // Bytes after the file's last newline are a line still being written: not a line yet.
    let seenEnd = false;
    let start = size;
    const take = (text: string): boolean => {
      last ??= text;
      if (kept.length < want && keep(text)) kept.push(text);
      return kept.length >= want;
    };
    while (start > 0) {
      const from = Math.max(0, start - BACK_STEP);
      const buf = Buffer.allocUnsafe(start - from);
      const { bytesRead } = await fh.read(buf, 0, buf.length, from);
      let block = buf.subarray(0, bytesRead);
      start = from;
      if (!seenEnd) {
        const end = block.lastIndexOf(NEWLINE);
        if (end < 0) continue; // all of it is the unfinished line
        block = block.subarray(0, end);
        seenEnd = true;
        tail = [];
      }
      // Lines that end in this block, last first: each runs from the newline before it (or this
      // block's start, then on into earlier blocks) to its own end.
      let lineEnd = block.length;
      let done = false;
      for (let nl = lineEnd === 0 ? -1 : block.lastIndexOf(NEWLINE, lineEnd - 1); nl >= 0; nl = nl === 0 ? -1 : block.lastIndexOf(NEWLINE, nl - 1)) {
        const piece = block.subarray(nl + 1, lineEnd);
        const text = tail.length === 0 ? piece.toString('utf8') : Buffer.concat([piece, ...tail]).toString('utf8');
        tail = [];
        if (take(text)) {
          done = true;
          break;
        }
        lineEnd = nl;
      }
      if (done) return { lines: kept.reverse(), last, complete: false };
      // What is left of the block begins a line that started earlier: it goes in front of the tail.
      tail.unshift(Buffer.from(block.subarray(0, lineEnd)));
    }
    // The file's first line: everything before its first newline (a file with no newline has no
    // complete line at all).
    if (seenEnd && !take(Buffer.concat(tail).toString('utf8'))) return { lines: kept.reverse(), last, complete: true };
    return { lines: kept.reverse(), last, complete: !seenEnd };
  } finally {
    await fh.close();
  }
}

async function lastLinesGz(file: string, want: number, keep: (text: string) => boolean): Promise<LastLines> {
  const ring = new LineRing(want, keep);
  try {
    for await (const chunk of fs.createReadStream(file).pipe(zlib.createGunzip()) as AsyncIterable<Buffer>) ring.push(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { lines: [], last: undefined, complete: true };
    throw err;
  }
  const last = ring.lastLine();
  return { lines: ring.lines().map((b) => b.toString('utf8')), last: last === undefined ? undefined : last.toString('utf8'), complete: true };
}

/** Keeps the last `size` complete lines of a byte stream pushed in chunks. */
export class LineRing {
  private readonly ring: Buffer[] = [];
  private next = 0;
  private carry: Buffer[] = [];
  private lastSeen: Buffer | undefined;

  /** `keep`: which lines count (all, by default). */
  constructor(
    private readonly size: number,
    private readonly keepLine: (text: string) => boolean = () => true,
  ) {}

  /** The last complete line pushed, kept or not. */
  lastLine(): Buffer | undefined {
    return this.lastSeen;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    for (let nl = chunk.indexOf(NEWLINE); nl >= 0; nl = chunk.indexOf(NEWLINE, pos)) {
      const piece = chunk.subarray(pos, nl);
      const line = this.carry.length > 0 ? Buffer.concat([...this.carry, piece]) : piece;
      this.carry = [];
      this.keep(line);
      pos = nl + 1;
    }
    if (pos < chunk.length) this.carry.push(chunk.subarray(pos));
  }

  private keep(line: Buffer): void {
    // Copied: the chunk may be a pooled buffer reused by the stream.
    const own = Buffer.from(line);
    this.lastSeen = own;
    if (this.size === 0 || !this.keepLine(own.toString('utf8'))) return;
    if (this.ring.length < this.size) this.ring.push(own);
    else this.ring[this.next] = own;
    this.next = (this.next + 1) % this.size;
  }

  /** The kept lines, oldest first. */
  lines(): Buffer[] {
    if (this.ring.length < this.size) return [...this.ring];
    return [...this.ring.slice(this.next), ...this.ring.slice(0, this.next)];
  }
}
