// The viewer's in-memory index of a rotated set: per line, its time, its type, its session and
// where it starts, in typed arrays, so that any page, bucket count, filter by type or session, or
// lookup is answered without reading the set again. Memory per line: 8 (emitted_at_ms, Float64) +
// 2 (type id, Uint16) + 2 (session id, Uint16) + 8 (byte offset in its segment, Float64) = 20
// bytes; a million lines take 20 MB (40 MB just after the arrays double). Which segment a line is in and which index it has are derived from short side tables
// (segment starts; runs of consecutive indexes), not stored per line.

import { createReadStream, createWriteStream } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { readRecords } from '../reader/index.js';
import type { ReadIssue } from '../reader/index.js';
import { DROPPED_TYPE, isRangeMarker, segmentName } from '../files/format.js';
import type { Envelope } from '../reader/decode.js';
import { openSegment, plainSource } from '../reader/files.js';
import { readEnvelope, scanChunks } from './line-scan.js';

/** One file of the set, as the index knows it. */
export interface IndexedSegment {
  /** 0 for the base file, n for `<stem>-00000n.<ext>`. */
  readonly number: number;
  /** Changes once, when the janitor compresses the segment (`<path>.gz`, same bytes inflated). */
  path: string;
  compressed: boolean;
  /** Ordinal (position in the index) of its first line; -1 until scanning reached it. */
  firstOrdinal: number;
  /** Offset just past its last whole line scanned so far. */
  scannedEnd: number;
  /** True once a later segment exists and this one was scanned to its end: it will not change. */
  final: boolean;
}

/** Where a line is and how long it is. */
export interface LineSpan {
  readonly segment: IndexedSegment;
  readonly offset: number;
  /** Upper bound of its end: the next line's start in the same file, or the scanned end. */
  readonly bound: number;
}

export interface ReadLine {
  readonly text: string;
  /** Byte length of the whole line (without newline), or -1 when only a prefix was read and its end not seen. */
  readonly bytes: number;
  readonly truncated: boolean;
}

/** Starting capacity of the per-line arrays: small sets cost a few hundred KB, big ones double up to size. */
const INITIAL_CAPACITY = 64 * 1024;
/** Type ids are Uint16; the last id stands for every type past the first 65,535 distinct ones. */
const MAX_TYPE_ID = 0xffff;
export const OTHER_TYPES = '(other types)';
export const NO_TYPE = '(no type)';
/** Sessions told apart by name (a Uint16 per line, 0 for none); past that many, the rest share one id. */
const MAX_SESSION_ID = 0xffff;
export const OTHER_SESSIONS = '(other sessions)';
/** Bytes of a line's start searched for its session_id: where an agent event puts it (after its
 *  type), without a scan of every big tool output at indexing time. */
const SESSION_SEARCH_BYTES = 1024;
const SESSION_KEY = Buffer.from('"session_id":"');
/** Lines that are not records are counted; the first few are described for the summary. */
const ISSUE_SAMPLES = 5;
/** Enough bytes of the last indexed line to see its `{"index":N` again (16 digits at most). */
const PREFIX_CHECK_BYTES = 32;

/** A compressed segment is its plain name plus this (the janitor's naming). */
const GZ = '.gz';

export interface SetFile {
  readonly number: number;
  readonly path: string;
  readonly compressed: boolean;
}

/**
 * Every file of the set that exists now: the base file, then numbered segments ascending, each
 * plain or compressed (`.gz`); a segment present in both forms (a compression cut short between
 * rename and unlink) is read plain. `.gz.tmp` files (compressions in progress) are not part of it.
 */
