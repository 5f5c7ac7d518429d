// `npm run demo -- [--events N] [--out DIR] [--rotate-bytes B] [--rate R]`
//
// Plays a busy agent loop against JsonlEventSink and shows what the caller pays for it: the cost of
// each handleEvent call, how long the event loop was held up, the end-to-end throughput, and then
// reads every file back to prove that nothing was lost, reordered or torn.

import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { JsonlEventSink } from '../src/index.js';
import type { SinkStats } from '../src/index.js';
import { makeCorpus, type AgentEventLike } from './corpus.js';
import { parsePositiveInt } from './args.js';

/** A million events is enough to fill several 100 MiB segments of the large corpus (~1.3 KB a line). */
const DEFAULT_EVENTS = 1_000_000;
/** The sink's own default, so the demo shows the behaviour users get out of the box. */
const DEFAULT_ROTATE_BYTES = 100 * 1024 * 1024;
const DEFAULT_OUT = './ringlog-demo';
/** 20,000 distinct events: more than the ring holds at once, so the sink cannot coast on a few
 *  hot objects, and few enough to generate in well under a second. */
const POOL_SIZE = 20_000;
/** Seed shared with the benchmarks, so the demo writes the same events they measure. */
const CORPUS_SEED = 42;
/** An agent emits in bursts between awaits; 1,000 events keeps each burst around a millisecond,
 *  close to a real loop's synchronous stretches, and gives the event loop a turn after each. */
const BURST = 1_000;
/** When paced by --rate, at least 100 bursts a second keeps the emission smooth rather than lumpy. */
const PACED_BURSTS_PER_SEC = 100;
/** Redraw the TTY bar at most every 100 ms: smooth to the eye, negligible next to the work measured. */
const BAR_REDRAW_MS = 100;
const BAR_WIDTH = 30;
/** Without a TTY a log gets one line per 10%: enough to see progress, few enough not to flood it. */
const PLAIN_STEP_PERCENT = 10;
const BASE_NAME = 'event_log.jsonl';
const SEGMENT_RE = /^event_log-(\d{6,})\.jsonl$/;
const SUMMARY_NAME = 'demo-summary.json';

interface Config {
  events: number;
  out: string;
  rotateBytes: number;
  /** Events per second to pace at; null runs flat out. */
  rate: number | null;
}

function parseConfig(argv: readonly string[]): Config {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      events: { type: 'string' },
      out: { type: 'string' },
      'rotate-bytes': { type: 'string' },
      rate: { type: 'string' },
    },
    strict: true,
  });
  return {
    events: parsePositiveInt(values.events, '--events', DEFAULT_EVENTS),
    out: path.resolve(values.out ?? DEFAULT_OUT),
    rotateBytes: parsePositiveInt(values['rotate-bytes'], '--rotate-bytes', DEFAULT_ROTATE_BYTES),
    rate: values.rate === undefined ? null : parsePositiveInt(values.rate, '--rate', 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Output directory

/** Files of the set in order: the base file, then the numbered segments by number. */
function listSetFiles(dir: string): string[] {
  const numbered: { n: number; name: string }[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = SEGMENT_RE.exec(name);
    if (m) numbered.push({ n: Number(m[1]), name });
  }
  numbered.sort((a, b) => a.n - b.n);
  const base = fs.existsSync(path.join(dir, BASE_NAME)) ? [BASE_NAME] : [];
  return [...base, ...numbered.map((s) => s.name)];
}

/** Removes only what an earlier demo wrote: --out may point at a directory holding other files. */
function prepareOutDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true });
  for (const name of [...listSetFiles(dir), SUMMARY_NAME]) fs.rmSync(path.join(dir, name), { force: true });
}

// ---------------------------------------------------------------------------------------------
// Progress on stderr

interface Progress {
  update(done: number): void;
  finish(): void;
}

function progress(label: string, total: number): Progress {
  return process.stderr.isTTY ? ttyBar(label, total) : plainSteps(label, total);
}

function ttyBar(label: string, total: number): Progress {
  let lastDraw = 0;
  const draw = (done: number) => {
    const fraction = total === 0 ? 1 : done / total;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = '█'.repeat(filled) + '░'.repeat(BAR_WIDTH - filled);
    process.stderr.write(`\r${label} ${bar} ${(fraction * 100).toFixed(0).padStart(3)}%  ${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')}`);
  };
  return {
    update(done) {
      const now = Date.now();
      if (now - lastDraw < BAR_REDRAW_MS) return;
      lastDraw = now;
      draw(done);
    },
    finish() {
      draw(total);
      process.stderr.write('\n');
    },
  };
}

