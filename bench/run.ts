// Whole-pipeline benchmark: every contender in its own process, runs interleaved, medians reported
// against the project's targets. Each child runs a paced phase (caller cost while the logger keeps
// up) and then a saturated one (whole-pipeline throughput); see harness.ts.
//
//   node dist/bench/run.js [--quick] [--events N] [--runs R] [--paced-seconds S] [--corpus large|small|both]

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LOOP_DELAY_RESOLUTION_MS, PACED_BURST, PACED_EVENTS_PER_SEC, PACED_PERIOD_MS } from './harness.js';
import {
  ChildFailure,
  METRICS,
  markdownTable,
  parsePositiveInt,
  runChild,
  spread,
  type ContenderResult,
  type CorpusName,
  type Metric,
  type Spread,
} from './lib.js';

const CONTENDERS = ['stringify', 'sync-port', 'pino-transport', 'ringlog'] as const;
type ContenderName = (typeof CONTENDERS)[number];

// The project's full run is 1,000,000 events; --quick is a tenth of that, enough to exercise every
// path (ring wrap-around, pino's buffer hand-off) in a few seconds per contender.
const FULL_EVENTS = 1_000_000;
const QUICK_EVENTS = 100_000;
// Two seconds at 20,000 events/s is 400 bursts, so the p99 rests on the four slowest rather than
// on one; --quick halves it, which still leaves 200 bursts and keeps a one-corpus quick run
// (12 children) well under its two-minute budget.
const FULL_PACED_SECONDS = 2;
const QUICK_PACED_SECONDS = 1;
// Three runs is the smallest count with a median that ignores one outlier.
const DEFAULT_RUNS = 3;
// Bound on a child's life. The slowest contender measured (pino-transport, large corpus, 2-core VM)
// needs ~25 µs per event end to end; 200 µs per event, with a one-minute floor for start-up and
// the line count, leaves 8x headroom and so only trips on a hang.
const CHILD_TIMEOUT_MS_PER_EVENT = 0.2;
const CHILD_TIMEOUT_FLOOR_MS = 60_000;

const TARGETS = {
  callerVsPino: 0.33,
  callerVsStringify: 0.5,
  throughputVsSyncPort: 1,
} as const;

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const RINGLOG_BUILD = here('../src/index.js');
// Results live next to the sources, not in dist/, so a rebuild does not wipe them.
const RESULTS_DIR = here('../../bench/results/');
// The package root, so the printed command reads the same whatever directory it was run from.
const ROOT = here('../../');

interface Failure {
  run: number;
  message: string;
  stderrTail: string;
}

interface ContenderReport {
  runs: ContenderResult[];
  failures: Failure[];
  summary: Partial<Record<Metric, Spread | null>>;
}

function readOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      events: { type: 'string' },
      runs: { type: 'string' },
      'paced-seconds': { type: 'string' },
      corpus: { type: 'string', default: 'large' },
    },
    strict: true,
  });
  const corpus = values.corpus;
  if (corpus !== 'large' && corpus !== 'small' && corpus !== 'both') {
    throw new Error(`--corpus must be large, small or both, got ${JSON.stringify(corpus)}`);
  }
  return {
    events: parsePositiveInt(values.events, '--events', values.quick ? QUICK_EVENTS : FULL_EVENTS),
    runs: parsePositiveInt(values.runs, '--runs', DEFAULT_RUNS),
    pacedSeconds: parsePositiveInt(
      values['paced-seconds'],
      '--paced-seconds',
      values.quick ? QUICK_PACED_SECONDS : FULL_PACED_SECONDS,
    ),
    corpora: (corpus === 'both' ? ['large', 'small'] : [corpus]) as CorpusName[],
  };
}

type Options = ReturnType<typeof readOptions>;

async function runOnce(name: ContenderName, opts: Options, corpus: CorpusName): Promise<ContenderResult> {
  const dir = await mkdtemp(join(tmpdir(), `ringlog-bench-${name}-`));
  try {
    // The paced phase takes its wall-clock length whatever the logger, so it is added on top.
    const timeout = Math.max(CHILD_TIMEOUT_FLOOR_MS, opts.events * CHILD_TIMEOUT_MS_PER_EVENT) + opts.pacedSeconds * 1000;
    const args = ['--events', String(opts.events), '--paced-seconds', String(opts.pacedSeconds), '--corpus', corpus, '--dir', dir];
    return await runChild(here(`./contenders/${name}.js`), args, timeout);
  } finally {
    // A full large-corpus run leaves ~1.3 GB behind; never let it pile up across runs.
    await rm(dir, { recursive: true, force: true });
  }
}

function ratio(num: Spread | null | undefined, den: Spread | null | undefined): number | null {
  return num && den && den.median !== 0 ? num.median / den.median : null;
}

