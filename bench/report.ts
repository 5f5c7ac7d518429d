// Turns the runner's per-contender summaries into the printed Markdown: the figures, ringlog's
// ratio to every other contender, and the project's targets with a verdict each.

import { EXIT_EVENTS } from './exit-phase.js';
import { markdownTable, type Metric, type RunRecord, type Spread } from './lib.js';
import { OVERLOAD_RSS_CAP_BYTES } from './overload.js';
import { LOOP_DELAY_RESOLUTION_MS, PACED_BURST, PACED_EVENTS_PER_SEC, PACED_PERIOD_MS, SIDE_TIMER_MS } from './paced.js';

export interface Failure {
  run: number;
  phase: string;
  message: string;
  stderrTail: string;
}

export interface ContenderReport {
  runs: RunRecord[];
  failures: Failure[];
  summary: Partial<Record<Metric, Spread | null>>;
}

export type Reports = Map<string, ContenderReport>;

// Growth in the second half of the overload phase above which a logger counts as still growing.
// 64 MiB is ringlog's own overflow cap (maxBufferBytes): a bounded logger has filled its buffers
// well before half-time, so what it adds later is heap noise, far below one more such buffer.
export const BOUNDED_GROWTH_BYTES = 64 * 1024 * 1024;

export const TARGETS = {
  callerVsPinoTransport: 0.33,
  callerVsStringify: 0.5,
  throughputVsPinoTransport: 1.3,
  loopDelayVsPinoTransport: 0.5,
} as const;

const fmt = {
  int: (x: number) => Math.round(x).toLocaleString('en-US'),
  fixed: (digits: number) => (x: number) => x.toFixed(digits),
  mb: (x: number) => (x / 1e6).toFixed(0),
  pct: (x: number) => `${(x * 100).toFixed(x === 1 ? 0 : 1)}%`,
};

function cell(s: Spread | null | undefined, f: (x: number) => string): string {
  if (!s) return '—';
  const [med, lo, hi] = [f(s.median), f(s.min), f(s.max)];
  // A range that rounds to one value says nothing the median does not.
  return lo === hi ? med : `${med} (${lo}–${hi})`;
}

function okRuns(r: ContenderReport, runs: number, phase: string): string {
  const failed = r.failures.filter((f) => f.phase === phase).length;
  return failed === 0 ? `${runs}` : `${runs - failed}/${runs}`;
}

type Column = [header: string, metric: Metric, format: (x: number) => string];

function table(reports: Reports, columns: readonly Column[], runs: number, phase: string, only?: (name: string) => boolean): string {
  const header = ['contender', ...columns.map((c) => c[0]), 'ok runs'];
  const rows = [...reports]
    .filter(([name]) => !only || only(name))
    .map(([name, r]) => [name, ...columns.map(([, m, f]) => cell(r.summary[m], f)), okRuns(r, runs, phase)]);
  return markdownTable(header, rows, [false, ...columns.map(() => true), true]);
}

export function renderPaced(reports: Reports, runs: number): string {
  return table(
    reports,
    [
      ['caller ns/event', 'callerNsPerEvent', fmt.int],
      ['call p50 ns', 'callerCallP50Ns', fmt.int],
      ['call p99 ns', 'callerCallP99Ns', fmt.int],
      ['call p999 ns', 'callerCallP999Ns', fmt.int],
      ['loop delay p99 ms', 'eventLoopDelayP99Ms', fmt.fixed(2)],
      ['loop delay max ms', 'eventLoopDelayMaxMs', fmt.fixed(2)],
      ['visible p50 ms', 'visibilityP50Ms', fmt.fixed(2)],
      ['visible p99 ms', 'visibilityP99Ms', fmt.fixed(2)],
    ],
    runs,
    'main',
  );
}

export function renderSaturated(reports: Reports, runs: number): string {
  return table(
    reports,
    [
      ['saturated ns/event', 'saturatedNsPerEvent', fmt.int],
      ['e2e s', 'e2eSeconds', fmt.fixed(2)],
      ['events/s', 'eventsPerSec', fmt.int],
      ['MB/s', 'mbPerSec', fmt.fixed(0)],
      ['MB written', 'bytes', fmt.mb],
      ['peak RSS MB', 'peakRssBytes', fmt.mb],
    ],
    runs,
    'main',
  );
}

export function renderOverloadExit(reports: Reports, runs: number, ran: (name: string) => boolean): string {
  return table(
    reports,
    [
      ['overload peak RSS +MB', 'overloadPeakRssAboveBaselineBytes', fmt.mb],
      ['2nd-half growth MB', 'overloadSecondHalfGrowthBytes', fmt.mb],
      ['overload s', 'overloadSeconds', fmt.fixed(1)],
      ['events logged', 'overloadEvents', fmt.int],
      ['exit ms', 'exitMs', fmt.int],
      ['on disk at exit', 'exitFractionOnDisk', fmt.pct],
    ],
    runs,
    'overload',
    ran,
  );
}

