// Contract 5 and README "Overload": when the writer really cannot keep up, the policy decides
// ('buffer' default: capped overflow, then a bounded block, then drops; 'block'; 'drop'), memory
// stays bounded by the ring plus maxBufferBytes, and every drop is counted, reported by flush() and
// close(), and marked in the file where the events would have been.
//
// The slow writer is real: the base path is a named pipe whose reader (a separate node process)
// takes 64 KiB, then sleeps 20 ms (~3 MB/s), copying to a regular file. The producer runs in a
// child process of its own so its memory can be measured alone.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BASE_NAME,
  coverage,
  expectLossAccounted,
  lastJson,
  makeFifo,
  runChild,
  splitLines,
  startFifoReader,
  tempDirs,
  type Line,
} from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const MiB = 1024 * 1024;
/** Payload of each event: one event is ~8.1 KiB on the wire and in the file. */
const PAYLOAD_BYTES = 8192;
/** How long the producer logs. */
const PRODUCE_MS = 2500;
/** Allowance over the baseline for the V8 heap, garbage not yet collected and allocator slack. */
const RSS_SLACK = 64 * MiB;
/** Drop markers travel through the overflow queue too: a few dozen bytes each. */
const MARKER_ALLOWANCE = 1024;

interface ErrInfo {
  name: string;
  isSinkError: boolean;
  code: string | undefined;
  droppedEvents: number | undefined;
  message: string;
  causeCode: string | undefined;
}

interface Stats {
  accepted: number;
  written: number;
  dropped: number;
  rejected: number;
  pending: number;
  bufferHighWater: number;
  ringHighWater: number;
  ringBytes: number;
  workerRestarts: number;
}

interface ProducerReport {
  baselineRss: number;
  peakRss: number;
  maxRss: number;
  produced: number;
  thrown: number;
  flushErr: ErrInfo | null;
  statsAfterFlush: Stats;
  closeErr: ErrInfo | null;
  stats: Stats;
}

const PRODUCER = `
import * as fs from 'node:fs';
import { JsonlEventSink, SinkError } from '%RINGLOG%';
const [base, fastFlag, optionsJson, produceMs, payloadBytes] = process.argv.slice(2);
const options = JSON.parse(optionsJson);
const payload = 'p'.repeat(Number(payloadBytes));
const errInfo = (e) => e == null ? null : ({
  name: e.name, isSinkError: e instanceof SinkError, code: e.code, droppedEvents: e.droppedEvents,
  message: String(e.message), causeCode: e.cause && typeof e.cause === 'object' ? e.cause.code : undefined,
});
const sink = JsonlEventSink.open(base, options);   // the pipe's reader is already waiting
sink.handleEvent({ type: 'warm' });
await sink.flush();
await new Promise((r) => setTimeout(r, 50));
const baselineRss = process.memoryUsage.rss();
let peakRss = baselineRss;
let n = 0;
let thrown = 0;
const t0 = Date.now();
while (Date.now() - t0 < Number(produceMs)) {
  try {
    sink.handleEvent({ type: 'big', n, payload });
  } catch {
    thrown++;
  }
  n++;
  if ((n & 15) === 0) {
    const rss = process.memoryUsage.rss();
    if (rss > peakRss) peakRss = rss;
  }
  if ((n & 255) === 0) await new Promise((r) => setImmediate(r));
}
// Let the reader drain at full speed from here on, so closing does not take long.
fs.writeFileSync(fastFlag, '');
let flushErr = null;
try { await sink.flush(); } catch (e) { flushErr = errInfo(e); }
const statsAfterFlush = sink.stats();
let closeErr = null;
try { await sink.close(); } catch (e) { closeErr = errInfo(e); }
const rss = process.memoryUsage.rss();
if (rss > peakRss) peakRss = rss;
console.log(JSON.stringify({
  baselineRss, peakRss, maxRss: process.resourceUsage().maxRSS * 1024, produced: n, thrown,
  flushErr, statsAfterFlush, closeErr, stats: sink.stats(),
}));
`;

