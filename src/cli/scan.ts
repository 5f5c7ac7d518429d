// One pass over every record of a source, in warn mode: the figures `stats` prints and the
// problems `verify` judges come from the same reading.

import * as path from 'node:path';
import type { ReadIssue, ReadIssueCode } from '../reader/index.js';
import type { Run } from './context.js';
import type { Filter } from './filters.js';
import { NO_PROGRESS, type Progress } from './progress.js';
import type { TornTail } from '../reader/index.js';
import { readSource, type Source } from './source.js';
import { Timeline } from './timeline.js';

import { isRangeMarker, PROJECTED_TYPE } from '../files/format.js';

/**
 * Issues kept word for word; the rest are only counted. Twenty fill a screen, enough to see
 * whether damage is one spot or a pattern without burying the summary under a million lines.
 */
export const ISSUES_LISTED = 20;

export interface TypeFigures {
  /** Lines of this type. */
  lines: number;
  /** Bytes of those lines, newlines included. */
  bytes: number;
}

export interface IssueSummary {
  total: number;
  byCode: Partial<Record<ReadIssueCode, number>>;
  /** The first ISSUES_LISTED issues, in reading order. */
  listed: ReadIssue[];
}

export interface ScanResult {
  /** Lines read as records (drop markers included; lines that failed to parse are not records). */
  lines: number;
  /** Records that are events: every line but drop and projection markers. */
  events: number;
  dropMarkers: number;
  /** Indexes the drop markers stand for. */
  dropped: number;
  projectionMarkers: number;
  /** Indexes durable projection left out (the projection markers stand for them). */
  projected: number;
  bytes: number;
  firstIndex: number | null;
  /** Highest index covered (a marker covers `count` from its own). */
  lastIndex: number | null;
  firstMs: number | null;
  lastMs: number | null;
  /** Records whose emitted_at_ms is before the previous record's. */
  timeBackwards: number;
  types: Map<string | undefined, TypeFigures>;
  issues: IssueSummary;
  tornTail: TornTail | null;
  timeline: Timeline;
}

export interface ScanOptions {
  progress?: Progress;
  /** Only the records that pass it are counted (stats' filters). */
  filter?: Filter;
}

export async function scan(run: Run, src: Source, opts: ScanOptions = {}): Promise<ScanResult> {
  const progress = opts.progress ?? NO_PROGRESS;
  const issues: IssueSummary = { total: 0, byCode: {}, listed: [] };
  const onIssue = (issue: ReadIssue): void => {
    issues.total++;
    issues.byCode[issue.code] = (issues.byCode[issue.code] ?? 0) + 1;
    if (issues.listed.length < ISSUES_LISTED) issues.listed.push(issue);
  };
  const r: ScanResult = {
    lines: 0,
    events: 0,
    dropMarkers: 0,
    dropped: 0,
    projectionMarkers: 0,
    projected: 0,
    bytes: 0,
    firstIndex: null,
    lastIndex: null,
    firstMs: null,
    lastMs: null,
    timeBackwards: 0,
    types: new Map(),
    issues,
    tornTail: null,
    timeline: new Timeline(),
  };
  // Progress counts bytes of the files on disk: those before the current file, plus what was read
  // of it (a compressed file's bytes only count once it is done, its decompressed size being unknown).
  const before = new Map<string, { offset: number; compressed: boolean }>();
  if (src.kind === 'set') {
    let offset = 0;
    for (const seg of src.segments) {
      before.set(seg.path, { offset, compressed: seg.compressed });
      offset += seg.bytes;
    }
  }
  let file = '';
  let fileBase = 0;
  let fileCompressed = false;
  let inFile = 0;
  let prevMs = -Infinity;
  const onTornTail = (tail: TornTail): void => {
    r.tornTail = tail;
  };
  const filter = opts.filter?.active === true ? opts.filter : undefined;
  for await (const rec of readSource(src, { issues: 'warn', onIssue, onTornTail, signal: run.signal })) {
    if (filter !== undefined && !filter.test(rec)) continue;
    r.lines++;
    r.bytes += rec.bytes;
    if (isRangeMarker(rec.type) && (rec.covers > 1 || isCountedMarker(rec.text))) {
      if (rec.type === PROJECTED_TYPE) {
        r.projectionMarkers++;
        r.projected += rec.covers;
      } else {
        r.dropMarkers++;
        r.dropped += rec.covers;
      }
    } else {
      r.events++;
      r.timeline.add(rec.emittedAtMs);
    }
    r.firstIndex ??= rec.index;
    const last = rec.index + rec.covers - 1;
    if (r.lastIndex === null || last > r.lastIndex) r.lastIndex = last;
    if (r.firstMs === null || rec.emittedAtMs < r.firstMs) r.firstMs = rec.emittedAtMs;
    if (r.lastMs === null || rec.emittedAtMs > r.lastMs) r.lastMs = rec.emittedAtMs;
    if (rec.emittedAtMs < prevMs) r.timeBackwards++;
    prevMs = rec.emittedAtMs;
    const t = r.types.get(rec.type);
    if (t) {
      t.lines++;
      t.bytes += rec.bytes;
    } else r.types.set(rec.type, { lines: 1, bytes: rec.bytes });
    if (rec.file !== file) {
      file = rec.file;
      const b = before.get(file);
      fileBase = b?.offset ?? 0;
      fileCompressed = b?.compressed ?? false;
      inFile = 0;
    }
    inFile += rec.bytes;
    progress.update(fileBase + (fileCompressed ? 0 : inFile));
  }
  progress.finish();
  return r;
}

/** A marker covering a single index has covers 1 like an event; its text says which it is. */
function isCountedMarker(text: string): boolean {
  try {
    const v = JSON.parse(text) as { count?: unknown };
    return Number.isSafeInteger(v.count) && (v.count as number) > 0;
  } catch {
    return false;
  }
}

export function fileLabel(file: string): string {
  return file === '-' ? '(stdin)' : path.basename(file);
}
