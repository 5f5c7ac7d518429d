// `ringlog tail`: the last lines of a set, found by reading the last segment(s) backwards from the
// end (so the cost does not grow with the set), then, with -f, the lines appended after them.

import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import { envelopeOf } from '../files/format.js';
import { followRecords, readRecords } from '../reader/index.js';
import type { SegmentInfo } from '../reader/index.js';
import { stopOnSignals, type Run } from './context.js';
import { warn } from './output.js';
import { withSource, type SetSource, type SourceArgs, type TopicSource } from './source.js';
import { logFailure, PAGE, topicRecord } from './topic-source.js';

export interface TailOptions extends SourceArgs {
  lines: number;
  follow?: boolean;
}

const NEWLINE = 0x0a;
/** Bytes per backward read: a few typical lines of the large corpus per step, and one cheap syscall. */
const BACK_STEP = 64 * 1024;

export function tail(run: Run, arg: string | undefined, opts: TailOptions): Promise<void> {
  return withSource(arg, opts, async (src) => {
    if (src.kind === 'topic') return tailTopic(run, src, opts);
    const { out } = run;
    if (src.kind === 'set') {
      // With -f at least one line is needed, to know the index to follow from.
      const lines = await lastLines(src.segments, Math.max(opts.lines, opts.follow ? 1 : 0));
      for (const line of lines.slice(lines.length - opts.lines)) {
        out.line(line);
        if (out.full) await out.flush();
      }
      await out.flush();
      if (opts.follow && !run.signal.aborted) await follow(run, src, lines);
      return;
    }
    // A stream can only be read forwards: keep the last lines as they pass. (-f has nothing to
    // follow on a pipe, as with tail(1): the stream's end is the end.)
    const ring = new LineRing(opts.lines);
    for await (const chunk of src.stream as AsyncIterable<Buffer | string>) {
      ring.push(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
      if (run.signal.aborted) return;
    }
    for (const line of ring.lines()) out.line(line.toString('utf8'));
    await out.flush();
  });
}

/** The topic's last events (found from its latest id, so the cost does not grow with the topic), then with -f its live ones. */
async function tailTopic(run: Run, src: TopicSource, opts: TailOptions): Promise<void> {
  const { log, topic } = src;
  const { out } = run;
  let unhook = (): void => undefined;
  try {
    const latest = (await log.latest(topic)) ?? 0;
    let last = Math.max(0, latest - opts.lines);
    while (last < latest && !run.signal.aborted) {
      const page = await log.readRange(topic, last, Math.min(PAGE, latest - last));
      if (page.length === 0) break;
      for (const e of page) out.line(topicRecord(topic, e, 0).text);
      last = page[page.length - 1]!.id;
      if (out.full) await out.flush();
    }
    await out.flush();
    if (!opts.follow || run.signal.aborted) return;
    // From the last id shown, by the log's own subscription: no gap, no duplicate at the seam.
    unhook = stopOnSignals(run);
    for await (const e of log.subscribe(topic, latest, { signal: run.signal })) {
      out.line(topicRecord(topic, e, 0).text);
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

async function follow(run: Run, src: SetSource, shown: readonly string[]): Promise<void> {
  const from = nextIndexAfter(shown) ?? (shown.length === 0 ? 0 : await nextIndexByScan(src.base, run.signal));
  const unhook = stopOnSignals(run);
  const { out } = run;
  try {
    const records = followRecords(src.base, { fromIndex: from, signal: run.signal, issues: 'warn', onIssue: (issue) => warn(issue.message) });
    for await (const rec of records) {
      out.line(rec.text);
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
export async function lastLines(segments: readonly SegmentInfo[], want: number): Promise<string[]> {
  let lines: string[] = [];
  for (let i = segments.length - 1; i >= 0 && lines.length < want; i--) {
    const seg = segments[i]!;
    const more = seg.compressed ? await lastLinesGz(seg.path, want - lines.length) : await lastLinesPlain(seg.path, want - lines.length);
    lines = [...more, ...lines];
  }
  return lines;
}

async function lastLinesPlain(file: string, want: number): Promise<string[]> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, 'r');
  } catch (err) {
    // Removed since it was listed (retention): it has no lines to give.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    const blocks: Buffer[] = [];
    let start = size;
    let newlines = 0;
    // want + 1 newlines: the last `want` lines end at the last `want` of them, and the one before
    // marks where the first of those lines starts.
    while (start > 0 && newlines < want + 1) {
      const from = Math.max(0, start - BACK_STEP);
      const buf = Buffer.allocUnsafe(start - from);
      const { bytesRead } = await fh.read(buf, 0, buf.length, from);
      const block = buf.subarray(0, bytesRead);
      for (let p = block.indexOf(NEWLINE); p >= 0; p = block.indexOf(NEWLINE, p + 1)) newlines++;
      blocks.unshift(block);
      start = from;
    }
    const data = Buffer.concat(blocks);
    const end = data.lastIndexOf(NEWLINE);
    if (end < 0) return [];
    const parts = data.toString('utf8', 0, end).split('\n');
    // Unless the read reached the start of the file, the first part is the tail of a longer line.
    if (start > 0) parts.shift();
    return parts.slice(Math.max(0, parts.length - want));
  } finally {
    await fh.close();
  }
}

async function lastLinesGz(file: string, want: number): Promise<string[]> {
  const ring = new LineRing(want);
  try {
    for await (const chunk of fs.createReadStream(file).pipe(zlib.createGunzip()) as AsyncIterable<Buffer>) ring.push(chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return ring.lines().map((b) => b.toString('utf8'));
}

/** Keeps the last `size` complete lines of a byte stream pushed in chunks. */
export class LineRing {
  private readonly ring: Buffer[] = [];
  private next = 0;
  private carry: Buffer[] = [];

  constructor(private readonly size: number) {}

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
    if (this.size === 0) return;
    // Copied: the chunk may be a pooled buffer reused by the stream.
    const own = Buffer.from(line);
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
