// The on-disk format, in one place: how a set's files are named and listed, the envelope every
// line starts with, the marker lines ringlog writes, and the check that a parsed line is a
// ringlog record. The writer, the caller's recovery, the reader, the CLI and the viewer all use
// this module; none spells a key, a marker or a file name of its own.

import * as fs from 'node:fs';
import * as path from 'node:path';

/** The envelope's keys, in the order every line starts with them. */
export const INDEX_KEY = 'index';
export const EMITTED_KEY = 'emitted_at_ms';
export const FRAME_DEPTH_KEY = 'frame_depth';
/** Present, right after frame_depth, when the event was logged with an executionId. */
export const EXECUTION_KEY = 'execution_id';
export const ENVELOPE_KEYS: readonly string[] = [INDEX_KEY, EMITTED_KEY, FRAME_DEPTH_KEY];
export const ENVELOPE_KEYS_WITH_EXECUTION: readonly string[] = [...ENVELOPE_KEYS, EXECUTION_KEY];

/** `type` of the marker standing for `count` events (indexes from its own) that never reached the file. */
export const DROPPED_TYPE = 'events_dropped';
/** `type` of the marker standing for `count` events (indexes from its own) that durable projection
 *  left out: streaming snapshots a later record of the file repeats (src/writer/projector.ts). */
export const PROJECTED_TYPE = 'events_projected';
/** `type` of the marker standing for an event that could not be snapshotted, with its `reason`. */
export const REJECTED_TYPE = 'event_rejected';

/**
 * The name an event's own field takes when it is named like an envelope key: `event_<key>`,
 * prefixed again while the event has a field by that name too, so nothing is lost and no line ever
 * holds a key twice. `has` tells whether the event has a field of a given name.
 */
export function renamedKey(key: string, has: (name: string) => boolean): string {
  let name = 'event_' + key;
  while (has(name)) name = 'event_' + name;
  return name;
}

/** `type` of the event standing for a line handed to handleJsonLine that is not a JSON object;
 *  its text is kept whole in `line`. */
export const LOG_LINE_TYPE = 'log_line';

/** What follows the envelope of such an event, before the line as a JSON string and the closing brace. */
export const LOG_LINE_FIELDS = `,"type":"${LOG_LINE_TYPE}","line":`;

/** The envelope's text around its values: OPEN, the index, EMITTED, the time, FRAME, the depth,
 *  then EXECUTION and the execution id when there is one. */
export const ENVELOPE_OPEN = `{"${INDEX_KEY}":`;
export const ENVELOPE_EMITTED = `,"${EMITTED_KEY}":`;
export const ENVELOPE_FRAME = `,"${FRAME_DEPTH_KEY}":`;
export const ENVELOPE_EXECUTION = `,"${EXECUTION_KEY}":`;

/** The start of every line: `{"index":N,"emitted_at_ms":T,"frame_depth":` (the depth follows). */
export function envelopeHead(index: number, emittedAtMs: number): string {
  return `${ENVELOPE_OPEN}${index}${ENVELOPE_EMITTED}${emittedAtMs}${ENVELOPE_FRAME}`;
}

/** Where writeEnvelopeHead writes: bytes, and numbers as JSON.stringify writes them. */
export interface EnvelopeOut {
  bytes(src: Buffer, start: number, end: number): void;
  number(x: number): void;
}

const OPEN_BYTES = Buffer.from(ENVELOPE_OPEN);
const EMITTED_BYTES = Buffer.from(ENVELOPE_EMITTED);
const FRAME_BYTES = Buffer.from(ENVELOPE_FRAME);

/** envelopeHead's text, written piece by piece into `out` (the writer's way: no string per line). */
export function writeEnvelopeHead(out: EnvelopeOut, index: number, emittedAtMs: number): void {
  out.bytes(OPEN_BYTES, 0, OPEN_BYTES.length);
  out.number(index);
  out.bytes(EMITTED_BYTES, 0, EMITTED_BYTES.length);
  out.number(emittedAtMs);
  out.bytes(FRAME_BYTES, 0, FRAME_BYTES.length);
}

/** The whole marker line for `count` lost events from `first` (no newline). */
export function droppedLine(first: number, emittedAtMs: number, count: number): string {
  return `${envelopeHead(first, emittedAtMs)}null,"type":"${DROPPED_TYPE}","count":${count}}`;
}

/** The whole marker line for `count` events from `first` left out by durable projection (no newline). */
export function projectedLine(first: number, emittedAtMs: number, count: number): string {
  return `${envelopeHead(first, emittedAtMs)}null,"type":"${PROJECTED_TYPE}","count":${count}}`;
}

/** Whether a line's type is one of the two markers that stand for a range of indexes. */
export function isRangeMarker(type: string | undefined): boolean {
  return type === DROPPED_TYPE || type === PROJECTED_TYPE;
}

/** What follows the envelope of a rejection marker, before its JSON reason and the closing brace. */
export const REJECTED_FIELDS = `,"type":"${REJECTED_TYPE}","reason":`;

/** The rejection marker's body as an event (for sinks that write events, not lines). */
export function rejectedEvent(reason: string): { type: string; reason: string } {
  return { type: REJECTED_TYPE, reason };
}

