// The measuring half of every contender script: argument parsing, the timed phases, RSS sampling,
// and the after-the-fact check that every line reached the file. Each contender only supplies how
// to open its logger, how to log one event, how to wait for it to catch up, and how to shut it.
//
// One child runs one phase (--phase):
//  - main (default): two parts on one logger instance.
//    - paced: a steady load the logger can keep up with, with other timer work on the loop. The
//      caller's cost, the event-loop delay and line visibility latency are measured here.
//    - saturated: N events in a tight loop. No logger with bounded memory can absorb ~1.3 GB at
//      loop speed, so this measures how fast the whole pipeline drains (back-pressure included),
//      not what one call costs.
//  - overload: a producer faster than any writer for a fixed time; RSS growth (overload.ts).
//  - exit: 100,000 events, then process.exit() at once (exit-phase.ts).

import { parseArgs } from 'node:util';
import type { AgentEventLike } from '../demo/corpus.js';
import { corpusPool, CORPUS_SPECS, type CorpusName } from './corpora.js';
import { exitPhase } from './exit-phase.js';
import { parseCorpus, parsePositiveInt, tallyDir, type ContenderResult } from './lib.js';
import { overloadPhase } from './overload.js';
import { callerFigures, paceFor, pacedPhase } from './paced.js';
import { VisibilityProbe } from './visibility.js';

// Every contender cycles through the same pre-generated events (10,000 for the large corpus;
// bench/corpora.ts sizes each pool): enough variety that the mix of event kinds and sizes matches
// the corpus, small enough (~13 million characters of text for the large corpus) that the pool does
// not dominate peak RSS when a run logs 1,000,000 events.
// Same seed in every process, so every contender logs the same events in the same order.
const CORPUS_SEED = 42;
// The brief's sampling period: fine enough to catch a buffer that fills and drains within a run.
const RSS_SAMPLE_MS = 10;

export interface Session {
  /**
   * Called once per event inside the timed bursts and loops. `poolIndex` is the event's place in
   * the pool (also for a probe's tagged copy), for contenders that prepared per-event data.
   */
  log(event: AgentEventLike, poolIndex: number): void;
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
  open(dir: string, pool: readonly AgentEventLike[]): Promise<Session>;
}

/**
 * The envelope the Rust reference writes, shared by the baseline and the synchronous port so that
 * their only difference is the I/O.
 */
export function referenceLine(index: number, event: AgentEventLike): string {
  return JSON.stringify({ index, emitted_at_ms: Date.now(), frame_depth: null, ...event });
}

type Phase = 'main' | 'overload' | 'exit';

interface Options {
  phase: Phase;
  events: number;
  pacedSeconds: number;
  overloadSeconds: number;
  corpus: CorpusName;
  dir: string;
}

/**
 * The corpus's pool (corpora.ts), each event made compact before the next is built. The corpus builds text by concatenation, which V8 keeps
 * as rope strings: the raw pool of the large corpus holds ~180 MB of RSS (measured), which would
 * set the process's RSS high-water mark before any logger runs, and the first serialisation of a
 * rope costs ~4x a steady-state one (measured), which would charge whichever logger reads it first.
 * A JSON round trip yields the identical event with flat strings, as if decoded from an API reply.
 */
export function makePool(corpus: CorpusName): AgentEventLike[] {
  return corpusPool(corpus, CORPUS_SEED);
}

function readOptions(): Options {
  const { values } = parseArgs({
    options: {
      phase: { type: 'string', default: 'main' },
      events: { type: 'string' },
      'overload-seconds': { type: 'string' },
      'paced-seconds': { type: 'string' },
      corpus: { type: 'string' },
      dir: { type: 'string' },
    },
    strict: true,
  });
  if (values.dir === undefined) throw new Error('--dir <empty directory> is required');
  const phase = values.phase;
  if (phase !== 'main' && phase !== 'overload' && phase !== 'exit') {
    throw new Error(`--phase must be main, overload or exit, got ${JSON.stringify(phase)}`);
  }
  return {
    phase,
    // The runner's full-run defaults for the large corpus; a contender run by hand behaves the
    // same way.
    events: parsePositiveInt(values.events, '--events', 250_000),
    pacedSeconds: parsePositiveInt(values['paced-seconds'], '--paced-seconds', 10),
    overloadSeconds: parsePositiveInt(values['overload-seconds'], '--overload-seconds', 10),
    corpus: parseCorpus(values.corpus, 'large'),
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

function emit(line: string): Promise<void> {
  return new Promise((resolve) => process.stdout.write(line + '\n', () => resolve()));
}

function fail(contender: Contender, message: string, partial: unknown): never {
  process.stderr.write(`${contender.name}: ${message}\n${JSON.stringify(partial)}\n`);
  process.exit(1);
}

export async function runContender(contender: Contender): Promise<void> {
  const opts = readOptions();
  const pool = makePool(opts.corpus);
  if (opts.phase === 'main') return mainPhase(contender, opts, pool);
  const session = await contender.open(opts.dir, pool);
  const log = session.log.bind(session);
  if (opts.phase === 'exit') exitPhase(log, pool);
  const result = await overloadPhase(log, pool, opts.overloadSeconds);
  // Shows how a bounded logger stayed bounded (ringlog: blocked, or dropped and counted).
  const detail = session.detail?.();
  await emit(JSON.stringify(detail ? { ...result, overloadDetail: detail } : result));
  // The backlog is the point of this phase, and flushing it (pino's and ringlog's exit hooks would)
  // could take minutes: the process ends without running any hook. The runner accepts this.
  process.kill(process.pid, 'SIGKILL');
}

async function mainPhase(contender: Contender, opts: Options, pool: readonly AgentEventLike[]): Promise<void> {
  const peakRss = startRssSampler();
  const session = await contender.open(opts.dir, pool);
  const log = session.log.bind(session);
  const n = opts.events;

  const pace = paceFor(CORPUS_SPECS[opts.corpus].pacedPerSec);
  const bursts = Math.round((opts.pacedSeconds * 1000) / pace.periodMs);
  const probe = contender.writesFiles ? await VisibilityProbe.start(opts.dir, bursts) : null;
  const paced = await pacedPhase(log, pool, bursts, probe, pace);
  await session.drain();
  const visibility = probe ? await probe.stop() : null;
  // Counting what the paced phase left in the file checks drain() as well: the saturated phase's
  // figures are only clean if it really had nothing left to write.
  const before = contender.writesFiles ? await tallyDir(opts.dir) : null;
  if (before && before.lines !== paced.events) {
    fail(contender, `${before.lines} lines in ${opts.dir} after the paced phase and drain(), expected ${paced.events}`, before);
  }

  // j restarts at 0 so the saturated phase logs the same N events whatever the paced phase logged.
  const t0 = process.hrtime.bigint();
  for (let i = 0, j = 0; i < n; i++) {
    log(pool[j]!, j);
    if (++j === pool.length) j = 0;
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
    ...callerFigures(paced),
    eventLoopDelayP99Ms: paced.loopDelayP99Ms,
    eventLoopDelayMaxMs: paced.loopDelayMaxMs,
    visibilityP50Ms: visibility?.visibilityP50Ms ?? null,
    visibilityP99Ms: visibility?.visibilityP99Ms ?? null,
    visibilityMaxMs: visibility?.visibilityMaxMs ?? null,
    visibilityProbes: visibility?.visibilityProbes ?? null,
    visibilityMissing: visibility?.visibilityMissing ?? null,
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