const fmt = {
  int: (x: number) => Math.round(x).toLocaleString('en-US'),
  fixed: (digits: number) => (x: number) => x.toFixed(digits),
  mb: (x: number) => (x / 1e6).toFixed(0),
};

function cell(s: Spread | null | undefined, f: (x: number) => string): string {
  if (!s) return '—';
  const [med, lo, hi] = [f(s.median), f(s.min), f(s.max)];
  // A range that rounds to one value says nothing the median does not.
  return lo === hi ? med : `${med} (${lo}–${hi})`;
}

function renderResults(reports: Map<ContenderName, ContenderReport>, runs: number): string {
  const header = [
    'contender',
    'caller ns/event',
    'caller p99 ns/event',
    'loop delay p99 ms',
    'loop delay max ms',
    'saturated ns/event',
    'e2e s',
    'events/s',
    'MB/s',
    'MB written',
    'peak RSS MB',
    'ok runs',
  ];
  const rows = [...reports].map(([name, r]) => {
    const s = r.summary;
    return [
      name,
      cell(s.callerNsPerEvent, fmt.int),
      cell(s.callerP99NsPerEvent, fmt.int),
      cell(s.eventLoopDelayP99Ms, fmt.fixed(2)),
      cell(s.eventLoopDelayMaxMs, fmt.fixed(2)),
      cell(s.saturatedNsPerEvent, fmt.int),
      cell(s.e2eSeconds, fmt.fixed(2)),
      cell(s.eventsPerSec, fmt.int),
      cell(s.mbPerSec, fmt.fixed(0)),
      cell(s.bytes, fmt.mb),
      cell(s.peakRssBytes, fmt.mb),
      `${r.runs.length}/${runs}`,
    ];
  });
  return markdownTable(header, rows, [false, ...header.slice(1).map(() => true)]);
}

/** How a child runs, printed above the table so a pasted README table explains itself. */
function method(opts: Options): string {
  const paced = `${(PACED_EVENTS_PER_SEC * opts.pacedSeconds).toLocaleString('en-US')} events logged at ${PACED_EVENTS_PER_SEC.toLocaleString('en-US')}/s for ${opts.pacedSeconds} s, in bursts of ${PACED_BURST} every ${PACED_PERIOD_MS} ms`;
  return `Each contender runs in its own process, first a paced phase (${paced}), then, once the logger has written all of it, a saturated phase (${opts.events.toLocaleString('en-US')} events in a tight loop), on the same logger instance.`;
}

/** What each column means, printed under the table. */
function legend(): string {
  return [
    `- **caller ns/event**: paced phase; each burst's time ÷ ${PACED_BURST}, median over bursts. The time the caller's thread spends per call while the logger keeps up.`,
    "- **caller p99 ns/event**: the 99th percentile of the same per-burst samples. Every burst counts, so a fresh process's first ones (code not yet optimised) are in it.",
    "- **loop delay p99 / max ms**: paced phase, `monitorEventLoopDelay({ resolution: 1 })`. It records timer intervals, so even an idle loop reads about 1 ms, and the bursts' own time is included; a logger that stalls the loop between calls shows up here.",
    '- **saturated ns/event**: saturated phase, loop time ÷ events, back-pressure included: a logger with bounded memory runs at its writer\'s pace here, one that buffers without bound does not (see peak RSS).',
    '- **e2e s, events/s, MB/s, MB written**: saturated phase only, from its first call until every line is in the file and the logger has shut down.',
    '- **peak RSS MB**: the whole child process, both phases.',
  ].join('\n');
}

function computeRatios(reports: Map<ContenderName, ContenderReport>) {
  const s = (n: ContenderName) => reports.get(n)?.summary;
  const rows = [
    {
      name: 'ringlog caller ÷ pino-transport caller (paced)',
      value: ratio(s('ringlog')?.callerNsPerEvent, s('pino-transport')?.callerNsPerEvent),
      target: TARGETS.callerVsPino,
      want: 'at most' as const,
    },
    {
      name: 'ringlog caller ÷ stringify caller (paced)',
      value: ratio(s('ringlog')?.callerNsPerEvent, s('stringify')?.callerNsPerEvent),
      target: TARGETS.callerVsStringify,
      want: 'at most' as const,
    },
    {
      name: 'ringlog events/s ÷ sync-port events/s (saturated)',
      value: ratio(s('ringlog')?.eventsPerSec, s('sync-port')?.eventsPerSec),
      target: TARGETS.throughputVsSyncPort,
      want: 'at least' as const,
    },
  ];
  return rows.map((r) => ({
    ...r,
    met: r.value === null ? null : r.want === 'at most' ? r.value <= r.target : r.value >= r.target,
  }));
}

function renderRatios(ratios: ReturnType<typeof computeRatios>): string {
  const rows = ratios.map((r) => [
    r.name,
    r.value === null ? 'n/a' : r.value.toFixed(3),
    `${r.want === 'at most' ? '≤' : '≥'} ${r.target}`,
    r.met === null ? 'not measured' : r.met ? 'met' : 'MISSED',
  ]);
  return markdownTable(['ratio (of medians)', 'value', 'target', 'verdict'], rows, [false, true, true, false]);
}