/** The envelope of one line: its index, time, type and how many indexes it stands for. */
export interface LineEnvelope {
  index: number;
  /** NaN when the line has none (only a lax check lets that through). */
  emittedAtMs: number;
  type: string | undefined;
  /** 1, or `count` for a drop or projection marker. */
  covers: number;
  /** A drop or projection marker with a positive integer `count`: it stands for `covers` indexes
   *  and is no event. (A lax check passes a line of that type without one as an ordinary line.) */
  marker: boolean;
}

/**
 * The envelope of a parsed line, or why it is not a ringlog record. Every check requires a
 * non-negative integer `index`. `strict` (the reader, `verify`) also requires a numeric
 * `emitted_at_ms` and a positive integer `count` on a drop marker; lax (resuming a set, the viewer,
 * `tail`) takes what is there: a line with an index is worth resuming from or showing.
 */
export function envelopeOf(value: unknown, strict: boolean): LineEnvelope | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const rec = value as { index?: unknown; emitted_at_ms?: unknown; type?: unknown; count?: unknown };
  if (!Number.isSafeInteger(rec.index) || (rec.index as number) < 0) return `no ringlog "${INDEX_KEY}" (a non-negative integer)`;
  const time = rec.emitted_at_ms;
  if (strict && typeof time !== 'number') return `no ringlog "${EMITTED_KEY}"`;
  const type = typeof rec.type === 'string' ? rec.type : undefined;
  let covers = 1;
  let marker = false;
  if (isRangeMarker(type)) {
    const count = rec.count;
    if (Number.isSafeInteger(count) && (count as number) >= 1) {
      covers = count as number;
      marker = true;
    } else if (strict) return `${type} marker without a positive integer "count"`;
  }
  return { index: rec.index as number, emittedAtMs: typeof time === 'number' && Number.isFinite(time) ? time : NaN, type, covers, marker };
}

export interface SegmentName {
  readonly dir: string;
  readonly stem: string;
  readonly ext: string;
}

/** Splits the base path as the reference does: stem and extension, `jsonl` when there is none. */
export function segmentName(basePath: string): SegmentName {
  const parsed = path.parse(basePath);
  return { dir: parsed.dir || '.', stem: parsed.name, ext: parsed.ext ? parsed.ext.slice(1) : 'jsonl' };
}

/** Segment 0 is the base file itself; segment n is `<stem>-<n, 6 digits at least>.<ext>`. */
export function segmentPath(basePath: string, n: number): string {
  if (n === 0) return basePath;
  const { dir, stem, ext } = segmentName(basePath);
  return path.join(dir, `${stem}-${String(n).padStart(6, '0')}.${ext}`);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Numbered segments present on disk, ascending (the base file is not included). */
export function listNumberedSegments(basePath: string): { n: number; path: string }[] {
  const { dir, stem, ext } = segmentName(basePath);
  const re = new RegExp(`^${escapeRegExp(stem)}-(\\d{6,})\\.${escapeRegExp(ext)}$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: { n: number; path: string }[] = [];
  for (const name of names) {
    const m = re.exec(name);
    if (m) out.push({ n: Number(m[1]), path: path.join(dir, name) });
  }
  return out.sort((a, b) => a.n - b.n);
}

/** A closed segment compressed by the janitor: `<segment path>.gz`. */
export const GZ_SUFFIX = '.gz';
/** A compression in progress (or cut short by a crash): never part of the set. */
export const GZ_TMP_SUFFIX = '.gz.tmp';

export type SegmentForm = 'plain' | 'gz' | 'tmp';

export interface SegmentFile {
  /** 0 for the base file. */
  readonly n: number;
  readonly path: string;
  readonly form: SegmentForm;
}

/**
 * Every file of the set, the base file included, in each form (plain, compressed, compression in
 * progress), ascending by segment number. A segment may appear in two forms: a crash between the
 * rename of its `.gz` and the unlink of its plain file leaves both, with the same lines.
 */
export function listSegmentFiles(basePath: string): SegmentFile[] {
  const { dir, stem, ext } = segmentName(basePath);
  const forms = `(${escapeRegExp(GZ_SUFFIX)}|${escapeRegExp(GZ_TMP_SUFFIX)})?`;
  const numbered = new RegExp(`^${escapeRegExp(stem)}-(\\d{6,})\\.${escapeRegExp(ext)}${forms}$`);
  const base = new RegExp(`^${escapeRegExp(path.basename(basePath))}${forms}$`);
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const formOf = (suffix: string | undefined): SegmentForm => (suffix === undefined ? 'plain' : suffix === GZ_SUFFIX ? 'gz' : 'tmp');
  const out: SegmentFile[] = [];
  for (const name of names) {
    const m = numbered.exec(name);
    if (m) {
      out.push({ n: Number(m[1]), path: path.join(dir, name), form: formOf(m[2]) });
      continue;
    }
    const b = base.exec(name);
    if (b) out.push({ n: 0, path: path.join(dir, name), form: formOf(b[1]) });
  }
  return out.sort((a, b) => a.n - b.n);
}