export function method(o: { events: number; pacedSeconds: number; overloadSeconds: number | null }): string {
  const paced = `${(PACED_EVENTS_PER_SEC * o.pacedSeconds).toLocaleString('en-US')} events at ${PACED_EVENTS_PER_SEC.toLocaleString('en-US')}/s for ${o.pacedSeconds} s, bursts of ${PACED_BURST} every ${PACED_PERIOD_MS} ms, a ${SIDE_TIMER_MS} ms setInterval doing a little work alongside`;
  const main = `Each contender runs in its own process: a paced phase (${paced}), then, once the logger has written all of it, a saturated phase (${o.events.toLocaleString('en-US')} events in a tight loop) on the same logger.`;
  const extra =
    o.overloadSeconds === null
      ? ''
      : ` Two more processes per file-writing contender: overload (a producer faster than any writer for ${o.overloadSeconds} s, yielding to the loop every 1,000 events) and exit (${EXIT_EVENTS.toLocaleString('en-US')} events as fast as possible, then process.exit()).`;
  return main + extra;
}

export function legend(): string {
  return [
    `- **caller ns/event**: paced phase, every other burst timed whole ÷ ${PACED_BURST}, median over bursts.`,
    '- **call p50/p99/p999 ns**: paced phase, the other bursts, every call timed alone (one performance.now() between calls, its calibrated cost subtracted).',
    `- **loop delay p99/max ms**: paced phase, monitorEventLoopDelay at 1 ms resolution, with a ${SIDE_TIMER_MS} ms interval timer also running; an idle loop reads about 1 ms.`,
    '- **visible p50/p99 ms**: paced phase, one probe event per burst; a reader thread in the same process tails the file (polling every 0.2 ms when idle) and stamps when the probe\'s whole line is readable; measured from the call\'s return (0 when the line was in the file before it returned).',
    "- **saturated ns/event**: the tight loop's time ÷ events, back-pressure included.",
    '- **e2e s, events/s, MB/s, MB written**: saturated phase, from its first call until every line is in the file and the logger has shut down.',
    '- **peak RSS MB**: the whole main child, both phases.',
    `- **overload peak RSS +MB**: highest RSS during the overload phase above the RSS after opening and a full GC; the phase stops early past ${(OVERLOAD_RSS_CAP_BYTES / 1024 ** 3).toFixed(0)} GiB. **2nd-half growth**: peak at the end minus peak at half-time, ~0 for a logger whose memory is bounded.`,
    `- **exit ms**: from the process.exit() call (stamped by the child) to the parent seeing the child end; **on disk at exit**: lines in the file ÷ ${EXIT_EVENTS.toLocaleString('en-US')}.`,
  ].join('\n');
}

function median(reports: Reports, name: string, m: Metric): number | null {
  return reports.get(name)?.summary[m]?.median ?? null;
}

function quotient(a: number | null, b: number | null): number | null {
  return a !== null && b !== null && b !== 0 ? a / b : null;
}

/** `subject`'s medians divided by each other contender's (or by those of `against`). */
export function renderVersus(reports: Reports, subject = 'ringlog', against?: readonly string[]): string {
  const cols: [string, Metric][] = [
    ['caller', 'callerNsPerEvent'],
    ['call p99', 'callerCallP99Ns'],
    ['loop delay p99', 'eventLoopDelayP99Ms'],
    ['visible p99', 'visibilityP99Ms'],
    ['events/s', 'eventsPerSec'],
    ['peak RSS', 'peakRssBytes'],
    ['overload +RSS', 'overloadPeakRssAboveBaselineBytes'],
    ['exit ms', 'exitMs'],
  ];
  const rows = (against ?? [...reports.keys()].filter((n) => n !== subject))
    .filter((n) => reports.has(n))
    .map((other) => [
      other,
      ...cols.map(([, m]) => {
        const q = quotient(median(reports, subject, m), median(reports, other, m));
        return q === null ? '—' : `${q.toFixed(2)}×`;
      }),
    ]);
  const header = [`${subject} ÷ contender (medians)`, ...cols.map((c) => c[0])];
  return markdownTable(header, rows, [false, ...cols.map(() => true)]);
}

export interface Verdict {
  name: string;
  value: string;
  target: string;
  met: boolean | null;
}

function ratioVerdict(name: string, value: number | null, target: number, want: 'at most' | 'at least'): Verdict {
  return {
    name,
    value: value === null ? 'n/a' : `${value.toFixed(3)}×`,
    target: `${want === 'at most' ? '≤' : '≥'} ${target}×`,
    met: value === null ? null : want === 'at most' ? value <= target : value >= target,
  };
}

