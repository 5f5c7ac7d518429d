// Helpers shared by the pipeline runner and the contender scripts it spawns.

import { execFileSync, spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export type { CorpusName } from './corpora.js';
import { CORPORA, isCorpusName, type CorpusName } from './corpora.js';

/** The one JSON line a contender prints on stdout after its main (paced + saturated) phase. */
export interface ContenderResult {
  name: string;
  /** Events of the saturated phase; the paced phase's are counted in pacedEvents. */
  events: number;
  /** Paced phase: median over bursts of burst time ÷ burst size, while the logger keeps up. */
  callerNsPerEvent: number;
  /** Paced phase: 99th percentile of the same per-burst samples. */
  callerP99NsPerEvent: number;
  /** Paced phase: percentiles of single calls, timed one by one in every other burst. */
  callerCallP50Ns: number;
  callerCallP99Ns: number;
  callerCallP999Ns: number;
  /** How many single calls were timed, and the clock read subtracted from each. */
  callerCallSamples: number;
  clockReadNs: number;
  /** Paced phase: monitorEventLoopDelay's p99 and max, in milliseconds. */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
  /** Paced phase: from handleEvent returning to the line being readable in the file (null: no file). */
  visibilityP50Ms: number | null;
  visibilityP99Ms: number | null;
  visibilityMaxMs: number | null;
  visibilityProbes: number | null;
  /** Probes whose line the reader never saw; anything but 0 makes the percentiles suspect. */
  visibilityMissing: number | null;
  pacedEvents: number;
  /** The rate the paced schedule actually achieved, to show the drift compensation held. */
  pacedEventsPerSec: number;
  /** Saturated phase: tight-loop time ÷ events, back-pressure included. */
  saturatedNsPerEvent: number;
  /** Saturated phase from its first call until every line is in the file and the logger is shut. */
  e2eSeconds: number;
  eventsPerSec: number;
  /** null when the contender writes no file (the stringify baseline). */
  mbPerSec: number | null;
  /** Bytes the saturated phase added to the directory (the paced phase's are left out). */
  bytes: number | null;
  /** Both phases: the child's whole life. */
  peakRssBytes: number;
  /** Every line in the directory: paced + saturated. */
  linesInFile: number | null;
  /** Logger-specific counters (ringlog's stats()) kept for diagnosis; absent for most contenders. */
  detail?: Record<string, unknown>;
}

/** What an overload child (`--phase overload`) prints. */
export interface OverloadResult {
  /** RSS once the logger is open and the pool built, after a full GC: what the growth is measured from. */
  overloadBaselineRssBytes: number;
  /** Highest RSS seen while the producer ran, minus the baseline. */
  overloadPeakRssAboveBaselineBytes: number;
  /**
   * Peak at the end minus peak at half time: ~0 once a bounded logger's buffers are full. null
   * when the phase was capped before half-time.
   */
  overloadSecondHalfGrowthBytes: number | null;
  overloadSeconds: number;
  overloadEvents: number;
  /** 1 when the phase was cut short because the growth passed the safety cap, else 0. */
  overloadCapped: number;
  /** Growth per second of overload: near 0 for a bounded logger once its buffers are full. */
  overloadGrowthMbPerSec: number;
  /** The logger's counters after the overload (ringlog's stats()), where it has any. */
  overloadDetail?: Record<string, unknown>;
}

/** What the parent measures around an exit child (`--phase exit`). */
export interface ExitResult {
  /** From the child's process.exit() call to the parent seeing it end. */
  exitMs: number;
  exitEvents: number;
  exitLinesOnDisk: number;
  /** exitLinesOnDisk ÷ exitEvents. */
  exitFractionOnDisk: number;
}

/** One run of one contender: the main phase, plus the overload and exit phases where they ran. */
export type RunRecord = ContenderResult & Partial<OverloadResult> & Partial<ExitResult>;

/** The figures the runner summarises; each is numeric or null in every run record. */
export const METRICS = [
  'callerNsPerEvent',
  'callerP99NsPerEvent',
  'callerCallP50Ns',
  'callerCallP99Ns',
  'callerCallP999Ns',
  'eventLoopDelayP99Ms',
  'eventLoopDelayMaxMs',
  'visibilityP50Ms',
  'visibilityP99Ms',
  'visibilityMaxMs',
  'visibilityMissing',
  'pacedEventsPerSec',
  'saturatedNsPerEvent',
  'e2eSeconds',
  'eventsPerSec',
  'mbPerSec',
  'bytes',
  'peakRssBytes',
  'linesInFile',
  'overloadPeakRssAboveBaselineBytes',
  'overloadSecondHalfGrowthBytes',
  'overloadGrowthMbPerSec',
  'overloadSeconds',
  'overloadEvents',
  'overloadCapped',
  'exitMs',
  'exitLinesOnDisk',
  'exitFractionOnDisk',
] as const;
export type Metric = (typeof METRICS)[number];

export { parsePositiveInt } from '../demo/args.js';

export function parseCorpus(raw: string | undefined, fallback: CorpusName): CorpusName {
  if (raw === undefined) return fallback;
  if (isCorpusName(raw)) return raw;
  throw new Error(`--corpus must be one of ${CORPORA.join(', ')}, got ${JSON.stringify(raw)}`);
}

/** A comma-separated --corpus list; every corpus when absent. */
export function parseCorpusList(raw: string | undefined): CorpusName[] {
  if (raw === undefined) return [...CORPORA];
  return raw.split(',').map((c) => {
    if (!isCorpusName(c)) throw new Error(`--corpus: unknown corpus ${JSON.stringify(c)} (known: ${CORPORA.join(', ')})`);
    return c;
  });
}

/** A --label naming a results file (`<bench>-<label>.json`): what was compared, so that one
 *  comparison's results do not overwrite another's. */
export function parseLabel(raw: string | undefined): string | undefined {
  if (raw !== undefined && !/^[a-z0-9-]+$/.test(raw)) throw new Error(`--label must be lowercase letters, digits and dashes, got ${JSON.stringify(raw)}`);
  return raw;
}

/** The commit a checkout is at, with `-dirty` when it has uncommitted changes (the change being
 *  measured says so); 'unknown' outside git. */
export function commitOf(dir: string): string {
  try {
    return execFileSync('git', ['-C', dir, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

export interface Spread {
  median: number;
  min: number;
  max: number;
}

/** Median of a non-empty list; even lengths average the middle pair. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('median of an empty list');
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Nearest-rank percentile (p in 0..100] of a non-empty list: always one of the observed values,
 * never an interpolation between two, so a p99 is a sample that actually happened.
 */
export function percentile(xs: ArrayLike<number>, p: number): number {
  if (xs.length === 0) throw new Error('percentile of an empty list');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const s = Array.from(xs).sort((a, b) => a - b);
  return s[Math.ceil((p / 100) * s.length) - 1]!;
}

/** null when no run produced the figure (a failed contender, or stringify's file size). */
export function spread(xs: readonly (number | null)[]): Spread | null {
  const present = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  if (present.length === 0) return null;
  return { median: median(present), min: Math.min(...present), max: Math.max(...present) };
}

async function countNewlines(path: string): Promise<number> {
  let n = 0;
  for await (const chunk of createReadStream(path)) {
    const buf = chunk as Buffer;
    for (let at = buf.indexOf(10); at !== -1; at = buf.indexOf(10, at + 1)) n++;
  }
  return n;
}

/** Lines and bytes across every file in the directory, since a logger may rotate into several. */
export async function tallyDir(dir: string): Promise<{ lines: number; bytes: number }> {
  let lines = 0;
  let bytes = 0;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(dir, entry.name);
    bytes += (await stat(path)).size;
    lines += await countNewlines(path);
  }
  return { lines, bytes };
}

export class ChildFailure extends Error {
  constructor(message: string, readonly exitCode: number | null, readonly stderrTail: string) {
    super(message);
  }
}

interface Spawned {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** 2,000 characters: enough for a stack trace, short enough to print inline. */
  stderrTail: string;
  stderr: string;
  killedByTimeout: boolean;
  /** performance.timeOrigin + performance.now() when the parent saw the child end. */
  endedAtMs: number;
}

function spawnNode(script: string, args: readonly string[], timeoutMs: number, nodeArgs: readonly string[]): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let endedAtMs = 0;
    let killedByTimeout = false;
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => {
      killedByTimeout = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    // 'exit' is the process ending; 'close' waits for its pipes as well, which a grandchild (a
    // worker's inherited descriptors) could hold open a little longer.
    child.on('exit', () => (endedAtMs = performance.timeOrigin + performance.now()));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, stderrTail: stderr.slice(-2000), killedByTimeout, endedAtMs });
    });
  });
}

