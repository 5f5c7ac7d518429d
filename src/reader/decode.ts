// Decoding one line. The full path is JSON.parse; the fast path reads only the envelope that
// ringlog writes first on every line ({"index":N,"emitted_at_ms":T,"frame_depth":D[,"execution_id":S]
// [,"type":S]...), so `ringlog cat`/`stats` and index building never build the event object.

import { ENVELOPE_EMITTED, ENVELOPE_EXECUTION, ENVELOPE_FRAME, ENVELOPE_OPEN, envelopeOf, isRangeMarker, type LineEnvelope } from '../files/format.js';

export type Envelope = LineEnvelope;

/** Why a line is not a ringlog record, or its envelope. */
export type Decoded = Envelope | string;

const Q = 0x22; // "
const BSLASH = 0x5c;
const COMMA = 0x2c;
const CLOSE = 0x7d; // }
const ZERO = 0x30;
const NINE = 0x39;

// The envelope as the writer writes it (files/format.ts), split where the values go.
const P_INDEX = Buffer.from(ENVELOPE_OPEN);
const P_EMITTED = Buffer.from(ENVELOPE_EMITTED);
const P_DEPTH = Buffer.from(ENVELOPE_FRAME);
/** With the opening quote of the id, a string. */
const P_EXEC = Buffer.from(ENVELOPE_EXECUTION + '"');
const P_TYPE = Buffer.from(',"type":"');
const NULL = Buffer.from('null');

/**
 * Digits past which a decimal integer may exceed Number.MAX_SAFE_INTEGER (16 digits); such a
 * line goes to JSON.parse, which decides.
 */
const MAX_FAST_DIGITS = 15;

function startsWith(buf: Buffer, at: number, end: number, p: Buffer): boolean {
  if (at + p.length > end) return false;
  for (let i = 0; i < p.length; i++) if (buf[at + i] !== p[i]) return false;
  return true;
}

/** End of an unsigned integer starting at `at`, or -1 (none, too long, or a fraction/exponent). */
function intEnd(buf: Buffer, at: number, end: number): number {
  let i = at;
  while (i < end && i - at <= MAX_FAST_DIGITS) {
    const c = buf[i]!;
    if (c < ZERO || c > NINE) break;
    i++;
  }
  if (i === at || i - at > MAX_FAST_DIGITS) return -1;
  // A leading zero is only valid alone; a '.', 'e' or anything else but ',' or '}' is not ours.
  if (buf[at] === ZERO && i - at > 1) return -1;
  const c = buf[i];
  return c === COMMA || c === CLOSE ? i : -1;
}

function intValue(buf: Buffer, at: number, to: number): number {
  let v = 0;
  for (let i = at; i < to; i++) v = v * 10 + (buf[i]! - ZERO);
  return v;
}

/** End (the closing quote) of a string without escapes starting at `at`, or -1. */
function plainStringEnd(buf: Buffer, at: number, end: number): number {
  for (let i = at; i < end; i++) {
    const c = buf[i];
    if (c === Q) return i;
    if (c === BSLASH) return -1;
  }
  return -1;
}

/**
 * The envelope of the line buf[start, end) (no newline), read without JSON.parse when the line
 * has ringlog's key order; otherwise (and for drop markers, whose count is further in) the whole
 * line is parsed.
 */
export function decodeEnvelope(buf: Buffer, start: number, end: number): Decoded {
  // A fresh object per line: callers keep the envelopes they are given.
  const env: Envelope = { index: 0, emittedAtMs: 0, type: undefined, covers: 1, marker: false };
  return decodeEnvelopeFast(buf, start, end, env) ? env : decodeParsed(parseLine(buf.toString('utf8', start, end)));
}

/**
 * decodeEnvelope's fast path alone, into `out`, for a caller that indexes millions of lines and
 * wants no object per line. False (and `out` untouched) when the line needs JSON.parse. Only a
 * structural check of the rest is made: the line must end with '}'.
 */
export function decodeEnvelopeFast(buf: Buffer, start: number, end: number, out: Envelope): boolean {
  if (buf[end - 1] !== CLOSE || !startsWith(buf, start, end, P_INDEX)) return false;
  let at = start + P_INDEX.length;
  let e = intEnd(buf, at, end);
  if (e < 0) return false;
  const index = intValue(buf, at, e);
  if (!startsWith(buf, e, end, P_EMITTED)) return false;
  at = e + P_EMITTED.length;
  e = intEnd(buf, at, end);
  if (e < 0) return false;
  const emittedAtMs = intValue(buf, at, e);
  if (!startsWith(buf, e, end, P_DEPTH)) return false;
  at = e + P_DEPTH.length;
  if (startsWith(buf, at, end, NULL)) e = at + NULL.length;
  else e = intEnd(buf, at, end);
  if (e < 0) return false;
  if (startsWith(buf, e, end, P_EXEC)) {
    const q = plainStringEnd(buf, e + P_EXEC.length, end);
    if (q < 0) return false;
    e = q + 1;
  }
  let type: string | undefined;
  if (startsWith(buf, e, end, P_TYPE)) {
    at = e + P_TYPE.length;
    const q = plainStringEnd(buf, at, end);
    if (q < 0) return false;
    type = buf.toString('utf8', at, q);
    // A marker's count is further on: the full parse reads it.
    if (isRangeMarker(type)) return false;
  } else if (e !== end - 1) {
    // The event has fields but does not start with `type`: it may still have one further on.
    return false;
  }
  out.index = index;
  out.emittedAtMs = emittedAtMs;
  out.type = type;
  out.covers = 1;
  out.marker = false;
  return true;
}

/** JSON.parse that reports failure as a reason instead of throwing. */
export function parseLine(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return new ParseFailure((err as Error).message);
  }
}

export class ParseFailure {
  constructor(readonly reason: string) {}
}

/** The envelope of an already parsed line, or why it is not a ringlog record. */
export function decodeParsed(value: unknown): Decoded {
  if (value instanceof ParseFailure) return `not JSON (${value.reason})`;
  return envelopeOf(value, true);
}