/** Second-half growth of every overload run, the worst one; null when the phase never ran. */
function worstGrowth(reports: Reports, name: string): { bytes: number; capped: boolean } | null {
  const runs = reports.get(name)?.runs.filter((r) => r.overloadCapped !== undefined) ?? [];
  if (runs.length === 0) return null;
  return {
    bytes: Math.max(0, ...runs.map((r) => r.overloadSecondHalfGrowthBytes ?? 0)),
    capped: runs.some((r) => r.overloadCapped === 1),
  };
}

/** `extraPhases`: whether the overload and exit phases ran on this corpus (their targets need them). */
export function targets(reports: Reports, extraPhases: boolean): Verdict[] {
  const r = (m: Metric, other: string) => quotient(median(reports, 'ringlog', m), median(reports, other, m));
  const verdicts = [
    ratioVerdict('caller cost, ringlog ÷ pino-transport (paced)', r('callerNsPerEvent', 'pino-transport'), TARGETS.callerVsPinoTransport, 'at most'),
    ratioVerdict('caller cost, ringlog ÷ stringify (paced)', r('callerNsPerEvent', 'stringify'), TARGETS.callerVsStringify, 'at most'),
    ratioVerdict('end-to-end events/s, ringlog ÷ pino-transport', r('eventsPerSec', 'pino-transport'), TARGETS.throughputVsPinoTransport, 'at least'),
    ratioVerdict('event-loop delay p99, ringlog ÷ pino-transport (20,000/s)', r('eventLoopDelayP99Ms', 'pino-transport'), TARGETS.loopDelayVsPinoTransport, 'at most'),
  ];

  if (!extraPhases) return verdicts;
  const mb = (x: number) => `${(x / 1e6).toFixed(0)} MB`;
  const own = worstGrowth(reports, 'ringlog');
  const others = ['thread-stream', 'pino-destination'].map((n) => [n, worstGrowth(reports, n)] as const);
  const grows = (g: { bytes: number; capped: boolean }) => g.capped || g.bytes > BOUNDED_GROWTH_BYTES;
  const complete = own !== null && others.every(([, g]) => g !== null);
  verdicts.push({
    name: 'overload memory: ringlog bounded, thread-stream and sonic-boom (pino-destination) grow',
    value: complete
      ? [`ringlog ${mb(own.bytes)}`, ...others.map(([n, g]) => `${n} ${g!.capped ? 'capped' : mb(g!.bytes)}`)].join(', ') + ' (worst 2nd-half growth)'
      : 'n/a',
    target: `ringlog ≤ ${mb(BOUNDED_GROWTH_BYTES)}, others more`,
    met: complete ? !grows(own) && others.every(([, g]) => grows(g!)) : null,
  });

  const exits = reports.get('ringlog')?.runs.filter((x) => x.exitFractionOnDisk !== undefined) ?? [];
  const worst = exits.length === 0 ? null : Math.min(...exits.map((x) => x.exitFractionOnDisk!));
  verdicts.push({
    name: `events on disk after process.exit() with ${EXIT_EVENTS.toLocaleString('en-US')} queued (ringlog, worst run)`,
    value: worst === null ? 'n/a' : fmt.pct(worst),
    target: '100%',
    met: worst === null ? null : worst === 1,
  });
  return verdicts;
}

export function renderTargets(verdicts: readonly Verdict[]): string {
  const rows = verdicts.map((v) => [v.name, v.value, v.target, v.met === null ? 'not measured' : v.met ? 'met' : 'MISSED']);
  return markdownTable(['target', 'measured', 'wanted', 'verdict'], rows, [false, true, true, false]);
}

/**
 * Not a target: the loop-delay ratio with the monitor's own timer period taken off both sides.
 * monitorEventLoopDelay records whole intervals, so an idle loop reads ~1 ms and no logger's p99
 * can fall below that; this shows how much of the lateness itself each one causes.
 */
export function loopLatenessNote(reports: Reports): string {
  const late = (n: string) => {
    const p99 = median(reports, n, 'eventLoopDelayP99Ms');
    return p99 === null ? null : p99 - LOOP_DELAY_RESOLUTION_MS;
  };
  const [own, pino] = [late('ringlog'), late('pino-transport')];
  if (own === null || pino === null) return '';
  const q = quotient(own, pino);
  return (
    `Not a target, for reading the loop-delay row: the p99 minus the monitor's ${LOOP_DELAY_RESOLUTION_MS} ms timer period ` +
    `(what an idle loop already reads) is ${own.toFixed(2)} ms for ringlog and ${pino.toFixed(2)} ms for pino-transport` +
    (q === null ? '.' : `, a ratio of ${q.toFixed(2)}×.`)
  );
}