/**
 * Runs `node [nodeArgs] <script> <args>` and parses the last stdout line as the child's result.
 * A child may end itself with SIGKILL once its line is out (the overload phase does, so that no
 * exit hook spends minutes flushing a backlog nobody will read); that counts as success.
 */
export async function runChild<T = ContenderResult>(
  script: string,
  args: readonly string[],
  timeoutMs: number,
  nodeArgs: readonly string[] = [],
): Promise<T> {
  const r = await spawnNode(script, args, timeoutMs, nodeArgs);
  const last = r.stdout.trimEnd().split('\n').pop() ?? '';
  const selfKilled = r.signal === 'SIGKILL' && !r.killedByTimeout;
  if (r.code !== 0 && !(selfKilled && last.startsWith('{'))) {
    const why = r.killedByTimeout ? `killed after ${timeoutMs} ms` : `exit ${r.code ?? r.signal}`;
    throw new ChildFailure(`${script}: ${why}`, r.code, r.stderrTail);
  }
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new ChildFailure(`${script}: stdout is not a JSON line: ${JSON.stringify(last.slice(0, 200))}`, r.code, r.stderrTail);
  }
}

/** The line an exit child writes to stderr just before process.exit(). */
export const EXIT_MARK = 'exit-at-ms ';

/**
 * Runs an exit child and returns how long it took to end after calling process.exit(): the child
 * stamps the call on stderr (synchronous for pipes on Linux, so the line is out before the exit
 * starts), the parent stamps the end. Both use performance.timeOrigin + performance.now(), which
 * are epoch-based in each process; their offset is the clocks' sampling error at start-up (µs).
 */
export async function runExitChild(script: string, args: readonly string[], timeoutMs: number): Promise<number> {
  const r = await spawnNode(script, args, timeoutMs, []);
  const mark = r.stderr.split('\n').find((l) => l.startsWith(EXIT_MARK));
  if (r.killedByTimeout || mark === undefined) {
    const why = r.killedByTimeout ? `killed after ${timeoutMs} ms` : `no ${JSON.stringify(EXIT_MARK.trim())} line (exit ${r.code ?? r.signal})`;
    throw new ChildFailure(`${script} --phase exit: ${why}`, r.code, r.stderrTail);
  }
  return r.endedAtMs - Number(mark.slice(EXIT_MARK.length));
}

/** GitHub-flavoured Markdown table; `right` marks numeric columns so they line up when rendered. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length), 3));
  const cell = (s: string, c: number) => (right[c] ? s.padStart(widths[c]!) : s.padEnd(widths[c]!));
  const line = (cells: readonly string[]) => `| ${header.map((_, c) => cell(cells[c] ?? '', c)).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (right[c] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
