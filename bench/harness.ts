// The measuring half of every contender script: argument parsing, the two timed phases, RSS
// sampling, and the after-the-fact check that every line reached the file. Each contender only
// supplies how to open its logger, how to log one event, how to wait for it to catch up, and how
// to shut it.
//
// Two phases, in one process and on one logger instance:
//  - paced: a steady load the logger can keep up with. The caller's cost per call is only
//    meaningful here; it is what the project's caller targets are about.
//  - saturated: N events in a tight loop. No logger with bounded memory can absorb ~1.3 GB at loop
//    speed, so this measures how fast the whole pipeline drains (back-pressure included), not
//    what one call costs.

import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { CorpusGenerator, type AgentEventLike } from './corpus.js';
import { median, parseCorpus, parsePositiveInt, percentile, type ContenderResult } from './lib.js';

// Every contender cycles through the same 10,000 pre-generated events: enough variety that the
// mix of event kinds and sizes matches the corpus, small enough (~13 million characters of text for the large corpus)
// that the pool does not dominate peak RSS when a run logs 1,000,000 events.
const POOL_SIZE = 10_000;
// Same seed in every process, so every contender logs the same events in the same order.
const CORPUS_SEED = 42;
// The brief's sampling period: fine enough to catch a buffer that fills and drains within a run.
const RSS_SAMPLE_MS = 10;

// The paced load: 20,000 events/s is the steady rate the caller targets are stated at. It arrives
// in bursts because an agent loop emits a turn's events together, not evenly spread.
export const PACED_EVENTS_PER_SEC = 20_000;
// One clock read costs ~40 ns (measured: process.hrtime.bigint on the 2-core VM), so a pair per
// 100 calls adds under 1 ns to each per-event sample, below 1% of the cheapest logger's call.
export const PACED_BURST = 100;
// Follows from the two above: 100 events every 5 ms is 20,000 events/s.
export const PACED_PERIOD_MS = (1000 * PACED_BURST) / PACED_EVENTS_PER_SEC;
// The finest monitorEventLoopDelay accepts: it samples with a libuv timer, and those tick in whole
// milliseconds. A coarser one would blur a stall between two 5 ms bursts into the bursts.
export const LOOP_DELAY_RESOLUTION_MS = 1;

export interface Session {
  /** Called once per event inside the timed bursts and the timed loop. */
  log(event: AgentEventLike): void;
  /**
   * Resolves once every line logged so far is in the file, with the logger left open. Separates
   * the paced phase from the saturated one, so the latter starts with nothing left to write.
   */
  drain(): Promise<void>;
  /** Resolves once every logged line is in the file and the logger has shut down. */
  finish(): Promise<void>;
  /** Logger counters worth keeping in the results, read after finish(). */
  detail?(): Record<string, unknown>;
}

export interface Contender {
  name: string;
  /** false for the no-I/O baseline: nothing to count in the directory afterwards. */
  writesFiles: boolean;
  /** Untimed: opening files, spawning workers, waiting for them to be ready. */
  open(dir: string): Promise<Session>;
}

/**
 * The envelope the Rust reference writes, shared by the baseline and the synchronous port so that
 * their only difference is the I/O.
 */
export function referenceLine(index: number, event: AgentEventLike): string {
  return JSON.stringify({ index, emitted_at_ms: Date.now(), frame_depth: null, ...event });
}

interface Options {
  events: number;
  pacedSeconds: number;
  small: boolean;
  dir: string;
}

/**
 * The same events makeCorpus(POOL_SIZE, CORPUS_SEED, small) returns, one at a time so each can be
 * made compact before the next is built. The corpus builds text by concatenation, which V8 keeps
 * as rope strings: the raw pool of the large corpus holds ~180 MB of RSS (measured), which would
 * set the process's RSS high-water mark before any logger runs, and the first serialisation of a
 * rope costs ~4x a steady-state one (measured), which would charge whichever logger reads it first.
 * A JSON round trip yields the identical event with flat strings, as if decoded from an API reply.
 */
function makePool(small: boolean): AgentEventLike[] {
  const gen = new CorpusGenerator(CORPUS_SEED, small);
  const pool: AgentEventLike[] = [];
  for (let i = 0; i < POOL_SIZE; i++) pool.push(JSON.parse(JSON.stringify(gen.event())) as AgentEventLike);
  return pool;
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' },
      'paced-seconds': { type: 'string' },
      corpus: { type: 'string' },
      dir: { type: 'string' },
    },
    strict: true,
  });
  if (values.dir === undefined) throw new Error('--dir <empty directory> is required');
  return {
    // 1,000,000 events and 2 paced seconds are the runner's defaults; a contender run by hand
    // behaves the same way.
    events: parsePositiveInt(values.events, '--events', 1_000_000),
    pacedSeconds: parsePositiveInt(values['paced-seconds'], '--paced-seconds', 2),
    small: parseCorpus(values.corpus, 'large') === 'small',
    dir: values.dir,
  };
}

/**
 * Tracks the highest RSS seen. The interval cannot fire while the synchronous logging loop holds
 * the main thread, so the kernel's own high-water mark (ru_maxrss) is folded in at the end: it is
 * the only way to see memory that a logger buffers during the loop and releases before it ends.
 */
