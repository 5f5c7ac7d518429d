// Streaming scan of one segment's bytes into whole lines, and the envelope of each line. The viewer
// indexes every line of a set at start-up (a million of them must take about a second), so the
// common shape the sink writes is read by the reader's fast path into one reused object; anything
// unusual falls back to JSON.parse of that one line.

import { envelopeOf } from '../files/format.js';
import { decodeEnvelopeFast, parseLine, type Envelope } from '../reader/decode.js';
import type { ChunkSource } from '../reader/files.js';

const NEWLINE = 0x0a;

/**
 * The envelope of the line buf[start, end) (no newline), into `out`. Returns false when the line
 * is not a ringlog record (not JSON, or no non-negative integer `index`).
 */
export function readEnvelope(buf: Buffer, start: number, end: number, out: Envelope): boolean {
  return decodeEnvelopeFast(buf, start, end, out) || slowEnvelope(parseLine(buf.toString('utf8', start, end)), out);
}

/** Lax on purpose (files/format.ts): a line with an index is worth showing even without a usable
 *  time (it borrows its predecessor's) or with a marker count that is off. */
function slowEnvelope(value: unknown, out: Envelope): boolean {
  const env = envelopeOf(value, false);
  if (typeof env === 'string') return false;
  out.index = env.index;
  out.emittedAtMs = env.emittedAtMs;
  out.type = env.type;
  out.covers = env.covers;
  out.marker = env.marker;
  return true;
}

/**
 * Calls onLine for each whole line in `chunks`, whose first chunk starts at byte offset `from` of
 * its file (a line start). Returns the offset just past the last newline seen: bytes after it are an
 * unfinished (or torn) line, left for a later scan.
 */
export async function scanChunks(
  chunks: ChunkSource,
  from: number,
  onLine: (buf: Buffer, start: number, end: number, fileOffset: number) => void,
): Promise<number> {
  // The unfinished line carried between chunks, as pieces (joined once its newline arrives, so a
  // line spanning many chunks is copied once, not once per chunk).
  let pending: Buffer[] = [];
  let pendingStart = from;
  let pos = from;
  for (let chunk = await chunks.read(); chunk !== null; chunk = await chunks.read()) {
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
