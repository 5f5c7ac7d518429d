// Streaming scan of one segment's bytes into whole lines, and the envelope of each line read
// straight from its bytes. The viewer indexes every line of a set at start-up (a million of them
// must take about a second), so the common shape the sink writes is read without building a JS
// string or an object per line; anything unusual falls back to JSON.parse of that one line.

import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';

/** What the index keeps of a line. */
export interface Envelope {
  index: number;
  emittedAtMs: number;
  /** The event's `type`, or undefined when it has none (or it is not a string). */
  type: string | undefined;
  /** Indexes the line stands for: `count` for an `events_dropped` marker, else 1. */
  covers: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const CLOSE_BRACE = 0x7d;
const NEWLINE = 0x0a;
const ZERO = 0x30;
const NINE = 0x39;

// The envelope exactly as the sink writes it (README, "Line format"): these keys first, in this order.
const P_INDEX = Buffer.from('{"index":');
const P_TIME = Buffer.from(',"emitted_at_ms":');
const P_DEPTH = Buffer.from(',"frame_depth":');
const P_EXEC = Buffer.from(',"execution_id":"');
const P_TYPE = Buffer.from(',"type":"');
const DROPPED = 'events_dropped';

function startsWith(buf: Buffer, pos: number, end: number, pattern: Buffer): boolean {
  if (end - pos < pattern.length) return false;
  for (let i = 0; i < pattern.length; i++) if (buf[pos + i] !== pattern[i]) return false;
  return true;
}

/** Reused result of readDigits, so the hot path allocates nothing. */
let digitsValue = 0;

/** Reads a run of decimal digits at pos into digitsValue; returns the position after it, or -1. */
function readDigits(buf: Buffer, pos: number, end: number): number {
  let v = 0;
  const from = pos;
  // 16 digits keep the value below 2^53 and exact; longer runs go to the JSON.parse path.
  while (pos < end && pos - from < 16) {
    const c = buf[pos]!;
    if (c < ZERO || c > NINE) break;
    v = v * 10 + (c - ZERO);
    pos++;
  }
  if (pos === from || (pos < end && buf[pos]! >= ZERO && buf[pos]! <= NINE)) return -1;
  digitsValue = v;
  return pos;
}

/** Position after the closing quote of a JSON string whose opening quote is just before pos, or -1. */
function skipString(buf: Buffer, pos: number, end: number): number {
  while (pos < end) {
    const c = buf[pos]!;
    if (c === BACKSLASH) pos += 2;
    else if (c === QUOTE) return pos + 1;
    else pos++;
  }
  return -1;
}

/**
 * The envelope of the line buf[start, end) (no newline), into `out`. Returns false when the line
 * is not a ringlog record (not JSON, or no non-negative integer `index`).
 */
export function readEnvelope(buf: Buffer, start: number, end: number, out: Envelope): boolean {
  if (fastEnvelope(buf, start, end, out)) return true;
  return slowEnvelope(buf.toString('utf8', start, end), out);
}

function fastEnvelope(buf: Buffer, start: number, end: number, out: Envelope): boolean {
  if (!startsWith(buf, start, end, P_INDEX)) return false;
  let pos = readDigits(buf, start + P_INDEX.length, end);
  if (pos < 0) return false;
  const index = digitsValue;
  if (!startsWith(buf, pos, end, P_TIME)) return false;
  pos = readDigits(buf, pos + P_TIME.length, end);
  // A fraction or exponent (not what Date.now() gives, but legal) goes to the slow path.
  if (pos < 0 || buf[pos] !== COMMA) return false;
  const time = digitsValue;
  if (!startsWith(buf, pos, end, P_DEPTH)) return false;
  pos += P_DEPTH.length;
  // frame_depth is null or a number: no string, so the next comma or brace ends it.
  while (pos < end && buf[pos] !== COMMA && buf[pos] !== CLOSE_BRACE) pos++;
  if (startsWith(buf, pos, end, P_EXEC)) {
    pos = skipString(buf, pos + P_EXEC.length, end);
    if (pos < 0) return false;
  }
  let type: string | undefined;
  if (startsWith(buf, pos, end, P_TYPE)) {
    const from = pos + P_TYPE.length;
    let p = from;
    while (p < end && buf[p] !== QUOTE && buf[p] !== BACKSLASH) p++;
    // An escape inside the type, or no closing quote: let JSON.parse decode it.
    if (p >= end || buf[p] !== QUOTE) return false;
    type = buf.toString('utf8', from, p);
    // A drop marker's count is further on; markers are rare, so the slow path reads it.
    if (type === DROPPED) return false;
  } else if (buf[pos] === COMMA) {
    // `type` is somewhere later in the event's own fields (or absent): JSON.parse finds it.
    return false;
  }
  if (buf[end - 1] !== CLOSE_BRACE) return false;
  out.index = index;
  out.emittedAtMs = time;
  out.type = type;
  out.covers = 1;
  return true;
}

function slowEnvelope(text: string, out: Envelope): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const rec = value as { index?: unknown; emitted_at_ms?: unknown; type?: unknown; count?: unknown };
  if (!Number.isSafeInteger(rec.index) || (rec.index as number) < 0) return false;
  out.index = rec.index as number;
  out.emittedAtMs = typeof rec.emitted_at_ms === 'number' && Number.isFinite(rec.emitted_at_ms) ? rec.emitted_at_ms : NaN;
  out.type = typeof rec.type === 'string' ? rec.type : undefined;
  out.covers = rec.type === DROPPED && Number.isSafeInteger(rec.count) && (rec.count as number) > 0 ? (rec.count as number) : 1;
  return true;
}