function startRssSampler(): () => number {
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss());
  }, RSS_SAMPLE_MS);
  timer.unref();
  return () => {
    clearInterval(timer);
    // maxRSS is in kilobytes (getrusage's ru_maxrss on Linux).
    return Math.max(peak, process.memoryUsage.rss(), process.resourceUsage().maxRSS * 1024);
  };
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
async function tallyDir(dir: string): Promise<{ lines: number; bytes: number }> {
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

function emit(line: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(line + '\n', () => resolve()));
}

interface PacedResult {
  events: number;
  /** One per burst: the burst's time divided by its size, in nanoseconds. */
  samples: Float64Array;
  eventsPerSec: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/**
 * Logs `bursts` bursts of PACED_BURST events, one every PACED_PERIOD_MS. Each burst is due at a
 * fixed offset from the start rather than a period after the previous one, so timer lateness does
 * not accumulate and the average rate holds; a burst that is already late runs on the next turn
 * of the loop (setImmediate), still letting the logger's own callbacks run in between.
 */
function pacedPhase(log: (event: AgentEventLike) => void, pool: readonly AgentEventLike[], bursts: number): Promise<PacedResult> {
  const samples = new Float64Array(bursts);
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  return new Promise((resolve) => {
    let burst = 0;
    let j = 0;
    let lastStart = 0;
    loopDelay.enable();
    const start = performance.now();
    const tick = () => {
      lastStart = performance.now();
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < PACED_BURST; i++) {
        log(pool[j]!);
        if (++j === pool.length) j = 0;
      }
      const t1 = process.hrtime.bigint();
      samples[burst++] = Number(t1 - t0) / PACED_BURST;
      if (burst < bursts) {
        const wait = start + burst * PACED_PERIOD_MS - performance.now();
        if (wait > 0) setTimeout(tick, wait);
        else setImmediate(tick);
        return;
      }
      loopDelay.disable();
      // The schedule's span ends one period after the last burst starts, as the first one's
      // began at 0; on time, this gives exactly PACED_EVENTS_PER_SEC.
      const spanMs = lastStart - start + PACED_PERIOD_MS;
      resolve({
        events: bursts * PACED_BURST,
        samples,
        eventsPerSec: (bursts * PACED_BURST) / (spanMs / 1000),
        // The histogram is in nanoseconds.
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        loopDelayMaxMs: loopDelay.max / 1e6,
      });
    };
    tick();
  });
}

function fail(contender: Contender, message: string, partial: unknown): never {
  process.stderr.write(`${contender.name}: ${message}\n${JSON.stringify(partial)}\n`);
  process.exit(1);
}

export async function runContender(contender: Contender): Promise<void> {
  const opts = readOptions();
  const pool = makePool(opts.small);
  const peakRss = startRssSampler();
  const session = await contender.open(opts.dir);
  const log = session.log.bind(session);
  const n = opts.events;

  const bursts = Math.round((opts.pacedSeconds * 1000) / PACED_PERIOD_MS);
  const paced = await pacedPhase(log, pool, bursts);
  await session.drain();
  // Counting what the paced phase left in the file checks drain() as well: the saturated phase's
  // figures are only clean if it really had nothing left to write.
  const before = contender.writesFiles ? await tallyDir(opts.dir) : null;
  if (before && before.lines !== paced.events) {
    fail(contender, `${before.lines} lines in ${opts.dir} after the paced phase and drain(), expected ${paced.events}`, before);
  }

  // j restarts at 0 so the saturated phase logs the same N events whatever the paced phase logged.
  const t0 = process.hrtime.bigint();
  for (let i = 0, j = 0; i < n; i++) {
    log(pool[j]!);
    if (++j === POOL_SIZE) j = 0;
  }
  const t1 = process.hrtime.bigint();
  await session.finish();
  const t2 = process.hrtime.bigint();

  const peakRssBytes = peakRss();
  const e2eSeconds = Number(t2 - t0) / 1e9;
  const after = contender.writesFiles ? await tallyDir(opts.dir) : null;
  const bytes = before && after ? after.bytes - before.bytes : null;
  const result: ContenderResult = {
    name: contender.name,
    events: n,
    callerNsPerEvent: median(Array.from(paced.samples)),
    callerP99NsPerEvent: percentile(paced.samples, 99),
    eventLoopDelayP99Ms: paced.loopDelayP99Ms,
    eventLoopDelayMaxMs: paced.loopDelayMaxMs,
    pacedEvents: paced.events,
    pacedEventsPerSec: paced.eventsPerSec,
    saturatedNsPerEvent: Number(t1 - t0) / n,
    e2eSeconds,
    eventsPerSec: n / e2eSeconds,
    // MB = 10^6 bytes, as disk and network throughput are usually quoted.
    mbPerSec: bytes === null ? null : bytes / 1e6 / e2eSeconds,
    bytes,
    peakRssBytes,
    linesInFile: after ? after.lines : null,
  };
  const detail = session.detail?.();
  if (detail) result.detail = detail;

  if (after && after.lines !== paced.events + n) {
    fail(contender, `${after.lines} lines in ${opts.dir}, expected ${paced.events} paced + ${n}`, result);
  }
  await emit(JSON.stringify(result));
  // Exit explicitly: a logger that leaves a handle open must not stall the whole benchmark.
  process.exit(0);
}
