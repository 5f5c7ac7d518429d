// `ringlog stats`: what a set holds — events and bytes per type, indexes, time span, rate over
// time, segments, and the issues met on the way — as a table, or as JSON with --json.

import type { Run } from './context.js';
import { makeFilter, reportUnmatchedTypes, type FilterOptions } from './filters.js';
import { bytesText, fixed, int, table } from './output.js';
import { DROPPED_TYPE, PROJECTED_TYPE } from '../files/format.js';
import { fileLabel, scan, type ScanResult } from './scan.js';
import { sourceLabel, withSource, type Source, type SourceArgs } from './source.js';

export interface StatsOptions extends SourceArgs, FilterOptions {
  json?: boolean;
  buckets: number;
}

/** Default buckets of the rate-over-time chart: 20 rows fit a terminal beside the table above them. */
export const DEFAULT_BUCKETS = 20;
/** Cells of the longest bar of the chart: fits 80 columns beside the time and rate columns. */
const CHART_CELLS = 40;
/** Name shown for records without a string `type`. */
const NO_TYPE = '(no type)';

export interface StatsJson {
  source: string;
  segments: { count: number; compressed: number; bytes: number; files: { file: string; number: number; compressed: boolean; bytes: number }[] } | null;
  lines: number;
  events: number;
  bytes: number;
  dropMarkers: number;
  droppedEvents: number;
  projectionMarkers: number;
  projectedEvents: number;
  firstIndex: number | null;
  lastIndex: number | null;
  firstEmittedAtMs: number | null;
  lastEmittedAtMs: number | null;
  start: string | null;
  end: string | null;
  spanMs: number | null;
  eventsPerSecond: number | null;
  types: { type: string | null; lines: number; bytes: number }[];
  rateOverTime: { bucketMs: number; buckets: { start: string; startMs: number; events: number; eventsPerSecond: number }[] };
  issues: { total: number; byCode: Record<string, number>; first: { code: string; message: string }[] };
  timeBackwards: number;
  tornLastLine: { file: string; bytes: number } | null;
}

export async function stats(run: Run, arg: string | undefined, opts: StatsOptions): Promise<void> {
  const filter = makeFilter(opts);
  await withSource(arg, opts, async (src) => {
    const result = await scan(run, src, { filter });
    if (run.signal.aborted) return;
    const json = toJson(src, result, opts.buckets);
    if (opts.json) run.out.line(JSON.stringify(json, null, 2));
    else for (const line of render(json)) run.out.line(line);
    await run.out.flush();
  });
  if (!run.signal.aborted) reportUnmatchedTypes(filter);
}

export function toJson(src: Source, r: ScanResult, buckets: number): StatsJson {
  const span = r.firstMs !== null && r.lastMs !== null ? r.lastMs - r.firstMs : null;
  const timeline = r.timeline.result(buckets);
  return {
    source: sourceLabel(src),
    segments:
      src.kind === 'set'
        ? {
            count: src.segments.length,
            compressed: src.segments.filter((s) => s.compressed).length,
            bytes: src.segments.reduce((a, s) => a + s.bytes, 0),
            files: src.segments.map((s) => ({ file: s.path, number: s.number, compressed: s.compressed, bytes: s.bytes })),
          }
        : null,
    lines: r.lines,
    events: r.events,
    bytes: r.bytes,
    dropMarkers: r.dropMarkers,
    droppedEvents: r.dropped,
    projectionMarkers: r.projectionMarkers,
    projectedEvents: r.projected,
    firstIndex: r.firstIndex,
    lastIndex: r.lastIndex,
    firstEmittedAtMs: r.firstMs,
    lastEmittedAtMs: r.lastMs,
    start: r.firstMs === null ? null : iso(r.firstMs),
    end: r.lastMs === null ? null : iso(r.lastMs),
    spanMs: span,
    // Over a zero span (one millisecond's events) a rate means nothing.
    eventsPerSecond: span !== null && span > 0 ? r.events / (span / 1000) : null,
    types: [...r.types.entries()]
      .map(([type, f]) => ({ type: type ?? null, lines: f.lines, bytes: f.bytes }))
      .sort((a, b) => b.lines - a.lines || String(a.type).localeCompare(String(b.type))),
    rateOverTime: {
      bucketMs: timeline.bucketMs,
      buckets: timeline.buckets.map((b) => ({ start: iso(b.startMs), startMs: b.startMs, events: b.events, eventsPerSecond: b.perSecond })),
    },
    issues: {
      total: r.issues.total,
      byCode: { ...r.issues.byCode },
      first: r.issues.listed.map((i) => ({ code: i.code, message: i.message })),
    },
    timeBackwards: r.timeBackwards,
    tornLastLine: r.tornTail ? { file: r.tornTail.file, bytes: r.tornTail.bytes } : null,
  };
}

