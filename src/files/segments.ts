// What opening a set finds on disk and does to it: the segment to resume writing, the index to
// resume from, a torn last line to cut, an earlier session to empty. (Names and listing of a
// set's files: format.ts.)

import * as fs from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { envelopeOf, GZ_SUFFIX, listSegmentFiles, segmentPath } from './format.js';

/**
 * Flags of every segment fd. O_APPEND: after a torn tail is cut (ftruncate), the next write lands
 * at the new end, never past it; O_RDWR: the tail scan of crash recovery reads through the same fd.
 */
const { O_RDWR, O_CREAT, O_APPEND, O_TRUNC } = fs.constants;
export const FRESH_SEGMENT = O_RDWR | O_CREAT | O_APPEND | O_TRUNC;
export const RESUMED_SEGMENT = O_RDWR | O_CREAT | O_APPEND;

export interface LastLine {
  /** Last index the line covers (a drop marker covers `count` indexes from its own). */
  readonly lastIndex: number;
  readonly emittedAtMs: number;
}

/** Bytes read per step when scanning a file backwards for line breaks. */
const TAIL_CHUNK = 64 * 1024;
const NEWLINE = 0x0a;

/** Offset just past the last newline before `end`, or 0 when there is none. */
function lineStartBefore(fd: number, end: number): number {
  const chunk = Buffer.allocUnsafe(TAIL_CHUNK);
  let pos = end;
  while (pos > 0) {
    const from = Math.max(0, pos - TAIL_CHUNK);
    const n = fs.readSync(fd, chunk, 0, pos - from, from);
    const at = chunk.subarray(0, n).lastIndexOf(NEWLINE);
    if (at >= 0) return from + at + 1;
    pos = from;
  }
  return 0;
}

/** Parses a whole ringlog line for what resuming needs; throws when it is not one. */
export function parseLastLine(text: string, where: string): LastLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error(`${where}: last line is not JSON`);
  }
  const env = envelopeOf(value, false);
  if (typeof env === 'string') throw new Error(`${where}: last line is not a ringlog record (${env})`);
  return { lastIndex: env.index + env.covers - 1, emittedAtMs: Number.isNaN(env.emittedAtMs) ? 0 : env.emittedAtMs };
}

export interface TailScan {
  /** The last whole line, or null when the file holds none. */
  readonly last: LastLine | null;
  /** File size after cutting a torn last line. */
  readonly size: number;
  /** Bytes of torn last line cut off (0 when the file ended with a newline). */
  readonly cut: number;
}

/**
 * Reads the end of an open segment: cuts a torn last line (bytes after the last newline, left by a
 * crash mid-write) and parses the last whole line.
 */
export function scanTail(fd: number, where: string): TailScan {
  const size = fs.fstatSync(fd).size;
  if (size === 0) return { last: null, size: 0, cut: 0 };
  const end = lineStartBefore(fd, size);
  if (end < size) fs.ftruncateSync(fd, end);
  if (end === 0) return { last: null, size: 0, cut: size };
  const start = lineStartBefore(fd, end - 1);
  const text = Buffer.allocUnsafe(end - 1 - start);
  fs.readSync(fd, text, 0, text.length, start);
  return { last: parseLastLine(text.toString('utf8'), where), size: end, cut: size - end };
}

/**
 * The last whole line of a compressed segment. The janitor compresses only closed segments, which
 * end with a newline, so no torn line is possible here. The whole segment is inflated in memory
 * (at most rotateBytes of the run that wrote it): this runs only when resuming finds the current
 * segment empty, and a sync streaming inflate would be more code for a rare path.
 */
function lastLineOfCompressed(p: string): LastLine | null {
  const text = gunzipSync(fs.readFileSync(p));
  let end = text.length;
  while (end > 0 && text[end - 1] === NEWLINE) end--;
  if (end === 0) return null;
  const start = text.lastIndexOf(NEWLINE, end - 1) + 1;
  return parseLastLine(text.toString('utf8', start, end), p);
}

/**
 * The last whole line of the set, looking back from `segment` through earlier segments. A segment
 * present both plain and compressed is read plain (the compressed copy may be the one a crash left
 * behind being written); one present only compressed is inflated.
 */
export function lastLineOfSet(basePath: string, segment: number): LastLine | null {
  for (let n = segment; n >= 0; n--) {
    const p = segmentPath(basePath, n);
    let fd: number;
    try {
      fd = fs.openSync(p, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      let last: LastLine | null;
      try {
        last = lastLineOfCompressed(p + GZ_SUFFIX);
      } catch (gzErr) {
        if ((gzErr as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw gzErr;
      }
      if (last) return last;
      continue;
    }
    try {
      const { last } = scanTail(fd, p);
      if (last) return last;
    } finally {
      fs.closeSync(fd);
    }
  }
  return null;
}

/**
 * The segment append mode writes to: the newest of the set. One that exists only compressed was
 * closed (the janitor compresses nothing else), so writing goes on in the next one.
 */
export function resumeSegment(basePath: string): number {
  let newest = 0;
  let compressed = false;
  for (const f of listSegmentFiles(basePath)) {
    if (f.form === 'tmp') continue;
    if (f.n > newest) {
      newest = f.n;
      compressed = false;
    }
    if (f.n === newest && f.form === 'gz') compressed = true;
  }
  return compressed ? newest + 1 : newest;
}

/**
 * Truncate mode, a fresh session: segments left by an earlier one would read as part of this one,
 * in any form (the base file's compressed copy included). Newest first, and the base file (open as
 * `fd`) emptied last: a process killed part way leaves the earlier session's oldest segments, a
 * set without a hole, rather than its base file and newest segments with the middle gone.
 */
export function emptySet(basePath: string, fd: number): void {
  for (const seg of listSegmentFiles(basePath).reverse()) if (seg.n > 0 || seg.form !== 'plain') fs.rmSync(seg.path, { force: true });
  // Only a regular file has contents to empty (a FIFO or /dev/null has none, and refuses).
  if (fs.fstatSync(fd).isFile()) fs.ftruncateSync(fd, 0);
}
