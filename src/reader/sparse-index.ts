// The sparse index: per segment, its first and last index and a checkpoint (index, byte offset,
// line number) about every CHECKPOINT_BYTES, so eventAt and readEvents({ fromIndex }) start
// reading near the target instead of at the start of the set. It lives beside the log as
// `.<base name>.idx.json` (hidden, so it is not mistaken for part of the set), is written
// atomically (temp file + rename), kept in memory as well, and never required: when the
// directory cannot be written the in-memory copy serves this process alone.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { decodeEnvelope } from './decode.js';
import { listSegments, openSegment, type ChunkSource } from './files.js';
import type { SegmentInfo } from './types.js';

/**
 * Spacing of checkpoints. A lookup then decodes at most about one read chunk of lines before the
 * target, and the index costs a few dozen bytes per megabyte of log (about 3 MB of JSON for a
 * 100 GB set).
 */
export const CHECKPOINT_BYTES = 1024 * 1024;

/** Bumped whenever the file's meaning changes; an index of another version is rebuilt. */
export const INDEX_VERSION = 1;

/** [first index of the line, byte offset of the line's start, 1-based line number]. */
export type Checkpoint = [index: number, offset: number, line: number];

export interface IndexedSegment {
  name: string;
  number: number;
  compressed: boolean;
  /** Staleness key: the file is unchanged while ino, size and mtimeMs all match. */
  ino: number;
  bytes: number;
  mtimeMs: number;
  /** null when the segment holds no readable record. */
  firstIndex: number | null;
  /** Highest index covered by a record of the segment. */
  lastIndex: number | null;
  /** Offset just past the last complete line (in the decompressed stream for .gz). */
  scannedBytes: number;
  lines: number;
  checkpoints: Checkpoint[];
}

export interface SparseIndexFile {
  version: number;
  base: string;
  checkpointBytes: number;
  segments: IndexedSegment[];
}

/** Observable work, for tests: how often segments were scanned, extended, and the file written. */
export const indexCounters = { scans: 0, extensions: 0, writes: 0, writeFailures: 0, fileLoads: 0 };

const memory = new Map<string, SparseIndexFile>();

export function indexPath(basePath: string): string {
  return path.join(path.dirname(basePath), `.${path.basename(basePath)}.idx.json`);
}

/**
 * The index of the set as it is now: entries still valid are reused, a plain segment that grew
 * in place (same inode, larger) is extended from its last checkpoint, anything else is rescanned.
 * Written back when anything changed.
 */
export async function getIndex(basePath: string, segs?: readonly SegmentInfo[]): Promise<SparseIndexFile> {
  const list = segs ?? (await listSegments(basePath));
  const file = indexPath(basePath);
  const key = path.resolve(file);
  const prior = memory.get(key) ?? (await loadIndex(file, basePath));
  const byName = new Map((prior?.segments ?? []).map((s) => [s.name, s]));
  let changed = prior === undefined || prior.segments.length !== list.length;
  const out: IndexedSegment[] = [];
  for (const seg of list) {
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(seg.path);
    } catch {
      changed = true;
      continue;
    }
    const name = path.basename(seg.path);
    const old = byName.get(name);
    const fresh = { name, number: seg.number, compressed: seg.compressed, ino: st.ino, bytes: st.size, mtimeMs: st.mtimeMs };
    if (old && old.compressed === seg.compressed && old.ino === st.ino && old.bytes === st.size && old.mtimeMs === st.mtimeMs) {
      out.push(old);
      continue;
    }
    changed = true;
    let entry: IndexedSegment | null = null;
    if (old && !seg.compressed && !old.compressed && old.ino === st.ino && st.size > old.bytes && old.checkpoints.length > 0) {
      entry = await scanSegment(seg, fresh, old);
      if (entry) indexCounters.extensions++;
    }
    entry ??= await scanSegment(seg, fresh, null);
    if (entry) out.push(entry);
  }
  const idx: SparseIndexFile = { version: INDEX_VERSION, base: path.basename(basePath), checkpointBytes: CHECKPOINT_BYTES, segments: out };
  memory.set(key, idx);
  if (changed) await writeIndex(file, idx);
  return idx;
}

