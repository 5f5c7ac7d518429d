// Whole-pipeline benchmark: every contender in its own process, runs interleaved, medians reported
// against the project's targets. Per run, each contender gets a main child (paced phase, then
// saturated phase; see harness.ts) and, if it writes a file, an overload child and an exit child
// (overload.ts, exit-phase.ts).
//
//   node dist/bench/run.js [--quick] [--events N] [--runs R] [--paced-seconds S]
//                          [--overload-seconds S] [--corpus large|small|both]

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { renderCharts } from './charts.js';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { EXIT_EVENTS } from './exit-phase.js';
import {
  ChildFailure,
  METRICS,
  parsePositiveInt,
  runChild,
  runExitChild,
  spread,
  tallyDir,
  type ContenderResult,
  type ExitResult,
  type OverloadResult,
  type RunRecord,
} from './lib.js';
import { LOOP_DELAY_RESOLUTION_MS, PACED_BURST, PACED_EVENTS_PER_SEC, PACED_PERIOD_MS, SIDE_TIMER_MS } from './paced.js';
import {
  legend,
  loopLatenessNote,
  method,
  renderOverloadExit,
  renderPaced,
  renderSaturated,
  renderTargets,
  renderVersus,
  targets,
  type ContenderReport,
  type Reports,
} from './report.js';

/** The pipeline matrix runs the project's two corpora; the whole family runs in corpus-matrix.ts. */
type CorpusName = 'large' | 'small';

const CONTENDERS = [
  'stringify',
  'copy-floor',
  'sync-port',
  'sync-port-64k',
  'pino-destination',
  'pino-transport',
  'pino-ringlog',
  'thread-stream',
  'winston',
  'ringlog',
  'ringlog-fsync',
] as const;
type ContenderName = (typeof CONTENDERS)[number];
// The baselines write no file, so they have no memory to grow and nothing to lose at exit; and
// ringlog-fsync is ringlog until the end of its saturated phase, so its other phases would repeat
// ringlog's.
const MAIN_ONLY: readonly ContenderName[] = ['stringify', 'copy-floor', 'ringlog-fsync'];

// Saturated-phase events, chosen for similar bytes per corpus (~330 MB large, ~90 MB small):
// 20-80x ringlog's ring and pino's 4 MiB buffer, so every pipeline reaches its steady state,
// while keeping `npm run bench` (both corpora, ~110 child processes) within its 15-minute budget
// on the 2-core VM. --quick cuts both to what exercises every path in a second or two.
const FULL_EVENTS: Record<CorpusName, number> = { large: 250_000, small: 500_000 };
const QUICK_EVENTS: Record<CorpusName, number> = { large: 50_000, small: 100_000 };
// The brief's durations: 10 s of steady load and of overload in the full run, 2 s with --quick.
// The small corpus's paced phase is cut to 4 s (still 400 whole-burst and 40,000 single-call
// samples): ten contenders x three runs x 10 s would take five of the fifteen minutes on their
// own, and the steady-rate figures the targets are stated for come from the large corpus.
const FULL_PACED_SECONDS: Record<CorpusName, number> = { large: 10, small: 4 };
const FULL_OVERLOAD_SECONDS = 10;
const QUICK_SECONDS = 2;
// Three runs is the smallest count with a median that ignores one outlier; --quick does one, as a
// smoke test, since three would not fit its two-minute budget with ten contenders.
const FULL_RUNS = 3;
const QUICK_RUNS = 1;
// Bound on a main child's life. The slowest contender measured (winston, large corpus, 2-core VM)
// needs ~15 µs per event end to end; 200 µs per event, with a one-minute floor for start-up and
// the line count, leaves over 10x headroom and so only trips on a hang.
const CHILD_TIMEOUT_MS_PER_EVENT = 0.2;
const CHILD_TIMEOUT_FLOOR_MS = 60_000;

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const RINGLOG_BUILD = here('../src/index.js');
// Results live next to the sources, not in dist/, so a rebuild does not wipe them.
const RESULTS_DIR = here('../../bench/results/');
// The package root, so the printed command reads the same whatever directory it was run from.
const ROOT = here('../../');

function readOptions() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      events: { type: 'string' },
      runs: { type: 'string' },
      'paced-seconds': { type: 'string' },
      'overload-seconds': { type: 'string' },
      corpus: { type: 'string', default: 'large' },
    },
    strict: true,
  });
  const corpus = values.corpus;
  if (corpus !== 'large' && corpus !== 'small' && corpus !== 'both') {
    throw new Error(`--corpus must be large, small or both, got ${JSON.stringify(corpus)}`);
  }
  const q = values.quick;
  const events = (c: CorpusName) => parsePositiveInt(values.events, '--events', (q ? QUICK_EVENTS : FULL_EVENTS)[c]);
  const pacedSeconds = (c: CorpusName) =>
    parsePositiveInt(values['paced-seconds'], '--paced-seconds', q ? QUICK_SECONDS : FULL_PACED_SECONDS[c]);
  return {
    quick: q,
    events,
    pacedSeconds,
    runs: parsePositiveInt(values.runs, '--runs', q ? QUICK_RUNS : FULL_RUNS),
    overloadSeconds: parsePositiveInt(values['overload-seconds'], '--overload-seconds', q ? QUICK_SECONDS : FULL_OVERLOAD_SECONDS),
    corpora: (corpus === 'both' ? ['large', 'small'] : [corpus]) as CorpusName[],
  };
}