interface Run {
  report: ProducerReport;
  lines: Line[];
  raw: string[];
}

/** Runs the producer against a FIFO drained slowly by a separate process; returns what arrived. */
async function overloadRun(label: string, options: Record<string, unknown>): Promise<Run> {
  const dir = dirs.make(label);
  const fifo = path.join(dir, BASE_NAME);
  const copy = path.join(dir, 'copy.jsonl');
  const fastFlag = path.join(dir, 'fast');
  await makeFifo(fifo);
  const reader = startFifoReader(fifo, copy, { chunkBytes: 64 * 1024, sleepMs: 20, fastFlag });
  const producer = await runChild(PRODUCER, [fifo, fastFlag, JSON.stringify(options), String(PRODUCE_MS), String(PAYLOAD_BYTES)], {
    timeoutMs: 90_000,
  });
  // The producer's exit closes the pipe's write end, which ends the reader even if it failed.
  const read = await reader;
  // ringlog reports a failed exit flush on stderr; nothing else in these scripts writes there.
  if (producer.stderr !== '') expect.fail(`the producer wrote to stderr (code ${producer.code}):\n${producer.stderr}`);
  expect(producer.code).toBe(0);
  expect(read.code, `reader exit (stderr: ${read.stderr})`).toBe(0);
  const report = lastJson<ProducerReport>(producer);
  const { raw, torn } = splitLines(fs.readFileSync(copy, 'utf8'));
  expect(torn, 'the file ends with a whole line').toBeUndefined();
  const lines = raw.map((r) => JSON.parse(r) as Line);
  return { report, lines, raw };
}

/** The checks every policy must pass: exact accounting, every index once and in order, whole lines. */
function checkAccounting(run: Run, ringBytes: number, queueCap: number): void {
  const { report, lines, raw } = run;
  const s = report.stats;
  expect(report.thrown, 'handleEvent never throws').toBe(0);
  // warm + produced events.
  expect(s.accepted).toBe(report.produced + 1);
  expect(s.pending).toBe(0);
  expect(s.workerRestarts, 'the writer never died').toBe(0);
  expectLossAccounted(s, lines);
  expectLossAccounted(report.statsAfterFlush, null);

  // Every event line is the exact line of the event that was logged (nothing torn or mixed up).
  const payload = 'p'.repeat(PAYLOAD_BYTES);
  const wrong: string[] = [];
  lines.forEach((l, i) => {
    if (l.type === 'events_dropped') {
      const want = JSON.stringify({ index: l.index, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'events_dropped', count: l.count });
      if (raw[i] !== want && wrong.length < 5) wrong.push(`line ${i}: ${raw[i]!.slice(0, 200)}`);
      return;
    }
    const want =
      l.index === 0
        ? JSON.stringify({ index: 0, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'warm' })
        : JSON.stringify({ index: l.index, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'big', n: l.index - 1, payload });
    if (raw[i] !== want && wrong.length < 5) wrong.push(`line ${i}: ${raw[i]!.slice(0, 200)}`);
  });
  expect(wrong).toEqual([]);

  // Memory: the ring plus the capped queue, over what the process used before logging.
  const peak = Math.max(report.peakRss, report.maxRss);
  const bound = report.baselineRss + ringBytes + queueCap + RSS_SLACK;
  const mib = (b: number): string => (b / MiB).toFixed(1);
  console.log(
    `overload: accepted ${s.accepted} (${mib(s.accepted * PAYLOAD_BYTES)} MiB offered), written ${s.written}, dropped ${s.dropped}; ` +
      `peak RSS +${mib(peak - report.baselineRss)} MiB over baseline (bound +${mib(bound - report.baselineRss)} MiB), queue high water ${mib(s.bufferHighWater)} MiB`,
  );
  expect(peak, `peak RSS ${(peak / MiB).toFixed(1)} MiB, bound ${(bound / MiB).toFixed(1)} MiB`).toBeLessThanOrEqual(bound);
  expect(s.ringHighWater).toBeLessThanOrEqual(ringBytes);
  // The queue never holds more than its cap (plus, at most, the small record of a drop marker).
  expect(s.bufferHighWater).toBeLessThanOrEqual(queueCap + MARKER_ALLOWANCE);
}