/** Bytes read per step: large enough that a million small lines cost few syscalls, small enough to keep memory flat. */
export const SCAN_CHUNK = 4 * 1024 * 1024;

/** A plain file's bytes from `from` to `to`, in chunks (each a fresh buffer: scanChunks may keep a tail of one). */
export async function* fileChunks(fh: FileHandle, from: number, to: number): AsyncGenerator<Buffer> {
  let pos = from;
  while (pos < to) {
    const buf = Buffer.allocUnsafe(Math.min(SCAN_CHUNK, to - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) return;
    pos += bytesRead;
    yield bytesRead === buf.length ? buf : buf.subarray(0, bytesRead);
  }
}

/** The inflated bytes of a .gz segment from offset `from` on (deflate cannot seek: earlier bytes are inflated and dropped). */
export async function* gzipChunks(file: string, from: number): AsyncGenerator<Buffer> {
  const input = createReadStream(file, { highWaterMark: SCAN_CHUNK });
  const gunzip = createGunzip({ chunkSize: SCAN_CHUNK });
  input.on('error', (err) => gunzip.destroy(err));
  input.pipe(gunzip);
  let skip = from;
  try {
    for await (const raw of gunzip as AsyncIterable<Buffer>) {
      let chunk = raw;
      if (skip > 0) {
        const drop = Math.min(skip, chunk.length);
        skip -= drop;
        chunk = chunk.subarray(drop);
        if (chunk.length === 0) continue;
      }
      yield chunk;
    }
  } finally {
    input.destroy();
    gunzip.destroy();
  }
}

/**
 * Calls onLine for each whole line in `chunks`, which start at byte offset `from` of their file
 * (a line start). Returns the offset just past the last newline seen: bytes after it are an
 * unfinished (or torn) line, left for a later scan.
 */
export async function scanChunks(
  chunks: AsyncIterable<Buffer>,
  from: number,
  onLine: (buf: Buffer, start: number, end: number, fileOffset: number) => void,
): Promise<number> {
  // The unfinished line carried between chunks, as pieces (joined once its newline arrives, so a
  // line spanning many chunks is copied once, not once per chunk).
  let pending: Buffer[] = [];
  let pendingStart = from;
  let pos = from;
  for await (const chunk of chunks) {
    let start = 0;
    let nl = chunk.indexOf(NEWLINE);
    if (nl >= 0 && pending.length > 0) {
      const line = Buffer.concat([...pending, chunk.subarray(0, nl)]);
      onLine(line, 0, line.length, pendingStart);
      pending = [];
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    while (nl >= 0) {
      onLine(chunk, start, nl, pos + start);
      start = nl + 1;
      nl = chunk.indexOf(NEWLINE, start);
    }
    if (start < chunk.length) {
      if (pending.length === 0) pendingStart = pos + start;
      pending.push(chunk.subarray(start));
    }
    pos += chunk.length;
  }
  return pending.length > 0 ? pendingStart : pos;
}