type Options = ReturnType<typeof readOptions>;

/** A fresh directory for one child, removed afterwards: a large-corpus run leaves ~330 MB behind. */
async function inTempDir<T>(name: string, f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), `ringlog-bench-${name}-`));
  try {
    return await f(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function mainChild(name: ContenderName, opts: Options, corpus: CorpusName): Promise<ContenderResult> {
  return inTempDir(name, (dir) => {
    const events = opts.events(corpus);
    const paced = opts.pacedSeconds(corpus);
    // The paced phase takes its wall-clock length whatever the logger, so it is added on top.
    const timeout = Math.max(CHILD_TIMEOUT_FLOOR_MS, events * CHILD_TIMEOUT_MS_PER_EVENT) + paced * 1000;
    const args = ['--events', String(events), '--paced-seconds', String(paced), '--corpus', corpus, '--dir', dir];
    return runChild<ContenderResult>(here(`./contenders/${name}.js`), args, timeout);
  });
}

function overloadChild(name: ContenderName, opts: Options, corpus: CorpusName): Promise<OverloadResult> {
  return inTempDir(name, (dir) => {
    const args = ['--phase', 'overload', '--overload-seconds', String(opts.overloadSeconds), '--corpus', corpus, '--dir', dir];
    // --expose-gc: the child collects before taking its baseline (overload.ts).
    return runChild<OverloadResult>(here(`./contenders/${name}.js`), args, CHILD_TIMEOUT_FLOOR_MS + opts.overloadSeconds * 1000, ['--expose-gc']);
  });
}

function exitChild(name: ContenderName, corpus: CorpusName): Promise<ExitResult> {
  return inTempDir(name, async (dir) => {
    const exitMs = await runExitChild(here(`./contenders/${name}.js`), ['--phase', 'exit', '--corpus', corpus, '--dir', dir], CHILD_TIMEOUT_FLOOR_MS);
    const { lines } = await tallyDir(dir);
    return { exitMs, exitEvents: EXIT_EVENTS, exitLinesOnDisk: lines, exitFractionOnDisk: lines / EXIT_EVENTS };
  });
}

/** Runs one phase, logging it; a failure is recorded and yields null instead of stopping the run. */
async function attempt<T>(report: ContenderReport, run: number, phase: string, label: string, f: () => Promise<T>, show: (r: T) => string): Promise<T | null> {
  process.stderr.write(`${label} ${phase} … `);
  try {
    const r = await f();
    process.stderr.write(`${show(r)}\n`);
    return r;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const stderrTail = err instanceof ChildFailure ? err.stderrTail : '';
    report.failures.push({ run, phase, message, stderrTail });
    process.stderr.write(`FAILED: ${message}\n${stderrTail}\n`);
    return null;
  }
}

async function benchCorpus(corpus: CorpusName, opts: Options, contenders: readonly ContenderName[], extraPhases: boolean): Promise<Reports> {
  const reports: Reports = new Map(contenders.map((n) => [n, { runs: [], failures: [], summary: {} }]));
  for (let run = 1; run <= opts.runs; run++) {
    // Rotate who goes first: the kernel may still be writing back the previous contender's dirty
    // pages, and that tax should not always fall on the same contender.
    const order = contenders.map((_, i) => contenders[(i + run - 1) % contenders.length]!);
    for (const name of order) {
      const report = reports.get(name)!;
      const label = `[${corpus}] run ${run}/${opts.runs} ${name}`;
      const main = await attempt(report, run, 'main', label, () => mainChild(name, opts, corpus), (r) =>
        `caller ${r.callerNsPerEvent.toFixed(0)} ns/event (call p99 ${r.callerCallP99Ns.toFixed(0)}), ` +
        `loop p99 ${r.eventLoopDelayP99Ms.toFixed(2)} ms, visible p99 ${r.visibilityP99Ms?.toFixed(2) ?? '—'} ms, ` +
        `${r.eventsPerSec.toFixed(0)} events/s`);
      if (!main) continue;
      const record: RunRecord = { ...main };
      if (extraPhases && !MAIN_ONLY.includes(name)) {
        const o = await attempt(report, run, 'overload', label, () => overloadChild(name, opts, corpus), (r) =>
          `+${(r.overloadPeakRssAboveBaselineBytes / 1e6).toFixed(0)} MB RSS${r.overloadSecondHalfGrowthBytes === null ? '' : ` (2nd half +${(r.overloadSecondHalfGrowthBytes / 1e6).toFixed(0)} MB)`}${r.overloadCapped ? `, capped at ${r.overloadSeconds.toFixed(1)} s` : ''}`);
        const e = await attempt(report, run, 'exit', label, () => exitChild(name, corpus), (r) =>
          `${r.exitMs.toFixed(0)} ms, ${r.exitLinesOnDisk.toLocaleString('en-US')}/${r.exitEvents.toLocaleString('en-US')} on disk`);
        Object.assign(record, o ?? {}, e ?? {});
      }
      report.runs.push(record);
    }
  }
  for (const report of reports.values()) {
    for (const m of METRICS) report.summary[m] = spread(report.runs.map((r) => r[m] ?? null));
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
  const contenders = CONTENDERS.filter((n) => !n.includes('ringlog') || ringlogReady);
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
  const paced = (corpus: CorpusName) => ({
    seconds: opts.pacedSeconds(corpus),
    eventsPerSec: PACED_EVENTS_PER_SEC,
    burst: PACED_BURST,
    periodMs: PACED_PERIOD_MS,
    loopDelayResolutionMs: LOOP_DELAY_RESOLUTION_MS,
    sideTimerMs: SIDE_TIMER_MS,
  });
  const started = performance.now();
  let anyFailure = false;

  for (const [i, corpus] of opts.corpora.entries()) {
    // Overload and exit run on the first corpus only (the large one for --corpus both): they are
    // about bytes held and bytes lost, which the large corpus shows best, and running them twice
    // would push `npm run bench` past its 15-minute budget.
    const extraPhases = i === 0;
    const events = opts.events(corpus);
    // Other work on the machine skews every figure; the load averages put a number on it.
    const loadAvgBefore = loadavg();
    const reports = await benchCorpus(corpus, opts, contenders, extraPhases);
    const loadAvgAfter = loadavg();
    const verdicts = targets(reports, extraPhases);
    anyFailure ||= [...reports.values()].some((r) => r.failures.length > 0);

    const title = `### ${corpus} corpus: ${opts.runs} run${opts.runs === 1 ? '' : 's'}, median (min–max)`;
    const notes = [
      ...(ringlogReady ? [] : ['ringlog was not measured: its build output is missing.', '']),
      `${machine.cpu}, ${machine.cores} cores, Node ${machine.node}, ${machine.platform}. From the package root:`,
      '',
      '```sh',
      'npx tsc -p tsconfig.json',
      command,
      '```',
    ].join('\n');
    const sections = [
      title,
      method({ events, pacedSeconds: opts.pacedSeconds(corpus), overloadSeconds: extraPhases ? opts.overloadSeconds : null }),
      '#### Paced phase (20,000 events/s)',
      renderPaced(reports, opts.runs),
      '#### Saturated phase',
      renderSaturated(reports, opts.runs),
      ...(extraPhases
        ? ['#### Overload and process.exit()', renderOverloadExit(reports, opts.runs, (n) => !MAIN_ONLY.includes(n as ContenderName))]
        : []),
      legend(),
      '#### ringlog against each contender',
      renderVersus(reports),
      '#### pino through ringlog (`ringlog/pino`) against pino\'s own ways to a file',
      renderVersus(reports, 'pino-ringlog', ['pino-destination', 'pino-transport']),
      '#### Targets',
      renderTargets(verdicts),
      loopLatenessNote(reports),
      notes,
    ];
    // One block, ready to paste into a README as it stands.
    const markdown = sections.filter((x) => x !== '').join('\n\n');
    process.stdout.write(`\n${markdown}\n\n`);

    await mkdir(RESULTS_DIR, { recursive: true });
    // A --quick smoke test must not overwrite the full run's figures (the README's and the
    // charts' source, which read pipeline-<corpus>.json only).
    const out = join(RESULTS_DIR, `${opts.quick ? 'quick-' : ''}pipeline-${corpus}.json`);
    const record = {
      command,
      argv: process.argv,
      cwd: process.cwd(),
      date: new Date().toISOString(),
      ...machine,
      corpus,
      events,
      runs: opts.runs,
      paced: paced(corpus),
      overload: extraPhases ? { seconds: opts.overloadSeconds } : null,
      exit: extraPhases ? { events: EXIT_EVENTS } : null,
      loadAvgBefore,
      loadAvgAfter,
      skipped: ringlogReady ? [] : CONTENDERS.filter((n) => n.includes('ringlog')),
      contenders: Object.fromEntries(reports),
      targets: verdicts,
      markdown,
    };
    await writeFile(out, JSON.stringify(record, null, 2) + '\n');
    process.stdout.write(`saved ${relative(process.cwd(), out)}\n`);
  }
  // The charts show the full run's figures (a --quick run writes quick-*.json, which they ignore).
  if (!opts.quick) {
    for (const file of renderCharts(RESULTS_DIR, here('../../bench/charts/'))) {
      process.stdout.write(`chart ${relative(process.cwd(), file)}\n`);
    }
  }
  process.stderr.write(`total ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  if (anyFailure) process.exitCode = 1;
}

await main();
