// Draws the pipeline benchmark's results (bench/results/pipeline-<corpus>.json, written by run.ts)
// as SVG charts for the README. No charting library: each chart is a handful of bars, and building
// the SVG by hand keeps a dependency out of the package that would only ever draw pictures.
//
//   npx tsc -p tsconfig.json && node dist/bench/charts.js [--results DIR] [--out DIR]
//
// run.ts gains contenders and metrics over time, so the only contender named here is ringlog (to
// highlight it): every chart draws whatever contenders the file holds, in the file's order (the
// same in every chart, so a contender is always in the same row), and a contender without the
// chart's figure is left out and named in the chart's notes rather than silently dropped.

import { mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { spread, type Spread } from './lib.js';

// ---------------------------------------------------------------------------------------------
// Reading the results

interface Contender {
  name: string;
  /** Per metric: run.ts's summary, or one made from the per-run values when the summary lacks it. */
  spreads: Map<string, Spread>;
  okRuns: number;
  failedRuns: number;
  /** run.ts records bytes as null for a contender that writes no file (the stringify baseline). */
  writesNoFile: boolean;
}

interface Results {
  corpus: string;
  /** "2026-11-24 04:31 UTC", or the raw string when it is not a date. */
  date: string;
  machine: string;
  events: number | null;
  runs: number | null;
  paced: { eventsPerSec: number | null; burst: number | null; loopResolutionMs: number | null };
  contenders: Contender[];
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function finite(x: unknown): number | null {
  return typeof x === 'number' && Number.isFinite(x) ? x : null;
}

function text(x: unknown, fallback: string): string {
  return typeof x === 'string' && x.trim() !== '' ? x : fallback;
}

function asSpread(x: unknown): Spread | null {
  if (!isRecord(x)) return null;
  const [median, min, max] = [finite(x.median), finite(x.min), finite(x.max)];
  return median === null || min === null || max === null ? null : { median, min, max };
}

/** Metrics the summary does not carry are rebuilt from the runs, so a newly added one still charts. */
function readSpreads(raw: Record<string, unknown>): Map<string, Spread> {
  const spreads = new Map<string, Spread>();
  if (isRecord(raw.summary)) {
    for (const [metric, value] of Object.entries(raw.summary)) {
      const s = asSpread(value);
      if (s) spreads.set(metric, s);
    }
  }
  const runs = Array.isArray(raw.runs) ? raw.runs.filter(isRecord) : [];
  const metrics = new Set(runs.flatMap((r) => Object.keys(r)));
  for (const metric of metrics) {
    if (spreads.has(metric)) continue;
    const s = spread(runs.map((r) => finite(r[metric])));
    if (s) spreads.set(metric, s);
  }
  return spreads;
}

function readContender(name: string, raw: unknown): Contender {
  const r = isRecord(raw) ? raw : {};
  const okRuns = Array.isArray(r.runs) ? r.runs.length : 0;
  const summary = isRecord(r.summary) ? r.summary : {};
  return {
    name,
    spreads: readSpreads(r),
    okRuns,
    failedRuns: Array.isArray(r.failures) ? r.failures.length : 0,
    writesNoFile: okRuns > 0 && 'bytes' in summary && summary.bytes === null,
  };
}

function formatDate(raw: unknown): string {
  const s = text(raw, 'date unknown');
  const d = new Date(s);
  // Minutes are enough to tell two runs of a day apart; seconds would only add noise to a caption.
  return Number.isNaN(d.getTime()) ? s : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

function readResults(file: string, fallbackCorpus: string): Results {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: not readable as JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isRecord(json)) throw new Error(`${file}: expected a JSON object`);
  const cores = finite(json.cores);
  const paced = isRecord(json.paced) ? json.paced : {};
  const machine = [
    text(json.cpu, 'CPU unknown'),
    cores === null ? null : `${cores} cores`,
    `Node ${text(json.node, 'version unknown')}`,
    typeof json.platform === 'string' ? json.platform : null,
  ];
  return {
    corpus: text(json.corpus, fallbackCorpus),
    date: formatDate(json.date),
    machine: machine.filter((s) => s !== null).join(', '),
    events: finite(json.events),
    runs: finite(json.runs),
    paced: {
      eventsPerSec: finite(paced.eventsPerSec),
      burst: finite(paced.burst),
      loopResolutionMs: finite(paced.loopDelayResolutionMs),
    },
    contenders: Object.entries(isRecord(json.contenders) ? json.contenders : {}).map(([n, c]) => readContender(n, c)),
  };
}

// ---------------------------------------------------------------------------------------------
// Numbers and units

export interface Unit {
  /** Axis title. */
  axis: string;
  /** A bar's value label: three significant figures, as much as run-to-run spread on a shared VM supports. */
  value(x: number): string;
  /** A tick label, with just the decimals the tick step needs. */
  tick(x: number, step: number): string;
}

function grouped(x: number, decimals: number): string {
  return x.toLocaleString('en-US', { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
}

/** Decimals that show a step of this size: 0.5 needs one, 2 needs none. */
function decimalsFor(step: number): number {
  // The epsilon absorbs steps like 0.30000000000000004 from the 1-2-5 arithmetic.
  return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
}

function significant3(x: number): number {
  return x === 0 ? 0 : Math.min(6, Math.max(0, 2 - Math.floor(Math.log10(Math.abs(x)) + 1e-9)));
}

export function plainUnit(axis: string): Unit {
  return { axis, value: (x) => grouped(x, significant3(x)), tick: (x, step) => grouped(x, decimalsFor(step)) };
}

/** k and M suffixes: seven-digit event rates are unreadable at a glance with digits alone. */
function compactUnit(axis: string): Unit {
  const scale = (x: number): [number, string] => (Math.abs(x) >= 1e6 ? [1e6, 'M'] : Math.abs(x) >= 1e3 ? [1e3, 'k'] : [1, '']);
  return {
    axis,
    value(x) {
      const [div, suffix] = scale(x);
      return `${grouped(x / div, significant3(x / div))}${suffix}`;
    },
    tick(x, step) {
      if (x === 0) return '0';
      const [div, suffix] = scale(x);
      return `${grouped(x / div, decimalsFor(step / div))}${suffix}`;
    },
  };
}

/** A unit from the metric's name suffix, as run.ts names them (callerNsPerEvent, …DelayP99Ms). */
export function unitOf(metric: string): Unit {
  if (/PerSec$/.test(metric)) return compactUnit(`${metric.replace(/PerSec$/, '')} per second`);
  if (/Ms$/.test(metric)) return plainUnit('milliseconds');
  if (/Us$/.test(metric)) return plainUnit('microseconds');
  if (/Ns(PerEvent)?$/.test(metric)) return plainUnit(metric.endsWith('PerEvent') ? 'nanoseconds per event' : 'nanoseconds');
  if (/Seconds$/.test(metric)) return plainUnit('seconds');
  return plainUnit(metric);
}

interface Scale {
  max: number;
  step: number;
}

/** A 0-based axis on a 1-2-5 step, ending on the first tick at or past the largest value. */
function niceScale(largest: number): Scale {
  // Five intervals over a ~500 px plot put ticks ~100 px apart, several times the widest tick
  // label ("2,500", "1.2M": ~40 px at 12 px).
  const TARGET_INTERVALS = 5;
  // All zeros (or nothing): any positive range draws zero-length bars on a sane axis.
  if (!(largest > 0)) return { max: 1, step: 1 / TARGET_INTERVALS };
  const raw = largest / TARGET_INTERVALS;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * magnitude).find((s) => s >= raw * (1 - 1e-9)) ?? 10 * magnitude;
  return { max: Math.ceil(largest / step - 1e-9) * step, step };
}

// ---------------------------------------------------------------------------------------------
// Chart model

export interface Bar {
  spread: Spread;
  colour: string;
}

export interface Row {
  name: string;
  highlight: boolean;
  /** One slot per series; null where the contender lacks that metric. */
  bars: (Bar | null)[];
}

export interface Series {
  label: string;
  colour: string;
}

export interface Panel {
  heading: string | null;
  unit: Unit;
  /** Shown as a legend only when there is more than one series. */
  series: Series[];
  rows: Row[];
}

export interface Chart {
  title: string;
  subtitle: string;
  panels: Panel[];
  /** Grouped bars are coloured by series, so ringlog's group is marked with a band instead. */
  bandHighlight: boolean;
  notes: string[];
  footer: string[];
}

// Okabe & Ito's palette, chosen to stay distinguishable under the common colour-vision
// deficiencies. ringlog's blue against mid grey also differs in lightness, so it survives
// greyscale printing and achromatopsia as well.
const COLOUR = {
  ringlog: '#0072B2',
  other: '#A6A6A6',
  band: '#0072B2',
  ink: '#1A1A1A',
  muted: '#595959',
  grid: '#E3E3E3',
  whisker: '#1A1A1A',
} as const;
// Series colours leave out ringlog's blue, which means "ringlog" in the other charts, and yellow,
// too pale on white; the first two differ in lightness too, so p99 and max part even in greyscale.
export const SERIES_COLOURS = ['#56B4E9', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#000000'] as const;

function isRinglog(name: string): boolean {
  // Variants the runner may add (ringlog-something) are ringlog too; "ringlogger" would not be.
  return /^ringlog(?![\w])/.test(name);
}

// ---------------------------------------------------------------------------------------------
// Layout constants

// The brief's target width; viewBox and width agree so one unit is one CSS pixel at that size.
const WIDTH = 800;
// Keeps text off the edge when the image sits in a page with no padding of its own.
const MARGIN = 24;
const FONT = {
  title: 20,
  // 13 px body and 12 px small text are the smallest sizes that stay comfortable at 1:1 on screen.
  body: 13,
  small: 12,
} as const;
// Text is measured by guess, as SVG cannot be asked. The widths are DejaVu Sans's, what rsvg and
// most Linux browsers fall back to and wider than Helvetica or Segoe UI, rounded up: digits 0.636
// em, lower case 0.55-0.63 em bar the rare m and w, capitals ~0.7 em, space and punctuation
// 0.32-0.39 em; bold is ~10% wider. Guessing wide only costs a few pixels of margin.
const EM = { digit: 0.64, lower: 0.6, upper: 0.72, narrow: 0.4, other: 0.64, boldFactor: 1.1 } as const;
// DejaVu's capitals and digits are 0.73 em tall. A baseline this far below a centre line centres
// 12-13 px digits on it (half of ~9.5 px), and a title's caps touch the margin line.
const CAP_HEIGHT_EM = 0.73;
const CENTRE_TO_BASELINE = 4;
// A bar tall enough to carry whisker caps and a 13 px label beside it.
const BAR_HEIGHT = 20;
// Bars of one group are lower and sit closer together than groups do (ROW_GAP), so a group
// reads as one contender; 16 px still carries a 13 px label.
const GROUPED_BAR_HEIGHT = 16;
const GROUPED_BAR_GAP = 3;
// Space between contenders: 70% of a bar, enough to part them without stretching the chart.
const ROW_GAP = 14;
// Gap between a name or label and the thing it labels: visibly separate, still clearly attached.
const TEXT_GAP = 8;
// Long contender names are cut rather than allowed to squeeze the plot below a readable width.
const MAX_NAME_WIDTH = 220;
// Whisker caps stop short of a bar's edges (2 px a side at least) so the bar's outline stays crisp.
const WHISKER_CAP = 10;
const WHISKER_CAP_INSET = 2;
// 1.5 px reads as a line over a bar's edge without being mistaken for a thin bar.
const WHISKER_STROKE = 1.5;
const TICK_LENGTH = 5;
// Tick labels hang one small-text line below the tick's end (12 px digits, plus 1 px of air).
const TICK_LABEL_DROP = FONT.small + 1;
// Vertical rhythm: baselines sit ~1.4 font sizes apart, the usual comfortable leading.
const LINE = { title: 28, body: 19, small: 17 } as const;
// Below the axis line: tick labels' baseline at 5 + 13 = 18 px, the axis title's a body line and
// 3 px of air further (40 px), then 8 px so its descenders clear whatever follows.
const AXIS_HEIGHT = 48;
const AXIS_TITLE_RAISE = 8;
// Panels are parted by more than a row gap, so a second panel's heading is not read as a row.
const PANEL_GAP = 26;
// Air between the header text and the first panel, and between the last axis and the footer:
// a third of a line, enough to part the blocks without a visible hole.
const BLOCK_GAP = 6;
// Legend swatches are the small text's cap height plus a little, so they read as keys to it; the
// gaps space entries like words in a sentence, not like table columns.
const SWATCH = 12;
const SWATCH_TO_LABEL = 5;
const LEGEND_ENTRY_GAP = 18;
// ringlog's shaded band reaches 6 px into the margin so the bold name sits inside it with air,
// and is 8% blue: visible behind the series colours without changing how they read.
const BAND_BLEED = 6;
const BAND_OPACITY = 0.08;

function charEm(c: string): number {
  if (c >= '0' && c <= '9') return EM.digit;
  if (c >= 'a' && c <= 'z') return EM.lower;
  if (c >= 'A' && c <= 'Z') return EM.upper;
  if (/[\s.,:;'()|!\[\]]/.test(c)) return EM.narrow;
  return EM.other;
}

function textWidth(s: string, size: number, bold = false): number {
  let em = 0;
  for (const c of s) em += charEm(c);
  return em * size * (bold ? EM.boldFactor : 1);
}

function esc(s: string): string {
  return s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&quot;');
}

/** One decimal is finer than any screen resolves and keeps the files small. */
function n(x: number): string {
  return String(Math.round(x * 10) / 10);
}

function wrap(s: string, size: number, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  // Split on ordinary spaces only: a no-break space (U+00A0) keeps "1 ms" on one line.
  for (const word of s.split(/[ \t\n]+/).filter(Boolean)) {
    const next = line === '' ? word : `${line} ${word}`;
    if (line !== '' && textWidth(next, size) > width) {
      lines.push(line);
      line = word;
    } else line = next;
  }
  if (line !== '') lines.push(line);
  return lines;
}

function fitName(name: string): string {
  if (textWidth(name, FONT.body, true) <= MAX_NAME_WIDTH) return name;
  let cut = name;
  while (cut.length > 1 && textWidth(`${cut}…`, FONT.body, true) > MAX_NAME_WIDTH) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function rangeText(s: Spread, unit: Unit): string {
  const [lo, hi] = [unit.value(s.min), unit.value(s.max)];
  // A range that rounds to one value says nothing the median does not.
  return lo === hi ? '' : `(${lo}–${hi})`;
}

function labelWidth(s: Spread, unit: Unit): number {
  const range = rangeText(s, unit);
  return textWidth(unit.value(s.median), FONT.body) + (range === '' ? 0 : TEXT_GAP / 2 + textWidth(range, FONT.small));
}

function groupHeight(seriesCount: number): number {
  return seriesCount === 1 ? BAR_HEIGHT : seriesCount * GROUPED_BAR_HEIGHT + (seriesCount - 1) * GROUPED_BAR_GAP;
}

// ---------------------------------------------------------------------------------------------
// Rendering

interface XLayout {
  plotLeft: number;
  plotRight: number;
}

/** One horizontal band shared by all panels, so their bars start at the same x. */
function xLayout(chart: Chart): XLayout {
  const rows = chart.panels.flatMap((p) => p.rows);
  const names = rows.map((r) => textWidth(fitName(r.name), FONT.body, r.highlight));
  const labels = chart.panels.flatMap((p) =>
    p.rows.flatMap((r) => r.bars.map((b) => (b ? labelWidth(b.spread, p.unit) : textWidth('n/a', FONT.small)))),
  );
  return {
    plotLeft: MARGIN + Math.max(0, ...names) + TEXT_GAP,
    plotRight: WIDTH - MARGIN - Math.max(0, ...labels) - TEXT_GAP,
  };
}

function svgText(x: number, y: number, s: string, attrs: string): string {
  return `<text x="${n(x)}" y="${n(y)}" ${attrs}>${esc(s)}</text>`;
}

function renderLegend(series: readonly Series[], baseline: number, x0: number): string {
  const parts: string[] = [];
  const swatchTop = baseline - CENTRE_TO_BASELINE - SWATCH / 2;
  let x = x0;
  for (const s of series) {
    parts.push(`<rect x="${n(x)}" y="${n(swatchTop)}" width="${SWATCH}" height="${SWATCH}" fill="${s.colour}"/>`);
    parts.push(svgText(x + SWATCH + SWATCH_TO_LABEL, baseline, s.label, `font-size="${FONT.small}" fill="${COLOUR.ink}"`));
    x += SWATCH + SWATCH_TO_LABEL + textWidth(s.label, FONT.small) + LEGEND_ENTRY_GAP;
  }
  return parts.join('');
}

function whisker(s: Spread, mid: number, barHeight: number, x: (v: number) => number): string {
  const cap = Math.min(WHISKER_CAP, barHeight - 2 * WHISKER_CAP_INSET);
  const [lo, hi, top] = [n(x(s.min)), n(x(s.max)), n(mid - cap / 2)];
  return `<path d="M${lo} ${n(mid)}H${hi}M${lo} ${top}v${cap}M${hi} ${top}v${cap}" stroke="${COLOUR.whisker}" stroke-width="${WHISKER_STROKE}" fill="none"/>`;
}

/** The median, then the min–max in smaller grey type, so the eye lands on the median first. */
function valueLabel(s: Spread, mid: number, x: (v: number) => number, unit: Unit): string {
  const range = rangeText(s, unit);
  // Labels start past the whisker's end so neither hides the other.
  return (
    `<text x="${n(x(s.max) + TEXT_GAP)}" y="${n(mid + CENTRE_TO_BASELINE)}" font-size="${FONT.body}" fill="${COLOUR.ink}">${esc(unit.value(s.median))}` +
    (range === '' ? '' : `<tspan dx="${TEXT_GAP / 2}" font-size="${FONT.small}" fill="${COLOUR.muted}">${esc(range)}</tspan>`) +
    '</text>'
  );
}

function renderBar(bar: Bar | null, y: number, h: number, x: (v: number) => number, unit: Unit): string {
  const mid = y + h / 2;
  if (!bar) return svgText(x(0) + TEXT_GAP, mid + CENTRE_TO_BASELINE, 'n/a', `font-size="${FONT.small}" fill="${COLOUR.muted}"`);
  const s = bar.spread;
  const rect = `<rect x="${n(x(0))}" y="${n(y)}" width="${n(Math.max(0, x(s.median) - x(0)))}" height="${h}" fill="${bar.colour}"/>`;
  return rect + whisker(s, mid, h, x) + valueLabel(s, mid, x, unit);
}

function renderAxis(scale: Scale, x: (v: number) => number, top: number, bottom: number, unit: Unit, layout: XLayout): string {
  const parts: string[] = [];
  for (let i = 0; i * scale.step <= scale.max * (1 + 1e-9); i++) {
    const v = i * scale.step;
    parts.push(`<path d="M${n(x(v))} ${n(top)}V${n(bottom + TICK_LENGTH)}" stroke="${i === 0 ? COLOUR.ink : COLOUR.grid}"/>`);
    parts.push(svgText(x(v), bottom + TICK_LENGTH + TICK_LABEL_DROP, unit.tick(v, scale.step), `font-size="${FONT.small}" fill="${COLOUR.muted}" text-anchor="middle"`));
  }
  parts.push(`<path d="M${n(layout.plotLeft)} ${n(bottom)}H${n(layout.plotRight)}" stroke="${COLOUR.ink}"/>`);
  const mid = (layout.plotLeft + layout.plotRight) / 2;
  parts.push(svgText(mid, bottom + AXIS_HEIGHT - AXIS_TITLE_RAISE, unit.axis, `font-size="${FONT.body}" fill="${COLOUR.ink}" text-anchor="middle"`));
  return parts.join('');
}

/** Draws one panel from `top` down; returns its markup and the y just below it. */
function renderPanel(panel: Panel, top: number, layout: XLayout, bandHighlight: boolean): { svg: string; bottom: number } {
  const parts: string[] = [];
  let y = top;
  if (panel.heading !== null) {
    y += LINE.body;
    parts.push(svgText(MARGIN, y, panel.heading, `font-size="${FONT.body}" font-weight="bold" fill="${COLOUR.ink}"`));
  }
  if (panel.series.length > 1) {
    y += LINE.small;
    parts.push(renderLegend(panel.series, y, layout.plotLeft));
  }
  y += BLOCK_GAP;
  const plotTop = y;
  const largest = Math.max(0, ...panel.rows.flatMap((r) => r.bars.map((b) => b?.spread.max ?? 0)));
  const scale = niceScale(largest);
  const x = (v: number) => layout.plotLeft + (v / scale.max) * (layout.plotRight - layout.plotLeft);
  const h = groupHeight(panel.series.length);
  const rowsTop = y + ROW_GAP / 2;
  const plotBottom = rowsTop + panel.rows.length * (h + ROW_GAP);

  // Grid first, so bars and labels paint over it.
  parts.push(renderAxis(scale, x, plotTop, plotBottom, panel.unit, layout));
  panel.rows.forEach((row, i) => {
    const ry = rowsTop + i * (h + ROW_GAP);
    if (bandHighlight && row.highlight) {
      // The band fills the row's share of the gaps above and below, so neighbours stay unshaded.
      parts.push(`<rect x="${MARGIN - BAND_BLEED}" y="${n(ry - ROW_GAP / 2)}" width="${WIDTH - 2 * (MARGIN - BAND_BLEED)}" height="${n(h + ROW_GAP)}" fill="${COLOUR.band}" fill-opacity="${BAND_OPACITY}"/>`);
    }
    const weight = row.highlight ? ' font-weight="bold"' : '';
    parts.push(svgText(layout.plotLeft - TEXT_GAP, ry + h / 2 + CENTRE_TO_BASELINE, fitName(row.name), `font-size="${FONT.body}" fill="${COLOUR.ink}" text-anchor="end"${weight}`));
    const barH = panel.series.length === 1 ? BAR_HEIGHT : GROUPED_BAR_HEIGHT;
    row.bars.forEach((bar, j) => parts.push(renderBar(bar, ry + j * (barH + GROUPED_BAR_GAP), barH, x, panel.unit)));
  });
  return { svg: parts.join(''), bottom: plotBottom + AXIS_HEIGHT };
}

export function renderChart(chart: Chart): string {
  const layout = xLayout(chart);
  const textWidthAvail = WIDTH - 2 * MARGIN;
  const body: string[] = [];
  let y = MARGIN + Math.round(FONT.title * CAP_HEIGHT_EM);
  body.push(svgText(MARGIN, y, chart.title, `font-size="${FONT.title}" font-weight="bold" fill="${COLOUR.ink}"`));
  y += LINE.title - LINE.body;
  for (const line of wrap(chart.subtitle, FONT.body, textWidthAvail)) {
    y += LINE.body;
    body.push(svgText(MARGIN, y, line, `font-size="${FONT.body}" fill="${COLOUR.muted}"`));
  }
  y += BLOCK_GAP;
  chart.panels.forEach((panel, i) => {
    const drawn = renderPanel(panel, y + (i === 0 ? 0 : PANEL_GAP), layout, chart.bandHighlight);
    body.push(drawn.svg);
    y = drawn.bottom;
  });
  y += BLOCK_GAP;
  for (const line of [...chart.notes, ...chart.footer].flatMap((l) => wrap(l, FONT.small, textWidthAvail))) {
    y += LINE.small;
    body.push(svgText(MARGIN, y, line, `font-size="${FONT.small}" fill="${COLOUR.muted}"`));
  }
  const height = Math.ceil(y + MARGIN);
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" role="img" font-family="'DejaVu Sans', Verdana, 'Segoe UI', Helvetica, Arial, sans-serif">`,
    `<title>${esc(chart.title)}</title>`,
    `<desc>${esc(chart.subtitle)}</desc>`,
    // An opaque background: dark-mode viewers would otherwise draw the dark text on dark.
    `<rect width="${WIDTH}" height="${height}" fill="#FFFFFF"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The three charts

function runsText(r: Results): string {
  return r.runs === null ? 'median of the runs' : `median of ${r.runs} run${r.runs === 1 ? '' : 's'}`;
}

function footer(r: Results): string[] {
  const size = r.events === null ? '' : `, ${r.events.toLocaleString('en-US')} events per run`;
  // The date goes with the corpus: the machine line is the one that grows long (CPU model names).
  return [`Corpus: ${r.corpus}${size}. Date: ${r.date}.`, `Machine: ${r.machine}.`];
}

/** Names the contenders a chart could not draw, and those whose figures rest on fewer runs. */
function coverageNotes(r: Results, metrics: readonly string[]): string[] {
  const missing = r.contenders.filter((c) => !metrics.some((m) => c.spreads.has(m))).map((c) => c.name);
  const partial = r.contenders
    .filter((c) => c.failedRuns > 0 && c.okRuns > 0)
    .map((c) => `${c.name} ${c.okRuns} of ${c.okRuns + c.failedRuns}`);
  return [
    ...(missing.length > 0 ? [`Not shown, no result: ${missing.join(', ')}.`] : []),
    ...(partial.length > 0 ? [`Runs that succeeded: ${partial.join('; ')}.`] : []),
  ];
}

function singleMetricChart(r: Results, metric: string, title: string, subtitle: string, extraNotes: string[]): Chart | null {
  const rows: Row[] = r.contenders.flatMap((c) => {
    const s = c.spreads.get(metric);
    if (!s) return [];
    const highlight = isRinglog(c.name);
    return [{ name: c.name, highlight, bars: [{ spread: s, colour: highlight ? COLOUR.ringlog : COLOUR.other }] }];
  });
  if (rows.length === 0) return null;
  return {
    title,
    subtitle,
    panels: [{ heading: null, unit: unitOf(metric), series: [{ label: metric, colour: COLOUR.other }], rows }],
    bandHighlight: false,
    notes: [...extraNotes, ...coverageNotes(r, [metric])],
    footer: footer(r),
  };
}

function callerChart(r: Results): Chart | null {
  const pace =
    r.paced.eventsPerSec === null
      ? 'paced phase'
      : `paced phase, ${r.paced.eventsPerSec.toLocaleString('en-US')} events/s` + (r.paced.burst === null ? '' : ` in bursts of ${r.paced.burst}`);
  return singleMetricChart(
    r,
    'callerNsPerEvent',
    `Caller cost per event, ${r.corpus} corpus`,
    `Time the calling thread spends per logged event while the logger keeps up (${pace}). Bar: ${runsText(r)}; whisker: min–max. Lower is better.`,
    [],
  );
}

function throughputChart(r: Results): Chart | null {
  const events = r.events === null ? 'the saturated phase' : `${r.events.toLocaleString('en-US')} events logged flat out`;
  const noFile = r.contenders.filter((c) => c.writesNoFile && c.spreads.has('eventsPerSec')).map((c) => c.name);
  const notes = noFile.length > 0 ? [`${noFile.join(', ')} write${noFile.length === 1 ? 's' : ''} no file: a baseline of serialisation alone, not a pipeline.`] : [];
  return singleMetricChart(
    r,
    'eventsPerSec',
    `End-to-end throughput, ${r.corpus} corpus`,
    `${events[0]!.toUpperCase()}${events.slice(1)}, from the first call until every line is in the file and the logger is shut. Bar: ${runsText(r)}; whisker: min–max. Higher is better.`,
    notes,
  );
}

/** "eventLoopDelayP99Ms" → "p99"; a name with no recognisable statistic is shown whole. */
function statisticOf(metric: string): string {
  // The statistic is a word of the camel-cased name followed only by unit words (Ms, NsPerEvent).
  const m = /(?:^|(?<=[a-z0-9]))(p\d+|P\d+|max|Max|min|Min|median|Median|mean|Mean|avg|Avg)(?=(?:[A-Z][a-z]*)*$)/.exec(metric);
  return m ? m[1]!.toLowerCase() : metric;
}

/** Medians first, tails after, max last: the order the eye expects bars of one group to grow in. */
function statisticRank(stat: string): number {
  if (stat === 'min') return 0;
  if (stat === 'median') return 50;
  if (stat === 'mean' || stat === 'avg') return 51;
  if (stat === 'max') return 1000;
  const p = /^p(\d+)$/.exec(stat);
  // p999 is the 99.9th percentile: read the digits as a fraction so it sorts after p99.
  return p ? Number(`0.${p[1]!}`) * 100 : 500;
}

function groupedPanel(r: Results, heading: string, metrics: readonly string[], colours: Map<string, string>): Panel | null {
  const rows: Row[] = r.contenders.flatMap((c) => {
    const bars = metrics.map((m) => {
      const s = c.spreads.get(m);
      return s ? { spread: s, colour: colours.get(statisticOf(m))! } : null;
    });
    return bars.some((b) => b !== null) ? [{ name: c.name, highlight: isRinglog(c.name), bars }] : [];
  });
  if (rows.length === 0) return null;
  return {
    heading,
    unit: unitOf(metrics[0]!),
    series: metrics.map((m) => ({ label: statisticOf(m), colour: colours.get(statisticOf(m))! })),
    rows,
  };
}

function isTimeMetric(metric: string): boolean {
  return /(Ms|Us|Ns|Seconds)$/.test(metric);
}

/**
 * Visibility latencies grouped by unit, since one axis can only carry one. Only names with a time
 * unit: run.ts also records visibilityProbes and visibilityMissing, which are counts.
 */
function visibilityGroups(r: Results): string[][] {
  const names = [...new Set(r.contenders.flatMap((c) => [...c.spreads.keys()]))].filter((m) => /visibility/i.test(m) && isTimeMetric(m));
  const byUnit = new Map<string, string[]>();
  for (const m of names) {
    const axis = unitOf(m).axis;
    byUnit.set(axis, [...(byUnit.get(axis) ?? []), m]);
  }
  return [...byUnit.values()].map((ms) => ms.sort((a, b) => statisticRank(statisticOf(a)) - statisticRank(statisticOf(b))));
}

function latencyChart(r: Results): Chart | null {
  const loopMetrics = ['eventLoopDelayP99Ms', 'eventLoopDelayMaxMs'].filter((m) => r.contenders.some((c) => c.spreads.has(m)));
  const visibility = visibilityGroups(r);
  // One colour per statistic across panels, so "p99" is the same colour in both.
  const colours = new Map<string, string>();
  for (const m of [...loopMetrics, ...visibility.flat()]) {
    const stat = statisticOf(m);
    if (!colours.has(stat)) colours.set(stat, SERIES_COLOURS[colours.size % SERIES_COLOURS.length]!);
  }
  const res = r.paced.loopResolutionMs;
  const resolution = res === null ? '' : ` The delay is sampled with a ${res}\u00A0ms timer, so an idle loop reads about ${res}\u00A0ms.`;
  const panels = [
    loopMetrics.length > 0 ? groupedPanel(r, 'Event-loop delay, paced phase', loopMetrics, colours) : null,
    ...visibility.map((ms) => groupedPanel(r, 'Line visibility, paced phase: from the call returning to the line being readable in the file', ms, colours)),
  ].filter((p): p is Panel => p !== null);
  if (panels.length === 0) return null;
  const drawn = [...loopMetrics, ...visibility.flat()];
  return {
    title: `Latency, ${r.corpus} corpus`,
    subtitle: `Bar: ${runsText(r)}; whisker: min–max. Lower is better; ringlog's rows are shaded.${resolution}`,
    panels,
    bandHighlight: true,
    notes: [...coverageNotes(r, drawn), ...visibilityNotes(r, visibility.flat(), drawn)],
    footer: footer(r),
  };
}

/** Who has no visibility bars, and whose visibility percentiles rest on probes that never showed. */
function visibilityNotes(r: Results, visibility: readonly string[], drawn: readonly string[]): string[] {
  if (visibility.length === 0) return [];
  const has = (c: Contender, ms: readonly string[]) => ms.some((m) => c.spreads.has(m));
  // Contenders with nothing at all are already named by coverageNotes.
  const without = r.contenders
    .filter((c) => has(c, drawn) && !has(c, visibility))
    .map((c) => `${c.name}${c.writesNoFile ? ' (writes no file)' : ''}`);
  const missing = r.contenders.flatMap((c) => {
    const worst = c.spreads.get('visibilityMissing')?.max ?? 0;
    return worst > 0 ? [`${c.name} up to ${worst.toLocaleString('en-US')}`] : [];
  });
  return [
    ...(without.length > 0 ? [`No line-visibility figure: ${without.join(', ')}.`] : []),
    ...(missing.length > 0 ? [`Probe lines never seen in the file, per run: ${missing.join('; ')}; those visibility figures are suspect.`] : []),
  ];
}

const CHARTS: readonly { name: string; build: (r: Results) => Chart | null }[] = [
  { name: 'caller-cost', build: callerChart },
  { name: 'throughput', build: throughputChart },
  { name: 'latency', build: latencyChart },
];

/**
 * Writes <chart>-<corpus>.svg into outDir for every pipeline-<corpus>.json in resultsDir and
 * returns the paths written. A chart whose figure no contender has is skipped, not drawn empty.
 */
export function renderCharts(resultsDir: string, outDir: string): string[] {
  const files = readdirSync(resultsDir)
    .map((f) => /^pipeline-(.+)\.json$/.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .sort((a, b) => a[1]!.localeCompare(b[1]!));
  mkdirSync(outDir, { recursive: true });
  const written: string[] = [];
  for (const [file, corpus] of files) {
    const results = readResults(join(resultsDir, file), corpus!);
    for (const { name, build } of CHARTS) {
      const chart = build(results);
      if (!chart) continue;
      const out = join(outDir, `${name}-${corpus!}.svg`);
      writeFileSync(out, renderChart(chart));
      written.push(out);
    }
  }
  return written;
}

// ---------------------------------------------------------------------------------------------
// Command line

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    // realpath on both sides: npm and symlinked checkouts hand node a different path to the file.
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

function main(): void {
  const { values } = parseArgs({
    options: { results: { type: 'string' }, out: { type: 'string' } },
    strict: true,
  });
  // Defaults are resolved from dist/bench/, where this file runs from, back to the sources, as
  // run.ts does, so the charts land next to the results whatever the working directory.
  const resultsDir = values.results ?? fileURLToPath(new URL('../../bench/results/', import.meta.url));
  const outDir = values.out ?? fileURLToPath(new URL('../../bench/charts/', import.meta.url));
  const written = renderCharts(resultsDir, outDir);
  if (written.length === 0) process.stderr.write(`no pipeline-<corpus>.json with chartable figures in ${resultsDir}\n`);
  for (const file of written) process.stdout.write(`wrote ${relative(process.cwd(), file)}\n`);
}

if (isEntryPoint()) {
  try {
    main();
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