function plainSteps(label: string, total: number): Progress {
  let nextStep = PLAIN_STEP_PERCENT;
  const report = (done: number) => {
    const percent = total === 0 ? 100 : Math.floor((done / total) * 100);
    while (percent >= nextStep && nextStep <= 100) {
      process.stderr.write(`${label} ${nextStep}%\n`);
      nextStep += PLAIN_STEP_PERCENT;
    }
  };
  return { update: report, finish: () => report(total) };
}

// ---------------------------------------------------------------------------------------------
// The simulated agent loop

interface EmitResult {
  /** ns of each handleEvent call, in call order. */
  costs: Float64Array;
  /** ns spent in the synchronous bursts (calls, clock reads, pool lookups), awaits excluded. */
  burstNs: number;
  startNs: bigint;
}

/** Burst size and the wall time one burst should take when --rate paces the loop. */
function pacing(rate: number | null): { burst: number; burstNs: number } {
  if (rate === null) return { burst: BURST, burstNs: 0 };
  const burst = Math.max(1, Math.min(BURST, Math.floor(rate / PACED_BURSTS_PER_SEC)));
  return { burst, burstNs: (burst / rate) * 1e9 };
}

async function emit(sink: JsonlEventSink, pool: readonly AgentEventLike[], cfg: Config, bar: Progress): Promise<EmitResult> {
  // Preallocated so recording a sample never allocates or grows an array inside the timed loop.
  const costs = new Float64Array(cfg.events);
  const { burst, burstNs: pacedNs } = pacing(cfg.rate);
  let burstNs = 0;
  const startNs = process.hrtime.bigint();
  for (let done = 0; done < cfg.events; ) {
    const end = Math.min(cfg.events, done + burst);
    const b0 = process.hrtime.bigint();
    for (let i = done; i < end; i++) {
      const event = pool[i % pool.length]!;
      const t0 = process.hrtime.bigint();
      sink.handleEvent(event);
      costs[i] = Number(process.hrtime.bigint() - t0);
    }
    burstNs += Number(process.hrtime.bigint() - b0);
    done = end;
    bar.update(done);
    await yieldOrPace(startNs, done / burst, pacedNs);
  }
  bar.finish();
  return { costs, burstNs, startNs };
}

/** Always gives the event loop a turn; under --rate, also waits until the schedule catches up. */
async function yieldOrPace(startNs: bigint, burstsDone: number, pacedNs: number): Promise<void> {
  if (pacedNs > 0) {
    const aheadMs = (burstsDone * pacedNs - Number(process.hrtime.bigint() - startNs)) / 1e6;
    if (aheadMs >= 1) {
      await sleep(aheadMs);
      return;
    }
  }
  await nextTurn();
}

// ---------------------------------------------------------------------------------------------
// Measurements

interface CallerCost {
  medianNs: number;
  p99Ns: number;
  p999Ns: number;
  /** Burst time / N: includes the clock reads and pool lookups, so it is an upper bound. */
  meanNs: number;
  /** Median cost of an empty pair of clock reads: the floor under every per-call figure. */
  clockOverheadNs: number;
}

/** Nearest-rank percentile of an ascending array. */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

