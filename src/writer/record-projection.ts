// Durable projection on the writer thread: the projector (projector.ts) judges each event record in
// index order, before its line is built. A streaming snapshot is judged from the record itself (its
// argument text is there as UTF-8 bytes, or as UTF-16 code units made into UTF-8 for the digest,
// and a snapshot left out is never built); the rare
// shapes a record cannot tell cheaply (parsed `raw_input`, audit data, another logger's JSON line)
// are judged on the built line. The events left out are remembered as a run of indexes until a
// marker line (files/format.ts, `events_projected`) stands for them in the file, so the file still
// accounts for every index: readers and `verify` count a marker's indexes as projected, not lost.

import { Tag, wideAt } from '../ring/records.js';
import type { LineBuilder, Source } from './line-builder.js';
import { DurableProjector, metadataDigest, SETTLED_FIELDS } from './projector.js';

/** What to do with a record: write it, leave it out, or build its line and judge that (keepLine). */
export type Verdict = 'keep' | 'leave' | 'line';

/** Only lines holding one of these can matter to the projector. The line builder writes compact
 *  JSON, so a top-level `type` reads exactly so; a line it did not build (handleJsonLine) that
 *  spells it otherwise is kept, which is the safe side. */
const UPDATE = Buffer.from('"type":"tool_call_update"');
const CALL = Buffer.from('"type":"tool_call"');
const CLOSED = Buffer.from('"type":"session_closed"');

/** Fields whose presence (not null) makes an update more than a streaming snapshot. */
const SETTLED = new Set<string>(SETTLED_FIELDS);

/** Indexes left out and not yet covered by a marker in the file. */
export interface ProjectedRun {
  readonly first: number;
  readonly count: number;
  /** emitted_at_ms of the first of them: the marker's time, so times in the file never step back. */
  readonly emittedAtMs: number;
}

export class WriterProjection {
  readonly projector = new DurableProjector();
  #first = -1;
  #count = 0;
  #emittedAtMs = 0;
  /** The last tool name's metadata digest: a stream repeats its tool name hundreds of times. */
  #toolName: string | null | undefined = undefined;
  #toolDigest = '';

