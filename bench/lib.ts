// Helpers shared by the pipeline runner and the contender scripts it spawns.

import { spawn } from 'node:child_process';

export type CorpusName = 'large' | 'small';

/** The one JSON line every contender prints on stdout. */
export interface ContenderResult {
  name: string;
  /** Events of the saturated phase; the paced phase's are counted in pacedEvents. */
  events: number;
  /** Paced phase: median over bursts of burst time ÷ burst size, while the logger keeps up. */
  callerNsPerEvent: number;
  /** Paced phase: 99th percentile of the same per-burst samples. */
  callerP99NsPerEvent: number;
  /** Paced phase: monitorEventLoopDelay's p99 and max, in milliseconds. */
  eventLoopDelayP99Ms: number;
  eventLoopDelayMaxMs: number;
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

/** The figures the runner summarises; a subset of ContenderResult that is always numeric or null. */
export const METRICS = [
  'callerNsPerEvent',
  'callerP99NsPerEvent',
  'eventLoopDelayP99Ms',
  'eventLoopDelayMaxMs',
  'pacedEventsPerSec',
  'saturatedNsPerEvent',
  'e2eSeconds',
  'eventsPerSec',
  'mbPerSec',
  'bytes',
  'peakRssBytes',
  'linesInFile',
] as const;
export type Metric = (typeof METRICS)[number];

export function parsePositiveInt(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback;
  // Accept 1_000_000 and 1e6 as well as 1000000: these are typed by hand on the command line.
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}

export function parseCorpus(raw: string | undefined, fallback: CorpusName): CorpusName {
  if (raw === undefined) return fallback;
  if (raw === 'large' || raw === 'small') return raw;
  throw new Error(`--corpus must be large or small, got ${JSON.stringify(raw)}`);
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

export class ChildFailure extends Error {
  constructor(message: string, readonly exitCode: number | null, readonly stderrTail: string) {
    super(message);
  }
}

/**
 * Runs `node <script> <args>` and parses the last stdout line as a ContenderResult.
 * stderr is kept (tail only) so a failure can be reported without flooding the terminal.
 */
export function runChild(script: string, args: readonly string[], timeoutMs: number): Promise<ContenderResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // 2,000 characters is enough for a stack trace and short enough to print inline.
      const tail = stderr.slice(-2000);
      if (code !== 0) {
        const why = signal === 'SIGKILL' ? `killed after ${timeoutMs} ms` : `exit ${code ?? signal}`;
        reject(new ChildFailure(`${script}: ${why}`, code, tail));
        return;
      }
      const last = stdout.trimEnd().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as ContenderResult);
      } catch {
        reject(new ChildFailure(`${script}: stdout is not a JSON line: ${JSON.stringify(last.slice(0, 200))}`, code, tail));
      }
    });
  });
}

/** GitHub-flavoured Markdown table; `right` marks numeric columns so they line up when rendered. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], right: readonly boolean[] = []): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length), 3));
  const cell = (s: string, c: number) => (right[c] ? s.padStart(widths[c]!) : s.padEnd(widths[c]!));
  const line = (cells: readonly string[]) => `| ${header.map((_, c) => cell(cells[c] ?? '', c)).join(' | ')} |`;
  const rule = `|${widths.map((w, c) => (right[c] ? '-'.repeat(w + 1) + ':' : '-'.repeat(w + 2))).join('|')}|`;
  return [line(header), rule, ...rows.map(line)].join('\n');
}