async function loadIndex(file: string, basePath: string): Promise<SparseIndexFile | undefined> {
  let text: string;
  try {
    text = await fs.promises.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const v = JSON.parse(text) as SparseIndexFile;
    if (v.version !== INDEX_VERSION || v.base !== path.basename(basePath) || v.checkpointBytes !== CHECKPOINT_BYTES || !Array.isArray(v.segments)) return undefined;
    indexCounters.fileLoads++;
    return v;
  } catch {
    // A damaged index is only a cache: rebuild it.
    return undefined;
  }
}

async function writeIndex(file: string, idx: SparseIndexFile): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  try {
    await fs.promises.writeFile(tmp, JSON.stringify(idx));
    await fs.promises.rename(tmp, file);
    indexCounters.writes++;
  } catch {
    // Read-only directory, full disk, …: the index stays in memory; reading never fails for it.
    indexCounters.writeFailures++;
    await fs.promises.unlink(tmp).catch(() => undefined);
  }
}

/**
 * Calls `onLine(buf, start, end, offset)` for each complete line of `src` (end excludes the
 * newline) until it returns false. Returns the offset just past the last complete line visited.
 */
export async function forEachLine(
  src: ChunkSource,
  onLine: (buf: Buffer, start: number, end: number, offset: number) => boolean,
): Promise<number> {
  let carry: Buffer | null = null;
  let carryAt = src.position;
  let done = src.position;
  for (;;) {
    const chunk = await src.read();
    if (chunk === null) return done;
    const data: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    const base: number = carry ? carryAt : src.position - chunk.length;
    let pos = 0;
    for (;;) {
      const nl = data.indexOf(0x0a, pos);
      if (nl < 0) break;
      const start = pos;
      pos = nl + 1;
      done = base + pos;
      if (!onLine(data, start, nl, base + start)) return done;
    }
    carry = pos < data.length ? data.subarray(pos) : null;
    carryAt = base + pos;
  }
}

/**
 * Scans a segment for its entry. With `from`, scanning starts at its last checkpoint, whose line
 * must still carry the same index (otherwise the file was rewritten: null, rescan it whole).
 */
async function scanSegment(
  seg: SegmentInfo,
  fresh: Pick<IndexedSegment, 'name' | 'number' | 'compressed' | 'ino' | 'bytes' | 'mtimeMs'>,
  from: IndexedSegment | null,
): Promise<IndexedSegment | null> {
  const last = from?.checkpoints[from.checkpoints.length - 1];
  const src = await openSegment(seg, last ? last[1] : 0);
  if (!src) return null;
  if (!from) indexCounters.scans++;
  const checkpoints: Checkpoint[] = from ? from.checkpoints.slice(0, -1) : [];
  let firstIndex = from ? from.firstIndex : null;
  // Lines from the last checkpoint on are scanned again, so the old maximum stays valid.
  let lastIndex = from ? from.lastIndex : null;
  let line = last ? last[2] - 1 : 0;
  let nextCheckpoint = 0;
  let mismatch = false;
  try {
    const end = await forEachLine(src, (buf, start, stop, offset) => {
      line++;
      const env = decodeEnvelope(buf, start, stop);
      if (typeof env === 'string') {
        if (last && line === last[2]) {
          mismatch = true;
          return false;
        }
        return true;
      }
      if (last && line === last[2] && env.index !== last[0]) {
        mismatch = true;
        return false;
      }
      if (firstIndex === null) firstIndex = env.index;
      const top = env.index + env.covers - 1;
      if (lastIndex === null || top > lastIndex) lastIndex = top;
      if (offset >= nextCheckpoint) {
        checkpoints.push([env.index, offset, line]);
        nextCheckpoint = offset + CHECKPOINT_BYTES;
      }
      return true;
    });
    if (mismatch) return null;
    return { ...fresh, firstIndex, lastIndex, scannedBytes: end, lines: line, checkpoints };
  } finally {
    await src.close();
  }
}

/** The last checkpoint at or before `index` (checkpoints ascend in a well-formed segment). */
export function checkpointFor(entry: IndexedSegment, index: number): Checkpoint {
  const cps = entry.checkpoints;
  let lo = 0;
  let hi = cps.length - 1;
  let best = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cps[mid]![0] <= index) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return cps[best] ?? [entry.firstIndex ?? 0, 0, 1];
}