function clockOverheadNs(): number {
  // 10,000 samples: enough for a stable median, done in about a millisecond.
  const samples = new Float64Array(10_000);
  for (let i = 0; i < samples.length; i++) {
    const t0 = process.hrtime.bigint();
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  return percentile(samples.sort(), 50);
}

function callerCost(run: EmitResult): CallerCost {
  // Typed-array sort is numeric, and sorting a copy keeps the call-order record intact.
  const sorted = run.costs.slice().sort();
  return {
    medianNs: percentile(sorted, 50),
    p99Ns: percentile(sorted, 99),
    p999Ns: percentile(sorted, 99.9),
    meanNs: run.burstNs / run.costs.length,
    clockOverheadNs: clockOverheadNs(),
  };
}

interface LoopDelay {
  p99Ms: number;
  maxMs: number;
}

function loopDelay(h: IntervalHistogram): LoopDelay {
  // The histogram records nanoseconds.
  return { p99Ms: h.percentile(99) / 1e6, maxMs: h.max / 1e6 };
}

interface Throughput {
  seconds: number;
  eventsPerSec: number;
  /** Decimal megabytes (10^6 bytes) per second, as disk and network rates are usually quoted. */
  mbPerSec: number;
  bytes: number;
}

function throughput(events: number, bytes: number, startNs: bigint, endNs: bigint): Throughput {
  const seconds = Number(endNs - startNs) / 1e9;
  return { seconds, eventsPerSec: events / seconds, mbPerSec: bytes / 1e6 / seconds, bytes };
}

// ---------------------------------------------------------------------------------------------
// Verification

interface FileInfo {
  name: string;
  bytes: number;
  lines: number;
}

interface Verification {
  ok: boolean;
  /** Event lines read (rejection markers included: they stand for an accepted event). */
  events: number;
  /** Marker lines standing for events lost before the file. */
  dropMarkers: number;
  files: FileInfo[];
  /** The first problems found; the rest are counted but not listed. */
  problems: string[];
  problemCount: number;
}

/** Ten problems are enough to diagnose a failure without burying the summary under a million. */
const MAX_PROBLEMS_LISTED = 10;

class Checker {
  nextIndex = 0;
  lastTs = -Infinity;
  events = 0;
  dropMarkers = 0;
  problems: string[] = [];
  problemCount = 0;

  problem(where: string, what: string): void {
    this.problemCount++;
    if (this.problems.length < MAX_PROBLEMS_LISTED) this.problems.push(`${where}: ${what}`);
  }

  line(text: string, where: string): void {
    let rec: { index?: unknown; emitted_at_ms?: unknown; type?: unknown; count?: unknown };
    try {
      rec = JSON.parse(text);
    } catch {
      this.problem(where, 'not JSON');
      return;
    }
    if (!Number.isSafeInteger(rec.index)) {
      this.problem(where, 'no integer "index"');
      return;
    }
    if (rec.index !== this.nextIndex) this.problem(where, `index ${String(rec.index)}, expected ${this.nextIndex}`);
    this.checkTime(rec.emitted_at_ms, where);
    // A drop marker covers `count` indexes from its own, so the next line continues after them.
    const isDrop = rec.type === 'events_dropped' && Number.isSafeInteger(rec.count);
    if (isDrop) this.dropMarkers++;
    else this.events++;
    this.nextIndex = (rec.index as number) + (isDrop ? (rec.count as number) : 1);
  }

  private checkTime(ts: unknown, where: string): void {
    if (typeof ts !== 'number') {
      this.problem(where, 'no numeric "emitted_at_ms"');
      return;
    }
    if (ts < this.lastTs) this.problem(where, `emitted_at_ms ${ts} before the previous ${this.lastTs}`);
    this.lastTs = ts;
  }
}

async function readFile(dir: string, name: string, check: Checker, bar: Progress): Promise<FileInfo> {
  const full = path.join(dir, name);
  const lines = readline.createInterface({ input: fs.createReadStream(full), crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    n++;
    check.line(text, `${name}:${n}`);
    bar.update(check.nextIndex);
  }
  return { name, bytes: fs.statSync(full).size, lines: n };
}

function checkNumbering(names: readonly string[], check: Checker): void {
  if (names[0] !== BASE_NAME) check.problem(BASE_NAME, 'missing');
  names.forEach((name, i) => {
    const m = SEGMENT_RE.exec(name);
    if (m && Number(m[1]) !== (names[0] === BASE_NAME ? i : i + 1)) check.problem(name, 'segment numbering has a gap');
  });
}

async function verify(dir: string, expected: number): Promise<Verification> {
  const names = listSetFiles(dir);
  const check = new Checker();
  checkNumbering(names, check);
  const bar = progress('verifying', expected);
  const files: FileInfo[] = [];
  for (const name of names) files.push(await readFile(dir, name, check, bar));
  bar.finish();
  if (check.events !== expected) check.problem('set', `${check.events} events read, expected ${expected}`);
  if (check.nextIndex !== expected) check.problem('set', `indexes end at ${check.nextIndex - 1}, expected ${expected - 1}`);
  return {
    ok: check.problemCount === 0,
    events: check.events,
    dropMarkers: check.dropMarkers,
    files,
    problems: check.problems,
    problemCount: check.problemCount,
  };
}

// ---------------------------------------------------------------------------------------------
// Summary

interface Summary {
  config: Config & { poolSize: number; burst: number };
  node: string;
  callerCost: CallerCost;
  loopDelay: LoopDelay;
  throughput: Throughput;
  stats: SinkStats;
  /** Messages of errors flush() or close() raised; a healthy run has none. */
  sinkErrors: string[];
  verification: Verification;
}

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const fixed = (n: number, digits: number) => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function bytesText(n: number): string {
  const mib = n / (1024 * 1024);
  return mib >= 1 ? `${int(n)} B (${fixed(mib, 1)} MiB)` : `${int(n)} B`;
}

function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => (k === '' ? '' : `  ${k.padEnd(width)}  ${v}`)).join('\n');
}