function iso(ms: number): string {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? String(ms) : d.toISOString();
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${fixed((part / whole) * 100, 1)}%`;
}

export function render(s: StatsJson): string[] {
  const rows: [string, string][] = [['source', s.source]];
  if (s.segments) {
    const gz = s.segments.compressed > 0 ? `, ${int(s.segments.compressed)} compressed` : '';
    rows.push(['segments', `${int(s.segments.count)}${gz}, ${bytesText(s.segments.bytes)} on disk`]);
  }
  rows.push(['events', int(s.events)]);
  rows.push(['bytes', `${bytesText(s.bytes)} of lines`]);
  if (s.dropMarkers > 0) rows.push(['dropped', `${int(s.droppedEvents)} events, marked by ${int(s.dropMarkers)} ${DROPPED_TYPE} line(s)`]);
  if (s.projectionMarkers > 0) rows.push(['projected', `${int(s.projectedEvents)} streaming snapshots left out, marked by ${int(s.projectionMarkers)} ${PROJECTED_TYPE} line(s)`]);
  rows.push(['indexes', s.firstIndex === null ? '-' : `${int(s.firstIndex)} … ${int(s.lastIndex!)}`]);
  rows.push(['time', s.start === null ? '-' : `${s.start} … ${s.end}  (${duration(s.spanMs!)})`]);
  rows.push(['rate', s.eventsPerSecond === null ? '-' : `${int(s.eventsPerSecond)} events/s overall`]);
  const issueText =
    s.issues.total === 0
      ? 'none'
      : `${int(s.issues.total)}: ` +
        Object.entries(s.issues.byCode)
          .map(([code, n]) => `${issueName(code)} ${int(n)}`)
          .join(', ') +
        '  (details: ringlog verify)';
  rows.push(['issues', issueText]);
  if (s.timeBackwards > 0) rows.push(['clock', `${int(s.timeBackwards)} record(s) stamped earlier than the one before`]);
  if (s.tornLastLine) rows.push(['torn last line', `${int(s.tornLastLine.bytes)} bytes at the end of ${fileLabel(s.tornLastLine.file)} (not counted)`]);
  const out = table(rows);

  if (s.types.length > 0) {
    out.push('');
    const header = ['type', 'lines', '%', 'bytes', '%', 'avg bytes'];
    const body = s.types.map((t) => [
      t.type === null ? NO_TYPE : t.type,
      int(t.lines),
      percent(t.lines, s.lines),
      int(t.bytes),
      percent(t.bytes, s.bytes),
      int(t.bytes / t.lines),
    ]);
    body.push(['total', int(s.lines), '', int(s.bytes), '', s.lines === 0 ? '-' : int(s.bytes / s.lines)]);
    out.push(...columns([header, ...body]));
  }

  const buckets = s.rateOverTime.buckets;
  if (buckets.length > 1) {
    const peak = Math.max(...buckets.map((b) => b.eventsPerSecond));
    out.push('', `rate over time (${buckets.length} buckets of ${duration(s.rateOverTime.bucketMs)}; peak ${int(peak)} events/s)`);
    const rateWidth = Math.max(...buckets.map((b) => int(b.eventsPerSecond).length));
    const startMs = buckets[0]!.startMs;
    const axis = axisUnit(s.spanMs ?? 0);
    const labels = buckets.map((b) => `+${fixed((b.startMs - startMs) / axis.ms, axis.digits)} ${axis.name}`);
    const labelWidth = Math.max(...labels.map((l) => l.length));
    buckets.forEach((b, i) => {
      const cells = peak === 0 ? 0 : (b.eventsPerSecond / peak) * CHART_CELLS;
      out.push(`  ${labels[i]!.padStart(labelWidth)}  ${int(b.eventsPerSecond).padStart(rateWidth)}/s  ${bar(cells)}`.trimEnd());
    });
  }
  return out;
}

/** Eighth-block characters give the bars sub-cell resolution. */
const EIGHTHS = ['', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];

function bar(cells: number): string {
  const whole = Math.floor(cells);
  const eighths = Math.round((cells - whole) * 8);
  return '█'.repeat(whole) + (eighths === 8 ? '█' : EIGHTHS[eighths]!);
}

/** A duration in the unit that reads best. */
export function duration(ms: number): string {
  if (ms < 1000) return `${fixed(ms, ms < 10 ? 2 : 0)} ms`;
  if (ms < 60_000) return `${fixed(ms / 1000, 2)} s`;
  if (ms < 3_600_000) return `${fixed(ms / 60_000, 1)} min`;
  return `${fixed(ms / 3_600_000, 1)} h`;
}

/** One unit for every label of the time axis, chosen by the whole span, with enough decimals to tell 20 buckets apart. */
function axisUnit(spanMs: number): { name: string; ms: number; digits: number } {
  if (spanMs < 1000) return { name: 'ms', ms: 1, digits: 1 };
  if (spanMs < 60_000) return { name: 's', ms: 1000, digits: 2 };
  if (spanMs < 3_600_000) return { name: 'min', ms: 60_000, digits: 2 };
  return { name: 'h', ms: 3_600_000, digits: 2 };
}

function issueName(code: string): string {
  return code.replace(/^ERR_RINGLOG_READ_/, '').toLowerCase();
}

/** Columns: the first left-aligned, the rest right-aligned, as figures read best. */
function columns(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ').trimEnd());
}