/** Loss is never silent: flush() and close() reject with the total, as stats() counts it. */
function checkLossReported(report: ProducerReport): void {
  const s = report.stats;
  if (s.dropped === 0) {
    expect(report.flushErr).toBeNull();
    expect(report.closeErr).toBeNull();
    return;
  }
  for (const [what, err, dropped] of [
    ['flush', report.flushErr, report.statsAfterFlush.dropped],
    ['close', report.closeErr, s.dropped],
  ] as const) {
    expect(err, `${what}() rejects once events were dropped`).not.toBeNull();
    expect(err!.isSinkError, `${what}() rejects with a SinkError: ${err!.message}`).toBe(true);
    expect(err!.code).toBe('ERR_RINGLOG_DROPPED');
    expect(err!.droppedEvents).toBe(dropped);
  }
  expect(report.statsAfterFlush.dropped).toBe(s.dropped);
}

describe('overload: a writer that cannot keep up (FIFO drained at ~3 MB/s)', () => {
  it("'buffer' (default): overflow capped at maxBufferBytes, the caller then waits; memory bounded, nothing lost silently", async () => {
    const ringBytes = MiB;
    const maxBufferBytes = 8 * MiB;
    const run = await overloadRun('buffer', { ringBytes, maxBufferBytes });
    const s = run.report.stats;
    checkAccounting(run, ringBytes, maxBufferBytes);
    checkLossReported(run.report);
    // The queue really filled to its cap (so the writer really was behind) and never beyond it.
    expect(s.bufferHighWater).toBeGreaterThan(maxBufferBytes - 2 * PAYLOAD_BYTES);
    // More was accepted than ring and queue together hold: the caller was held back, not buffered.
    expect(s.accepted * PAYLOAD_BYTES).toBeGreaterThan(ringBytes + maxBufferBytes);
  });

  it("'buffer' with a short blockTimeoutMs: past the cap and the wait, events are dropped, counted and marked", async () => {
    const ringBytes = MiB;
    const maxBufferBytes = 2 * MiB;
    const run = await overloadRun('buffer-drops', { ringBytes, maxBufferBytes, blockTimeoutMs: 5 });
    checkAccounting(run, ringBytes, maxBufferBytes);
    expect(run.report.stats.dropped).toBeGreaterThan(0);
    expect(coverage(run.lines).markers).toBeGreaterThan(0);
    checkLossReported(run.report);
  });

  it("'block' with a short blockTimeoutMs: waits for ring space, then drops are counted and marked too", async () => {
    const ringBytes = MiB;
    const run = await overloadRun('block', { overload: 'block', ringBytes, blockTimeoutMs: 2 });
    checkAccounting(run, ringBytes, 0);
    expect(run.report.stats.dropped).toBeGreaterThan(0);
    checkLossReported(run.report);
  });

  it("'drop': never waits (it drops instead), memory stays bounded while more is offered than it could hold", async () => {
    const ringBytes = MiB;
    const run = await overloadRun('drop', { overload: 'drop', ringBytes });
    const s = run.report.stats;
    checkAccounting(run, ringBytes, 0);
    expect(s.dropped).toBeGreaterThan(0);
    // The RSS bound is meaningful: more was offered than it allows for, so keeping the events
    // instead of dropping them would have broken it.
    expect(s.accepted * PAYLOAD_BYTES).toBeGreaterThan(ringBytes + RSS_SLACK);
    checkLossReported(run.report);
  });
});