function render(s: Summary): string {
  const { callerCost: c, loopDelay: d, throughput: t, stats, verification: v } = s;
  const rows: [string, string][] = [
    ['events', int(s.config.events)],
    ['rotate bytes', bytesText(s.config.rotateBytes)],
    ['pacing', s.config.rate === null ? `flat out, bursts of ${int(s.config.burst)}` : `${int(s.config.rate)} events/s, bursts of ${int(s.config.burst)}`],
    ['', ''],
    ['caller cost median', `${int(c.medianNs)} ns`],
    ['caller cost p99', `${int(c.p99Ns)} ns`],
    ['caller cost p99.9', `${int(c.p999Ns)} ns`],
    ['caller cost mean', `${int(c.meanNs)} ns  (burst time / events)`],
    ['clock read overhead', `${int(c.clockOverheadNs)} ns  (included in the figures above)`],
    ['event-loop delay p99', `${fixed(d.p99Ms, 2)} ms`],
    ['event-loop delay max', `${fixed(d.maxMs, 2)} ms`],
    ['end to end', `${fixed(t.seconds, 2)} s, ${int(t.eventsPerSec)} events/s, ${fixed(t.mbPerSec, 1)} MB/s`],
    ['', ''],
    ['stats().bytes', bytesText(stats.bytes)],
    ['stats().rotations', int(stats.rotations)],
    ['stats().dropped', int(stats.dropped)],
    ['stats().rejected', int(stats.rejected)],
    ['ring high water', `${bytesText(stats.ringHighWater)} of ${bytesText(stats.ringBytes)}`],
    ['', ''],
    ...v.files.map((f): [string, string] => [f.name, `${bytesText(f.bytes)}, ${int(f.lines)} lines`]),
    ['', ''],
    ['verification', verdict(s)],
  ];
  const extra = [...s.sinkErrors.map((e) => `  sink error: ${e}`), ...v.problems.map((p) => `  problem: ${p}`)];
  if (v.problemCount > v.problems.length) extra.push(`  … and ${int(v.problemCount - v.problems.length)} more problems`);
  return ['', 'ringlog demo', table(rows), ...extra, ''].join('\n');
}

function verdict(s: Summary): string {
  const v = s.verification;
  const fileWord = v.files.length === 1 ? 'file' : 'files';
  if (v.ok) return `PASS: ${int(v.events)} events in ${v.files.length} ${fileWord}, indexes 0..${int(v.events - 1)} contiguous, all JSON, timestamps non-decreasing`;
  return `FAIL: ${int(v.problemCount)} problem(s), ${int(v.events)} events read, ${int(v.dropMarkers)} drop marker(s)`;
}

// ---------------------------------------------------------------------------------------------

/** flush() and close() reject once any event was lost; the demo reports that rather than dying. */
async function settle(op: () => Promise<void>, errors: string[]): Promise<void> {
  try {
    await op();
  } catch (err) {
    errors.push((err as Error).message);
  }
}

async function main(): Promise<void> {
  const cfg = parseConfig(process.argv.slice(2));
  prepareOutDir(cfg.out);
  const pool = makeCorpus(POOL_SIZE, CORPUS_SEED);
  const sink = JsonlEventSink.open(path.join(cfg.out, BASE_NAME), { rotateBytes: cfg.rotateBytes });
  const sinkErrors: string[] = [];

  // 1 ms resolution: the finest the monitor offers, as the delays worth seeing are a few ms at most.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const run = await emit(sink, pool, cfg, progress('emitting', cfg.events));
  await settle(() => sink.flush(), sinkErrors);
  const endNs = process.hrtime.bigint();
  delay.disable();

  const stats = sink.stats();
  await settle(() => sink.close(), sinkErrors);
  const verification = await verify(cfg.out, cfg.events);
  const summary: Summary = {
    config: { ...cfg, poolSize: POOL_SIZE, burst: pacing(cfg.rate).burst },
    node: process.version,
    callerCost: callerCost(run),
    loopDelay: loopDelay(delay),
    throughput: throughput(cfg.events, stats.bytes, run.startNs, endNs),
    stats,
    sinkErrors,
    verification,
  };
  process.stdout.write(render(summary) + '\n');
  fs.writeFileSync(path.join(cfg.out, SUMMARY_NAME), JSON.stringify(summary, null, 2) + '\n');
  process.stdout.write(`  summary written to ${path.join(cfg.out, SUMMARY_NAME)}\n`);
  if (!verification.ok || sinkErrors.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