export async function listSetFiles(basePath: string): Promise<SetFile[]> {
  const { dir, stem, ext } = segmentName(basePath);
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
  const esc = (x: string): string => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const numbered = new RegExp(`^${esc(stem)}-(\\d{6,})\\.${esc(ext)}(\\.gz)?$`);
  const baseName = path.basename(basePath);
  const byNumber = new Map<number, SetFile>();
  for (const name of names) {
    let number: number;
    let compressed: boolean;
    if (name === baseName || name === baseName + GZ) {
      number = 0;
      compressed = name !== baseName;
    } else {
      const m = numbered.exec(name);
      if (!m) continue;
      number = Number(m[1]);
      compressed = m[2] !== undefined;
    }
    const seen = byNumber.get(number);
    if (seen && !seen.compressed) continue;
    byNumber.set(number, { number, path: path.join(dir, name), compressed });
  }
  const out: SetFile[] = [];
  for (const f of [...byNumber.values()].sort((a, b) => a.number - b.number)) {
    try {
      if ((await fsp.stat(f.path)).isFile()) out.push(f);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  return out;
}

/** Inflated copies of compressed segments kept on disk for reading pages; each is up to rotateBytes. */
const MAX_INFLATED = 4;

export class LogIndex {
  /** Lines indexed (records; a drop marker is one line standing for several indexes). */
  count = 0;
  private times = new Float64Array(INITIAL_CAPACITY);
  private typeIds = new Uint16Array(INITIAL_CAPACITY);
  private sessionIds = new Uint16Array(INITIAL_CAPACITY);
  /** Session names by id; id 0 is "no session". */
  /** Session names by id; id 0 is "no session". */
  readonly sessions = new NameTable(MAX_SESSION_ID, OTHER_SESSIONS, ['']);
  /** The session of the line being indexed (set with this.envelope). */
  private lineSession = 0;
  private offsets = new Float64Array(INITIAL_CAPACITY);
  readonly types = new NameTable(MAX_TYPE_ID, OTHER_TYPES);
  readonly segments: IndexedSegment[] = [];
  // Runs of consecutive indexes: the line at ordinal runOrd[k] has index runIdx[k], the lines after
  // it (up to the next run) count up by one. A new run starts at the first line, after a drop or
  // projection marker (its next line skips `count` indexes) and wherever the file skips or repeats indexes.
  private readonly runOrd: number[] = [];
  private readonly runIdx: number[] = [];
  /** The index the next line should have if nothing is skipped. */
  private nextIndex = 0;
  /** Last index covered by any line (a marker covers up to index + count − 1). */
  lastIndex = -1;
  /** Indexes stood for by `events_dropped` markers. */
  droppedIndexes = 0;
  /** Indexes stood for by `events_projected` markers (streaming snapshots left out, not lost). */
  projectedIndexes = 0;
  /** Lines that are drop or projection markers: in `count`, but not events. */
  markerLines = 0;
  /** False once a line's time is earlier than the line before (another process appended with an older clock). */
  timesSorted = true;
  /** False once an index is not above the one before (a damaged or concatenated set). */
  indexesIncreasing = true;
  /** Lines that are not ringlog records (not JSON, no index), and torn tails of closed segments. */
  issues = 0;
  readonly issueSamples: string[] = [];
  /** Which scan built the index: the project's reader, or the viewer's own byte scan (fallback). */
  scanner: 'reader' | 'own' = 'own';
  private readonly envelope: Envelope = { index: 0, emittedAtMs: 0, type: undefined, covers: 1, marker: false };

  private constructor(readonly basePath: string) {}

  /** Scans the whole set once. */
  /**
   * Scans the whole set once, through the project's reader (readRecords), then indexes whatever
   * the reader's walk did not reach (lines appended meanwhile) with this module's own scan. When
   * the reader's records cannot be placed at exact byte offsets (it skipped a line it could not
   * parse, so later offsets are unknown), the set is scanned by the viewer's own byte scanner
   * instead, which indexes by offset from the start.
   */
  static async build(basePath: string): Promise<LogIndex> {
    const viaReader = new LogIndex(basePath);
    if (await viaReader.scanWithReader()) {
      viaReader.scanner = 'reader';
      await viaReader.refresh();
      return viaReader;
    }
    const own = new LogIndex(basePath);
    await own.refresh();
    return own;
  }

  /** The first scan through readRecords; false when its records could not be placed exactly. */
  private async scanWithReader(): Promise<boolean> {
    const listed = await listSetFiles(this.basePath);
    const byPath = new Map<string, IndexedSegment>();
    for (const l of listed) {
      const seg: IndexedSegment = { number: l.number, path: l.path, compressed: l.compressed, firstOrdinal: -1, scannedEnd: 0, final: false };
      this.segments.push(seg);
      byPath.set(path.resolve(l.path), seg);
    }
    let skipped = false;
    const onIssue = (issue: ReadIssue): void => {
      // A line left out (unparseable, torn, lost to a damaged .gz) shifts every later offset in its file.
      if (issue.code === 'ERR_RINGLOG_READ_PARSE' || issue.code === 'ERR_RINGLOG_READ_TORN' || issue.code === 'ERR_RINGLOG_READ_CORRUPT') skipped = true;
    };
    let seg: IndexedSegment | undefined;
    let k = -1;
    let line = 0;
    const env = this.envelope;
    try {
      for await (const r of readRecords(this.basePath, { issues: 'warn', onIssue })) {
        if (seg === undefined || r.file !== seg.path) {
          const next = byPath.get(path.resolve(r.file));
          // A file listed after our listing (or gone from it): let the own scan handle the set.
          if (next === undefined) return false;
          const at = this.segments.indexOf(next);
          if (at <= k) return false;
          // Segments passed over (empty ones) start where the next one does.
          for (let j = k + 1; j <= at; j++) this.segments[j]!.firstOrdinal = this.count;
          for (let j = k + 1; j < at; j++) this.segments[j]!.final = true;
          if (seg) seg.final = true;
          seg = next;
          k = at;
          line = 0;
        }
        if (skipped || r.line !== line + 1) return false;
        line = r.line;
        env.index = r.index;
        env.emittedAtMs = r.emittedAtMs;
        env.type = r.type;
        env.covers = r.covers;
        // The reader's check is strict: a record of a marker's type has its positive count.
        env.marker = isRangeMarker(r.type);
        this.lineSession = this.sessionId(sessionInText(r.text));
        this.addEnvelope(seg.scannedEnd);
        // `bytes` counts the newline: the next line starts right after it.
        seg.scannedEnd += r.bytes;
      }
    } catch {
      // The reader refused the set (an I/O error, a file vanishing): the own scan decides.
      return false;
    }
    if (skipped) return false;
    // Every closed plain segment must have been read to its last byte, or offsets cannot be trusted.
    for (let j = 0; j < k; j++) {
      const sg = this.segments[j]!;
      if (sg.compressed) continue;
      try {
        if ((await fsp.stat(sg.path)).size !== sg.scannedEnd) return false;
      } catch {
        return false;
      }
    }
    // What the walk did not reach (a segment it found empty, or none at all) is scanned on refresh.
    for (let j = Math.max(0, k); j < this.segments.length; j++) {
      const sg = this.segments[j]!;
      if (j > k) {
        sg.firstOrdinal = -1;
        sg.final = false;
      }
    }
    if (k >= 0 && this.segments[k]!.compressed) this.segments[k]!.final = true;
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Building and growing.

  /**
   * Indexes what was appended since the last call (new lines, new segments). Returns false when
   * the set was replaced under the index (a new session in truncate mode removed or cut a file it
   * had read): the caller builds a new index then.
   */
  async refresh(): Promise<boolean> {
    // Listing before any stat matters: a segment seen here proves every earlier one was complete
    // before the stat below (the writer only creates segment n+1 after its last write to n).
    const listed = await listSetFiles(this.basePath);
    const byNumber = new Map(listed.map((f) => [f.number, f]));
    for (const seg of this.segments) {
      const now = byNumber.get(seg.number);
      // Gone (retention, or a new session in truncate mode): the index no longer matches the set.
      if (now === undefined) return false;
      if (now.compressed !== seg.compressed) {
        if (!now.compressed) return false;
        // Compressed by the janitor: the same bytes once inflated, so every offset still holds.
        seg.path = now.path;
        seg.compressed = true;
      }
    }
    const known = this.segments.length === 0 ? -1 : this.segments[this.segments.length - 1]!.number;
    for (const l of listed) {
      if (l.number > known) {
        this.segments.push({ number: l.number, path: l.path, compressed: l.compressed, firstOrdinal: -1, scannedEnd: 0, final: false });
      }
    }
    if (!(await this.lastLineStillThere())) return false;
    for (let i = 0; i < this.segments.length; i++) {
      const seg = this.segments[i]!;
      if (seg.final) continue;
      const isLast = i === this.segments.length - 1;
      const got = await this.scanSegment(seg, isLast);
      if (got === 'replaced') return false;
      // Renamed away under us (compressed): the next refresh reads on from the .gz.
      if (got === 'moved') return true;
      if (!isLast) seg.final = true;
    }
    return true;
  }

  /** False when the line the index ends with is no longer where it was (the file was rewritten). */
  private async lastLineStillThere(): Promise<boolean> {
    if (this.count === 0) return true;
    const o = this.count - 1;
    const seg = this.segmentOf(o);
    // Closed and compressed segments do not change; only the live plain one can be rewritten.
    if (seg.final || seg.compressed) return true;
    const expect = `{"index":${this.indexOf(o)}`;
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(seg.path, 'r');
    } catch {
      return false;
    }
    try {
      const buf = Buffer.alloc(PREFIX_CHECK_BYTES);
      const { bytesRead } = await fh.read(buf, 0, buf.length, this.offsets[o]!);
      const got = buf.toString('latin1', 0, bytesRead);
      // Lines the slow path indexed may not start with the index key; only check the sink's shape.
      return !got.startsWith('{"index":') || got.startsWith(expect + ',') || (got.length === expect.length && got === expect);
    } finally {
      await fh.close();
    }
  }

  private async scanSegment(seg: IndexedSegment, isLast: boolean): Promise<'ok' | 'moved' | 'replaced'> {
    const onLine = (buf: Buffer, start: number, end: number, offset: number): void => this.add(buf, start, end, offset, seg);
    if (seg.compressed) {
      // Only closed segments are compressed: read to the end once, and it is final.
      if (seg.firstOrdinal < 0) seg.firstOrdinal = this.count;
      const src = await openSegment(seg, seg.scannedEnd);
      if (src === null) return 'replaced';
      try {
        seg.scannedEnd = await scanChunks(src, seg.scannedEnd, onLine);
      } finally {
        await src.close();
      }
      seg.final = true;
      return 'ok';
    }
    let fh: fsp.FileHandle;
    try {
      fh = await fsp.open(seg.path, 'r');
    } catch (err) {
      // Compressed (or removed) since the listing: the next refresh sees what it became.
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'moved';
      throw err;
    }
    try {
      const size = (await fh.stat()).size;
      if (size < seg.scannedEnd) return 'replaced';
      if (seg.firstOrdinal < 0) seg.firstOrdinal = this.count;
      // Only up to the size just taken: the torn-line check below compares against it.
      if (size > seg.scannedEnd) seg.scannedEnd = await scanChunks(plainSource(fh, seg.path, seg.scannedEnd, size), seg.scannedEnd, onLine);
      if (!isLast && seg.scannedEnd < size) {
        // A closed segment that does not end with a newline: a torn line a crash left, never completed.
        this.issue(`${seg.path}: ${size - seg.scannedEnd} bytes of a torn last line`);
      }
      return 'ok';
    } finally {
      await fh.close();
    }
  }

  private add(buf: Buffer, start: number, end: number, offset: number, seg: IndexedSegment): void {
    if (start === end) return;
    if (!readEnvelope(buf, start, end, this.envelope)) {
      this.issue(`${seg.path} at byte ${offset}: not a ringlog record`);
      return;
    }
    this.lineSession = this.sessionId(sessionIn(buf, start, Math.min(end, start + SESSION_SEARCH_BYTES)));
    this.addEnvelope(offset);
  }

  /** Indexes the line whose envelope is in this.envelope, starting at `offset` of its segment. */
  private addEnvelope(offset: number): void {
    const env = this.envelope;
    const o = this.count;
    if (o === this.times.length) this.grow();
    // A line without a usable time borrows its predecessor's, so time order and buckets stay sane.
    let t = env.emittedAtMs;
    if (Number.isNaN(t)) t = o > 0 ? this.times[o - 1]! : 0;
    if (o > 0 && t < this.times[o - 1]!) this.timesSorted = false;
    this.times[o] = t;
    this.typeIds[o] = this.typeId(env.type);
    this.sessionIds[o] = this.lineSession;
    this.offsets[o] = offset;
    if (o === 0 || env.index !== this.nextIndex) {
      if (o > 0 && env.index < this.nextIndex) this.indexesIncreasing = false;
      this.runOrd.push(o);
      this.runIdx.push(env.index);
    }
    this.nextIndex = env.index + env.covers;
    if (this.nextIndex - 1 > this.lastIndex) this.lastIndex = this.nextIndex - 1;
    if (env.marker) {
      if (env.type === DROPPED_TYPE) this.droppedIndexes += env.covers;
      else this.projectedIndexes += env.covers;
      this.markerLines++;
    }
    this.count = o + 1;
  }

  private grow(): void {
    const cap = this.times.length * 2;
    const times = new Float64Array(cap);
    times.set(this.times);
    this.times = times;
    const typeIds = new Uint16Array(cap);
    typeIds.set(this.typeIds);
    this.typeIds = typeIds;
    const offsets = new Float64Array(cap);
    offsets.set(this.offsets);
    this.offsets = offsets;
    const sessionIds = new Uint16Array(cap);
    sessionIds.set(this.sessionIds);
    this.sessionIds = sessionIds;
  }

  private sessionId(name: string | undefined): number {
    return name === undefined ? 0 : this.sessions.intern(name);
  }

  private typeId(type: string | undefined): number {
    return this.types.intern(type ?? NO_TYPE);
  }

  private issue(text: string): void {
    this.issues++;
    if (this.issueSamples.length < ISSUE_SAMPLES) this.issueSamples.push(text);
  }

  // ---------------------------------------------------------------------------------------------
  // Lookups.

  timeOf(o: number): number {
    return this.times[o]!;
  }

  typeOf(o: number): string {
    return this.types.names[this.typeIds[o]!]!;
  }

  typeIdAt(o: number): number {
    return this.typeIds[o]!;
  }

  /** The session id of the line at ordinal o (0: none; see sessions). */
  sessionIdAt(o: number): number {
    return this.sessionIds[o]!;
  }

  /** The id of a session name, undefined when no line has it. */
  sessionIdNamed(name: string): number | undefined {
    return this.sessions.idOf(name);
  }

  /** The id of a type name, undefined when no line has it. */
  typeIdNamed(name: string): number | undefined {
    return this.types.idOf(name);
  }

  /** The index of the line at ordinal o. */
  indexOf(o: number): number {
    // Last run starting at or before o (runOrd is ascending by construction).
    let lo = 0;
    let hi = this.runOrd.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.runOrd[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    return this.runIdx[lo]! + (o - this.runOrd[lo]!);
  }

  /**
   * The ordinal of the line with index I, or of the line covering it (a drop marker), or of the
   * nearest line before it when the set skips it; 0 before the first line. -1 when empty.
   */
  ordinalOfIndex(index: number): number {
    if (this.count === 0) return -1;
    let run = -1;
    if (this.indexesIncreasing) {
      let lo = 0;
      let hi = this.runIdx.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (this.runIdx[mid]! <= index) {
          run = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
    } else {
      // Indexes out of order: take the run that starts closest below it.
      for (let k = 0; k < this.runIdx.length; k++) {
        const start = this.runIdx[k]!;
        if (start <= index && (run < 0 || start > this.runIdx[run]!)) run = k;
      }
    }
    if (run < 0) return 0;
    const runEnd = run + 1 < this.runOrd.length ? this.runOrd[run + 1]! : this.count;
    return Math.min(this.runOrd[run]! + (index - this.runIdx[run]!), runEnd - 1);
  }

  /** The first ordinal whose time is at or after t (count when none is). */
  ordinalAtTime(t: number): number {
    if (this.timesSorted) {
      let lo = 0;
      let hi = this.count;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.times[mid]! < t) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    }
    for (let o = 0; o < this.count; o++) if (this.times[o]! >= t) return o;
    return this.count;
  }

  /** Earliest and latest time in the set (they are the first and last when times are sorted). */
  timeRange(): { first: number; last: number } {
    if (this.count === 0) return { first: NaN, last: NaN };
    if (this.timesSorted) return { first: this.times[0]!, last: this.times[this.count - 1]! };
    let first = Infinity;
    let last = -Infinity;
    for (let o = 0; o < this.count; o++) {
      const t = this.times[o]!;
      if (t < first) first = t;
      if (t > last) last = t;
    }
    return { first, last };
  }

  segmentOf(o: number): IndexedSegment {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      const f = this.segments[mid]!.firstOrdinal;
      if (f >= 0 && f <= o) lo = mid;
      else hi = mid - 1;
    }
    return this.segments[lo]!;
  }

  span(o: number): LineSpan {
    const segment = this.segmentOf(o);
    const next = o + 1 < this.count && this.segmentOf(o + 1) === segment ? this.offsets[o + 1]! : segment.scannedEnd;
    return { segment, offset: this.offsets[o]!, bound: next };
  }

  // Compressed segments cannot be read at an offset; each one a page is wanted from is inflated
  // once into a private temporary directory, and the least recently used copies are removed.
  private inflatedDir: Promise<string> | undefined;
  private readonly inflatedFiles = new Map<number, Promise<string>>();

  private inflated(seg: IndexedSegment): Promise<string> {
    let file = this.inflatedFiles.get(seg.number);
    if (file) {
      // Most recently used last: Map keeps insertion order.
      this.inflatedFiles.delete(seg.number);
      this.inflatedFiles.set(seg.number, file);
      return file;
    }
    file = (async () => {
      this.inflatedDir ??= fsp.mkdtemp(path.join(os.tmpdir(), 'ringlog-view-'));
      const target = path.join(await this.inflatedDir, `segment-${seg.number}.jsonl`);
      await pipeline(createReadStream(seg.path), createGunzip(), createWriteStream(target, { mode: 0o600 }));
      return target;
    })();
    file.catch(() => this.inflatedFiles.delete(seg.number));
    this.inflatedFiles.set(seg.number, file);
    while (this.inflatedFiles.size > MAX_INFLATED) {
      const [oldest, p] = this.inflatedFiles.entries().next().value as [number, Promise<string>];
      this.inflatedFiles.delete(oldest);
      // A read may still have it open: unlinking keeps its bytes readable until it closes.
      void p.then((f) => fsp.rm(f, { force: true })).catch(() => undefined);
    }
    return file;
  }

  /** Removes the inflated copies. The index stays usable (copies are made again on demand). */
  async dispose(): Promise<void> {
    const dir = this.inflatedDir;
    this.inflatedDir = undefined;
    this.inflatedFiles.clear();
    if (dir) await fsp.rm(await dir, { recursive: true, force: true });
  }

  /**
   * The text of the lines at ordinals [from, to), each cut to at most maxBytes (a preview), read
   * with one read per file when the span is small and one per line otherwise.
   */
  async readLines(from: number, to: number, maxBytes: number): Promise<ReadLine[]> {
    const out: ReadLine[] = [];
    let o = from;
    while (o < to) {
      const seg = this.segmentOf(o);
      let end = o;
      while (end < to && this.segmentOf(end) === seg) end++;
      const fh = await fsp.open(seg.compressed ? await this.inflated(seg) : seg.path, 'r');
      try {
        const first = this.span(o);
        const last = this.span(end - 1);
        const total = last.bound - first.offset;
        // One read for the whole run when it is small (a page of ordinary events), so a page costs
        // a single syscall per file; a run with big events reads only each line's start.
        if (total <= BULK_READ_BYTES) {
          const buf = Buffer.allocUnsafe(total);
          const { bytesRead } = await fh.read(buf, 0, total, first.offset);
          for (let k = o; k < end; k++) {
            const s = this.span(k);
            out.push(cut(buf.subarray(s.offset - first.offset, Math.min(s.bound - first.offset, bytesRead)), maxBytes));
          }
        } else {
          for (let k = o; k < end; k++) out.push(await readOne(fh, this.span(k), maxBytes));
        }
      } finally {
        await fh.close();
      }
      o = end;
    }
    return out;
  }
}

/** The value of the first `"session_id":"…"` in buf[start, end), undefined when there is none (or it is cut). */
function sessionIn(buf: Buffer, start: number, end: number): string | undefined {
  const at = buf.indexOf(SESSION_KEY, start);
  if (at < 0 || at >= end) return undefined;
  const from = at + SESSION_KEY.length;
  let escaped = false;
  for (let p = from; p < end; p++) {
    const c = buf[p]!;
    if (c === 0x5c) {
      escaped = true;
      p++;
    } else if (c === 0x22) {
      const raw = buf.toString('utf8', from, p);
      if (!escaped) return raw;
      try {
        return JSON.parse(`"${raw}"`) as string;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** sessionIn for a line already decoded (the reader's records), within its first SESSION_SEARCH_BYTES characters. */
function sessionInText(text: string): string | undefined {
  const at = text.indexOf('"session_id":"');
  if (at < 0 || at >= SESSION_SEARCH_BYTES) return undefined;
  const from = at + SESSION_KEY.length;
  const close = /(?<!\\)(?:\\\\)*"/g;
  close.lastIndex = from;
  const m = close.exec(text);
  if (m === null) return undefined;
  const raw = text.slice(from, m.index + m[0].length - 1);
  if (!raw.includes('\\')) return raw;
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return undefined;
  }
}

/**
 * Names interned to small ids (a Uint16 per line), with a count per id. Past `max` distinct names
 * the rest share one id, shown as `overflowName`: the index stays compact whatever the set holds.
 */
export class NameTable {
  readonly names: string[] = [];
  readonly counts: number[] = [];
  readonly #ids = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly overflowName: string,
    /** Names that have their id before any line (counted only when used). */
    reserved: readonly string[] = [],
  ) {
    for (const n of reserved) this.#add(n);
  }

  /** The id of `name`, made on first sight, and one more line counted for it. */
  intern(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      if (this.names.length < this.max) id = this.#add(name);
      else {
        id = this.max;
        if (this.names.length === this.max) {
          this.names.push(this.overflowName);
          this.counts.push(0);
        }
      }
    }
    this.counts[id]!++;
    return id;
  }

  idOf(name: string): number | undefined {
    return this.#ids.get(name);
  }

  #add(name: string): number {
    const id = this.names.length;
    this.names.push(name);
    this.counts.push(0);
    this.#ids.set(name, id);
    return id;
  }
}

/** Largest run of lines read in one go by readLines; beyond it, each line is read on its own. */
const BULK_READ_BYTES = 1024 * 1024;

async function readOne(fh: fsp.FileHandle, s: LineSpan, maxBytes: number): Promise<ReadLine> {
  const want = Math.min(s.bound - s.offset, maxBytes + 1);
  const buf = Buffer.allocUnsafe(Math.max(0, want));
  const { bytesRead } = await fh.read(buf, 0, buf.length, s.offset);
  return cut(buf.subarray(0, bytesRead), maxBytes);
}

/** The line at the start of `bytes` (up to its newline), cut to maxBytes. */
function cut(bytes: Buffer, maxBytes: number): ReadLine {
  const nl = bytes.indexOf(0x0a);
  const whole = nl >= 0 ? bytes.subarray(0, nl) : bytes;
  // Without a newline in what was read, the line goes on past it: its length is unknown.
  const length = nl >= 0 ? whole.length : -1;
  if (whole.length > maxBytes) return { text: whole.toString('utf8', 0, maxBytes), bytes: length, truncated: true };
  return { text: whole.toString('utf8'), bytes: length, truncated: nl < 0 };
}
