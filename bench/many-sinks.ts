// Many sinks in one process, as an agent server opens one per session: what opening them costs the
// caller, how many threads and how much memory they add, how the event loop fares while they all
// log, and whether every file is complete. Each sink count runs in a process of its own.
//
//   npm run build && node dist/bench/many-sinks.js [--sinks 10,100,1000] [--events 100] [--label L]
//
// Results: bench/results/many-sinks-<label>.json (label: what was measured, e.g. the design).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JsonlEventSink } from '../src/index.js';
import { median, parsePositiveInt } from './lib.js';

const DEFAULT_SINKS = [10, 100, 1000];
/** Per sink, as in issue 12's figure. */
const DEFAULT_EVENTS = 100;
/** Events per sink per round; the loop turns between rounds, as sessions interleave. */
const ROUND = 10;
/** A child that takes longer than this (thread start-up of a thousand writers) is reported as such. */
const CHILD_TIMEOUT_MS = 300_000;

interface ChildResult {
  sinks: number;
  eventsPerSink: number;
  openMsMedian: number;
  openMsP99: number;
  openMsTotal: number;
  threadsBefore: number;
  threadsAfter: number;
  threadsAdded: number;
  rssBeforeMb: number;
  rssPeakMb: number;
  rssAddedMb: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
  logMs: number;
  closeMs: number;
  filesComplete: number;
}

function threads(): number {
  const m = /^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))]!;
}

async function child(n: number, events: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-bench-many-'));
  try {
    // Settle the baseline: the library loaded, one sink opened and closed (module-level state).
    const warm = JsonlEventSink.open(path.join(dir, 'warm.jsonl'));
    warm.handleEvent({ type: 'warm' });
    await warm.close();
    await new Promise((r) => setTimeout(r, 200));
    const threadsBefore = threads();
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const opens: number[] = [];
    const sinks: JsonlEventSink[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      sinks.push(JsonlEventSink.open(path.join(dir, `s${i}`, 'event_log.jsonl')));
      opens.push(performance.now() - t0);
    }
    const h = monitorEventLoopDelay({ resolution: 10 });
    h.enable();
    const t1 = performance.now();
    for (let round = 0; round < events / ROUND; round++) {
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < ROUND; k++) sinks[i]!.handleEvent({ type: 'message', session: i, n: round * ROUND + k, text: 'a line of an agent session' });
      }
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(sinks.map((s) => s.flush()));
    const logMs = performance.now() - t1;
    h.disable();
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
    const threadsAfter = threads();
    const t2 = performance.now();
    await Promise.all(sinks.map((s) => s.close()));
    const closeMs = performance.now() - t2;
    let complete = 0;
    for (let i = 0; i < n; i++) {
      const lines = fs.readFileSync(path.join(dir, `s${i}`, 'event_log.jsonl'), 'utf8').trim().split('\n');
      if (lines.length === events && lines.every((l, k) => (JSON.parse(l) as { index: number }).index === k)) complete++;
    }
    const result: ChildResult = {
      sinks: n,
      eventsPerSink: events,
      openMsMedian: median(opens),
      openMsP99: p99(opens),
      openMsTotal: opens.reduce((a, b) => a + b, 0),
      threadsBefore,
      threadsAfter,
      threadsAdded: threadsAfter - threadsBefore,
      rssBeforeMb: rssBefore / 2 ** 20,
      rssPeakMb: rssPeak / 2 ** 20,
      rssAddedMb: (rssPeak - rssBefore) / 2 ** 20,
      loopDelayP99Ms: h.percentile(99) / 1e6,
      loopDelayMaxMs: h.max / 1e6,
      logMs,
      closeMs,
      filesComplete: complete,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function parent(counts: number[], events: number, label: string): void {
  const self = fileURLToPath(import.meta.url);
  const runs: (ChildResult | { sinks: number; failed: string })[] = [];
  for (const n of counts) {
    const p = spawnSync(process.execPath, [self, '--child', String(n), '--events', String(events)], {
      encoding: 'utf8',
      timeout: CHILD_TIMEOUT_MS,
      maxBuffer: 1 << 20,
    });
    if (p.status !== 0) {
      const why = p.error ? String(p.error.message) : `exit ${p.status ?? p.signal}: ${p.stderr.slice(-500)}`;
      runs.push({ sinks: n, failed: why });
      console.error(`${n} sinks: failed (${why})`);
      continue;
    }
    const r = JSON.parse(p.stdout.trim()) as ChildResult;
    runs.push(r);
    console.error(
      `${n} sinks: open median ${r.openMsMedian.toFixed(3)} ms (p99 ${r.openMsP99.toFixed(2)}, total ${r.openMsTotal.toFixed(0)} ms), ` +
        `+${r.threadsAdded} threads, +${r.rssAddedMb.toFixed(0)} MB RSS, loop p99 ${r.loopDelayP99Ms.toFixed(1)} ms, ${r.filesComplete}/${n} files complete`,
    );
  }
  const out = {
    command: `node dist/bench/many-sinks.js --sinks ${counts.join(',')} --events ${events} --label ${label}`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    label,
    runs,
  };
  const outDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, `many-sinks-${label}.json`), JSON.stringify(out, null, 2) + '\n');
}

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    sinks: { type: 'string' },
    events: { type: 'string' },
    label: { type: 'string' },
  },
});
const events = parsePositiveInt(values.events, '--events', DEFAULT_EVENTS);
if (events % ROUND !== 0) throw new Error(`--events must be a multiple of ${ROUND}`);
if (values.child !== undefined) {
  await child(parsePositiveInt(values.child, '--child', 1), events);
} else {
  const counts = values.sinks === undefined ? DEFAULT_SINKS : values.sinks.split(',').map((s) => parsePositiveInt(s, '--sinks', 1));
  parent(counts, events, values.label ?? 'current');
}