async function benchCorpus(corpus: CorpusName, opts: Options, contenders: readonly ContenderName[]) {
  const reports = new Map<ContenderName, ContenderReport>(
    contenders.map((n) => [n, { runs: [], failures: [], summary: {} }]),
  );
  for (let run = 1; run <= opts.runs; run++) {
    // Rotate who goes first: the kernel may still be writing back the previous contender's dirty
    // pages, and that tax should not always fall on the same contender.
    const order = contenders.map((_, i) => contenders[(i + run - 1) % contenders.length]!);
    for (const name of order) {
      const report = reports.get(name)!;
      process.stderr.write(`[${corpus}] run ${run}/${opts.runs} ${name} … `);
      try {
        const r = await runOnce(name, opts, corpus);
        report.runs.push(r);
        process.stderr.write(
          `caller ${r.callerNsPerEvent.toFixed(0)} ns/event (p99 ${r.callerP99NsPerEvent.toFixed(0)}), ` +
            `loop delay p99 ${r.eventLoopDelayP99Ms.toFixed(2)} ms, ` +
            `saturated ${r.saturatedNsPerEvent.toFixed(0)} ns/event, e2e ${r.e2eSeconds.toFixed(2)} s\n`,
        );
      } catch (err) {
        const stderrTail = err instanceof ChildFailure ? err.stderrTail : '';
        report.failures.push({ run, message: String(err instanceof Error ? err.message : err), stderrTail });
        process.stderr.write(`FAILED: ${err instanceof Error ? err.message : String(err)}\n${stderrTail}\n`);
      }
    }
  }
  for (const report of reports.values()) {
    for (const m of METRICS) report.summary[m] = spread(report.runs.map((r) => r[m]));
  }
  return reports;
}

/** Quotes an argument only when a POSIX shell would otherwise split or expand it. */
function shellWord(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

async function main(): Promise<void> {
  const opts = readOptions();
  const ringlogReady = existsSync(RINGLOG_BUILD);
  const contenders = CONTENDERS.filter((n) => n !== 'ringlog' || ringlogReady);
  if (!ringlogReady) {
    process.stderr.write(`ringlog is not built (${relative(process.cwd(), RINGLOG_BUILD)} is missing): measuring the others only.\n`);
  }
  const machine = {
    node: process.version,
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    platform: `${process.platform} ${process.arch}`,
  };
  const command = ['node', relative(ROOT, process.argv[1] ?? ''), ...process.argv.slice(2)].map(shellWord).join(' ');
  const paced = {
    seconds: opts.pacedSeconds,
    eventsPerSec: PACED_EVENTS_PER_SEC,
    burst: PACED_BURST,
    periodMs: PACED_PERIOD_MS,
    loopDelayResolutionMs: LOOP_DELAY_RESOLUTION_MS,
  };
  let anyFailure = false;

  for (const corpus of opts.corpora) {
    // Other work on the machine skews every figure; the load averages put a number on it.
    const loadAvgBefore = loadavg();
    const reports = await benchCorpus(corpus, opts, contenders);
    const loadAvgAfter = loadavg();
    const ratios = computeRatios(reports);
    const table = renderResults(reports, opts.runs);
    const ratioTable = renderRatios(ratios);
    anyFailure ||= [...reports.values()].some((r) => r.failures.length > 0);

    const title = `### ${corpus} corpus: ${opts.events.toLocaleString('en-US')} events × ${opts.runs} runs, median (min–max)`;
    const notes = [
      ...(ringlogReady ? [] : ['ringlog was not measured: its build output is missing.', '']),
      `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.platform}. From the package root:`,
      '',
      '```sh',
      'npx tsc -p tsconfig.json',
      command,
      '```',
    ].join('\n');
    // One block, ready to paste into a README as it stands.
    const markdown = [title, method(opts), table, legend(), ratioTable, notes].join('\n\n');
    process.stdout.write(`\n${markdown}\n\n`);

    await mkdir(RESULTS_DIR, { recursive: true });
    const out = join(RESULTS_DIR, `pipeline-${corpus}.json`);
    const record = {
      command,
      argv: process.argv,
      cwd: process.cwd(),
      date: new Date().toISOString(),
      ...machine,
      corpus,
      events: opts.events,
      runs: opts.runs,
      paced,
      loadAvgBefore,
      loadAvgAfter,
      skipped: ringlogReady ? [] : ['ringlog'],
      contenders: Object.fromEntries(reports),
      ratios,
      markdown,
    };
    await writeFile(out, JSON.stringify(record, null, 2) + '\n');
    process.stdout.write(`saved ${relative(process.cwd(), out)}\n`);
  }
  if (anyFailure) process.exitCode = 1;
}

await main();
