// Where a command reads from: a rotated set on disk (`<base>`, or a directory holding
// `event_log.jsonl`), or one NDJSON stream on stdin (`-`, or no argument when stdin is not a
// terminal), and what the reader skips silently that the CLI wants to report (a torn last line).

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { listSegments, readRecords, readStream } from '../reader/index.js';
import type { RawRecord, ReadOptions, SegmentInfo } from '../reader/index.js';
import { CliError, EXIT_USAGE } from './output.js';

/** The base file name a sink writes by default (README, Quick start), looked for inside a directory argument. */
export const DEFAULT_BASE_NAME = 'event_log.jsonl';

const NEWLINE = 0x0a;

export interface SetSource {
  readonly kind: 'set';
  readonly base: string;
  readonly segments: SegmentInfo[];
}

export interface StdinSource {
  readonly kind: 'stdin';
  readonly tap: StreamTap;
}

export type Source = SetSource | StdinSource;

export function sourceLabel(src: Source): string {
  return src.kind === 'set' ? src.base : '-';
}

/** A torn (unterminated) last line: where, and how many bytes of it there are. */
export interface TornTail {
  readonly file: string;
  readonly bytes: number;
}

/**
 * Counts what passes from stdin to the reader, so the end of the stream can be judged afterwards:
 * readStream skips an unterminated last line without a word.
 */
export class StreamTap {
  bytes = 0;
  /** Bytes after the last newline seen so far. */
  trailing = 0;

  constructor(private readonly stream: NodeJS.ReadableStream) {}

  async *chunks(): AsyncGenerator<Buffer> {
    for await (const chunk of this.stream as AsyncIterable<Buffer | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      this.bytes += buf.length;
      const nl = buf.lastIndexOf(NEWLINE);
      this.trailing = nl < 0 ? this.trailing + buf.length : buf.length - nl - 1;
      yield buf;
    }
  }
}

/**
 * Resolves the `<base>` argument. `-` is stdin; so is no argument when stdin is not a terminal
 * (`producer | ringlog stats`). A directory stands for the default base file inside it.
 */
export async function openSource(arg: string | undefined, opts: { stdin: boolean } = { stdin: true }): Promise<Source> {
  if (arg === undefined || arg === '-') {
    if (!opts.stdin) throw new CliError('missing <base>: this command reads a set on disk, not stdin', EXIT_USAGE);
    if (arg === undefined && process.stdin.isTTY) throw new CliError('missing <base> (the base file of a set, or - for stdin)', EXIT_USAGE);
    return { kind: 'stdin', tap: new StreamTap(process.stdin) };
  }
  const base = await resolveBase(arg);
  const segments = await listSegments(base);
  if (segments.length === 0) throw new CliError(`${arg}: no such event log`);
  return { kind: 'set', base, segments };
}

/** `<base>`, or `<dir>/event_log.jsonl` when the argument is a directory. */
export async function resolveBase(arg: string): Promise<string> {
  try {
    if ((await fs.promises.stat(arg)).isDirectory()) return path.join(arg, DEFAULT_BASE_NAME);
  } catch {
    // Not there as such: the base file may be gone while numbered segments remain.
  }
  return arg;
}

export function readSource(src: Source, options: ReadOptions): AsyncIterableIterator<RawRecord> {
  if (src.kind === 'set') return readRecords(src.base, options);
  // readStream only iterates what it is given, so the tap's generator stands in for the stream.
  return readStream(src.tap.chunks() as unknown as NodeJS.ReadableStream, options);
}

/** Bytes per backward step when looking for the last newline of a file. */
const BACK_STEP = 64 * 1024;

/**
 * The torn last line of what was read, if any. For a set that is the last segment's bytes after
 * its last newline (read from the end of a plain file; a compressed last segment, which only a
 * rotation-time crash leaves, is inflated through).
 */
export async function tornTail(src: Source): Promise<TornTail | null> {
  if (src.kind === 'stdin') return src.tap.trailing > 0 ? { file: '-', bytes: src.tap.trailing } : null;
  const segs = await listSegments(src.base);
  const last = segs[segs.length - 1];
  if (!last) return null;
  const bytes = last.compressed ? await trailingBytesGz(last.path) : await trailingBytesPlain(last.path);
  return bytes > 0 ? { file: last.path, bytes } : null;
}

async function trailingBytesPlain(file: string): Promise<number> {
  const fh = await fs.promises.open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.allocUnsafe(BACK_STEP);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - BACK_STEP);
      const { bytesRead } = await fh.read(buf, 0, end - start, start);
      const nl = buf.subarray(0, bytesRead).lastIndexOf(NEWLINE);
      if (nl >= 0) return size - (start + nl + 1);
      end = start;
    }
    return size;
  } finally {
    await fh.close();
  }
}

async function trailingBytesGz(file: string): Promise<number> {
  let trailing = 0;
  for await (const chunk of fs.createReadStream(file).pipe(zlib.createGunzip()) as AsyncIterable<Buffer>) {
    const nl = chunk.lastIndexOf(NEWLINE);
    trailing = nl < 0 ? trailing + chunk.length : chunk.length - nl - 1;
  }
  return trailing;
}