  /** The verdict on the EVENT record at `off`, read with the sink's own line builder (its key table). */
  judgeRecord(builder: LineBuilder, src: Source, off: number): Verdict {
    const { u8, dv, buf } = src;
    let p = builder.bodyAt(src, off);
    if (u8[p] !== Tag.OBJ) return 'line';
    p++;
    // Value positions of the fields that matter (-1: absent).
    let type = -1;
    let session = -1;
    let call = -1;
    let tool = -1;
    let status = -1;
    let mutation = -1;
    let partial = -1;
    let parsed = -1;
    let audit = -1;
    let settled = false;
    while (u8[p] !== Tag.END) {
      const name = builder.keyNameAt(src, p);
      const v = builder.cursor;
      p = builder.skipValueAt(src, v);
      switch (name) {
        case 'type':
          type = v;
          // Most events: decided here (the builder takes in the rest of the record's keys).
          if (!relevantType(src, v, this.projector.tracked > 0)) return 'keep';
          break;
        case 'session_id':
          session = v;
          break;
        case 'tool_call_id':
          call = v;
          break;
        case 'tool_name':
          tool = v;
          break;
        case 'status':
          status = v;
          break;
        case 'mutation_status':
          mutation = v;
          break;
        case 'raw_input_partial':
          partial = v;
          break;
        case 'raw_input':
          parsed = v;
          break;
        case 'audit':
          audit = v;
          break;
        default:
          if (SETTLED.has(name) && u8[v] !== Tag.NULL) settled = true;
      }
    }
    if (type < 0) return 'keep';
    const kind = text(src, type);
    // Identities and texts sent as escaped JSON text (UTF-8 text with lone surrogates, RAW): the line decides.
    if (isRaw(u8, session) || isRaw(u8, call) || isRaw(u8, tool) || isRaw(u8, status) || isRaw(u8, mutation) || isRaw(u8, partial)) return 'line';
    const sessionId = isString(u8, session) ? text(src, session) : undefined;
    const callId = isString(u8, call) ? text(src, call) : undefined;
    if (kind === 'session_closed') {
      if (sessionId !== undefined) this.projector.forgetSession(sessionId);
      return 'keep';
    }
    if (sessionId === undefined || callId === undefined) return 'keep';
    if (kind === 'tool_call') return this.projector.forget(sessionId, callId) && 'keep';
    const pure =
      !settled &&
      isString(u8, status) && text(src, status) === 'pending' &&
      (absentAt(u8, mutation) || (isString(u8, mutation) && text(src, mutation) === 'unknown'));
    const hasPartial = !absentAt(u8, partial);
    const hasParsed = !absentAt(u8, parsed);
    if (!pure || hasPartial === hasParsed || (hasPartial && !isString(u8, partial))) return this.projector.forget(sessionId, callId) && 'keep';
    // Parsed arguments and audit data are judged by their JSON text, which only the line has.
    if (hasParsed || !absentAt(u8, audit)) return 'line';
    let toolName: string | null;
    if (absentAt(u8, tool)) toolName = null;
    else if (isString(u8, tool)) toolName = text(src, tool);
    else return 'line';
    if (toolName !== this.#toolName) {
      this.#toolName = toolName;
      this.#toolDigest = metadataDigest(toolName, null);
    }
    // As UTF-8, however the caller sent it, so the same text always compares the same (UTF-16 text
    // with a lone surrogate, which UTF-8 cannot carry, is judged by its line, as RAW is).
    let content: Buffer;
    if (u8[partial] === Tag.STR) content = buf.subarray(partial + 5, partial + 5 + dv.getUint32(partial + 1, true));
    else {
      const wide = text(src, partial);
      if (!wide.isWellFormed()) return 'line';
      content = Buffer.from(wide);
    }
    return this.projector.snapshot(sessionId, callId, 'raw_input_partial', content, this.#toolDigest) ? 'keep' : 'leave';
  }

  /** Whether the line in bytes [start, end) of `buf` (no newline) is kept. */
  keepLine(buf: Buffer, start: number, end: number): boolean {
    const line = buf.subarray(start, end);
    // Only an update can be left out, and a call or a closed session only changes something while
    // a stream is tracked: most lines are decided by a byte search.
    if (line.indexOf(UPDATE) < 0 && (this.projector.tracked === 0 || (line.indexOf(CALL) < 0 && line.indexOf(CLOSED) < 0))) return true;
    let event: unknown;
    try {
      event = JSON.parse(line.toString('utf8'));
    } catch {
      return true;
    }
    return this.projector.keep(event);
  }

  /** Whether events were left out that no marker stands for yet. */
  get runOpen(): boolean {
    return this.#count > 0;
  }

  /** Records that the event at `index` was left out. */
  leftOut(index: number, emittedAtMs: number): void {
    if (this.#count === 0) {
      this.#first = index;
      this.#emittedAtMs = emittedAtMs;
    }
    this.#count++;
  }

  /** The run waiting for its marker, if any; taking it starts a new one. */
  takeRun(): ProjectedRun | undefined {
    if (this.#count === 0) return undefined;
    const run = { first: this.#first, count: this.#count, emittedAtMs: this.#emittedAtMs };
    this.#count = 0;
    return run;
  }

  /** After a write fault: the run joins the lost range, and every stream starts over (fail open).
   *  Returns how many events the run held. */
  reset(): number {
    const lost = this.#count;
    this.#count = 0;
    this.projector.clear();
    return lost;
  }
}

const TOOL_CALL_UPDATE = Buffer.from('tool_call_update');
const TOOL_CALL = Buffer.from('tool_call');
const SESSION_CLOSED = Buffer.from('session_closed');

/** DurableProjector.mayCare on the `type` value at `v`, compared as bytes: no string is made for
 *  the other events. */
function relevantType(src: Source, v: number, tracking: boolean): boolean {
  if (src.u8[v] !== Tag.STR) return false;
  const len = src.dv.getUint32(v + 1, true);
  const at = v + 5;
  const is = (word: Buffer): boolean => len === word.length && src.buf.compare(word, 0, word.length, at, at + len) === 0;
  return is(TOOL_CALL_UPDATE) || (tracking && (is(TOOL_CALL) || is(SESSION_CLOSED)));
}

/** The string value at `v` (STR or STR16). */
function text(src: Source, v: number): string {
  const n = src.dv.getUint32(v + 1, true);
  return src.u8[v] === Tag.STR16 ? src.buf.ucs2Slice(wideAt(v), wideAt(v) + 2 * n) : src.buf.utf8Slice(v + 5, v + 5 + n);
}

/** Whether the value at `v` is a string the caller sent as text (UTF-8 or UTF-16). */
function isString(u8: Uint8Array, v: number): boolean {
  return v >= 0 && (u8[v] === Tag.STR || u8[v] === Tag.STR16);
}

function absentAt(u8: Uint8Array, v: number): boolean {
  return v < 0 || u8[v] === Tag.NULL;
}

function isRaw(u8: Uint8Array, v: number): boolean {
  return v >= 0 && u8[v] === Tag.RAW;
}
