// The event log on Redis (issue 13's figures), against a redis-server this script starts on a free
// loopback port (appendonly yes, appendfsync everysec: Redis's defaults for an AOF). Each contender
// runs in a process of its own, interleaved over runs:
//
//   sink-memory, sink-redis  EventLogSink over the memory backend and over Redis, the project's
//                            large corpus (~1.3 KB events): the caller's cost per event offered at
//                            30,000 events/s for 5 s (bursts of 300 every 10 ms, inside the bursts
//                            timed), whether the log kept up (every event appended, nothing
//                            dropped, the flush after the last burst quick), and events/s end to
//                            end flat out (40,000 events, then flush);
//   raw-redis                the log itself: appends one at a time (each awaited) with their
//                            latency, appends many at once, readRange by pages, and the latency from
//                            append() to a subscriber's next(), paced at 1,000 events/s.
//
// Two placements of the server, each contender run in both: `shared` leaves Node and redis-server
// free on the machine's cores (on 2 cores the server's work lands on the caller's core at times);
// `pinned` puts redis-server on core 1 and the Node child on core 0 (`taskset`, Linux, 2+ cores),
// as a server on another machine would be: what the caller pays for the backend, not for the
// server's CPU.
//
//   npm run build && node dist/bench/event-log-redis.js [--runs 3] [--placement shared|pinned|both]
//
// Results: bench/results/event-log-redis.json.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeCorpus } from '../demo/corpus.js';
import { EventLogSink, openEventLog, type EventLog } from '../src/index.js';
import { median, parsePositiveInt, percentile } from './lib.js';
import { startRedis } from './redis-server.js';

/** The rate, 30,000 events/s offered: bursts of 300 every 10 ms, for 5 s. */
const BURST = 300;
const PERIOD_MS = 10;
const PACED_SECONDS = 5;
/** Flat out: 40,000 events of ~1.3 KB, about 52 MB of JSON, under the sink's 64 Mi default bound. */
const FLAT_EVENTS = 40_000;
const CONTENDERS = ['sink-memory', 'sink-redis', 'raw-redis'] as const;
type Contender = (typeof CONTENDERS)[number];

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function openLog(backend: 'memory' | 'redis', url: string, prefix: string): Promise<EventLog> {
  return backend === 'memory' ? openEventLog({ backend: 'memory' }) : openEventLog({ backend: 'redis', url, keyPrefix: prefix });
}

async function sinkChild(backend: 'memory' | 'redis', url: string): Promise<Record<string, unknown>> {
  const corpus = makeCorpus(20_000);
  const log = await openLog(backend, url, `bench:${process.pid}:`);
  // Paced: a warm-up pass of 1 s, then the timed pass.
  const paced = async (seconds: number, session: string): Promise<{ nsPerEvent: number; events: number; flushMs: number; dropped: number; appended: number }> => {
    const sink = new EventLogSink(log, session);
    const bursts = (seconds * 1000) / PERIOD_MS;
    let spent = 0;
    let events = 0;
    const t0 = performance.now();
    for (let b = 0; b < bursts; b++) {
      const s = process.hrtime.bigint();
      for (let k = 0; k < BURST; k++) sink.handleEvent(corpus[events++ % corpus.length]!);
      spent += Number(process.hrtime.bigint() - s);
      // On schedule, whatever the burst cost: the offered rate stays 30,000 events/s.
      const due = t0 + (b + 1) * PERIOD_MS - performance.now();
      await sleep(Math.max(0, due));
    }
    const f0 = performance.now();
    await sink.flush().catch(() => undefined);
    const flushMs = performance.now() - f0;
    const st = sink.stats();
    return { nsPerEvent: spent / events, events, flushMs, dropped: st.dropped, appended: st.appended };
  };
  await paced(1, 'warmup');
  const p = await paced(PACED_SECONDS, 'paced');
  const flatSink = new EventLogSink(log, 'flat');
  const t0 = performance.now();
  for (let i = 0; i < FLAT_EVENTS; i++) flatSink.handleEvent(corpus[i % corpus.length]!);
  await flatSink.flush().catch(() => undefined);
  const flatMs = performance.now() - t0;
  const flatStats = flatSink.stats();
  await log.close();
  return {
    pacedNsPerEvent: p.nsPerEvent,
    pacedEvents: p.events,
    pacedFlushMs: p.flushMs,
    pacedDropped: p.dropped,
    pacedAppended: p.appended,
    keptUp: p.dropped === 0 && p.appended === p.events && p.flushMs < 1000,
    sustainedEventsPerSec: p.appended / ((PACED_SECONDS * 1000 + p.flushMs) / 1000),
    flatEventsPerSec: flatStats.appended / (flatMs / 1000),
    flatDropped: flatStats.dropped,
  };
}

async function rawChild(url: string): Promise<Record<string, unknown>> {
  const corpus = makeCorpus(20_000);
  const log = await openLog('redis', url, `bench:${process.pid}:`);
  const payload = (i: number): unknown => corpus[i % corpus.length];
  // One at a time: each append awaited before the next (the latency of one round trip and script).
  const oneLat: number[] = [];
  const t1 = performance.now();
  for (let i = 0; i < 2000; i++) {
    const s = performance.now();
    await log.append('one', { kind: 'k', payload: payload(i) });
    oneLat.push(performance.now() - s);
  }
  const oneMs = performance.now() - t1;
  // Many at once: 1,000 appends per await, batched and pipelined by the backend.
  const t2 = performance.now();
  for (let i = 0; i < 20_000; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, k) => log.append('many', { kind: 'k', payload: payload(i + k) })));
  const manyMs = performance.now() - t2;
  // Reading back by pages of 1,000.
  const t3 = performance.now();
  let read = 0;
  for (let from = 0; ; ) {
    const page = await log.readRange('many', from, 1000);
    if (page.length === 0) break;
    read += page.length;
    from = page[page.length - 1]!.id;
  }
  const readMs = performance.now() - t3;
  // Subscribe latency: append() called → the live subscriber's next() resolved.
  const it = log.subscribe('live');
  const sentAt = new Map<number, number>();
  const subLat: number[] = [];
  const reader = (async () => {
    for (let n = 0; n < 2000; n++) {
      const r = await it.next();
      subLat.push(performance.now() - sentAt.get((r.value!.payload as { n: number }).n)!);
    }
  })();
  await sleep(50);
  for (let n = 0; n < 2000; n++) {
    sentAt.set(n, performance.now());
    void log.append('live', { kind: 'k', payload: { n } });
    await sleep(1);
  }
  await reader;
  await it.return!();
  await log.close();
  return {
    oneAtATimeEventsPerSec: 2000 / (oneMs / 1000),
    oneAtATimeP50Ms: percentile(Float64Array.from(oneLat).sort(), 50),
    oneAtATimeP99Ms: percentile(Float64Array.from(oneLat).sort(), 99),
    batchedEventsPerSec: 20_000 / (manyMs / 1000),
    readEventsPerSec: read / (readMs / 1000),
    subscribeP50Ms: percentile(Float64Array.from(subLat).sort(), 50),
    subscribeP99Ms: percentile(Float64Array.from(subLat).sort(), 99),
  };
}

type Placement = 'shared' | 'pinned';

/** Whether this machine can give the server a core of its own: Linux's taskset and two cores. */
function canPin(): boolean {
  return os.cpus().length >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
}

/** Runs one child against a fresh server: a server that earlier children filled (hundreds of MB)
 *  would weigh on the next. */
async function runOne(self: string, c: Contender, placement: Placement): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-bench-redis-'));
  const server = await startRedis(dir);
  try {
    let cmd = process.execPath;
    let args = [self, '--child', c, '--url', server.url];
    if (placement === 'pinned') {
      // -a: every thread of the server (its I/O and background threads) on core 1.
      const p = spawnSync('taskset', ['-a', '-p', '-c', '1', String(server.pid)], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`taskset on redis-server failed: ${p.stderr}`);
      cmd = 'taskset';
      args = ['-c', '0', process.execPath, ...args];
    }
    const p = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000 });
    if (p.status !== 0) throw new Error(`${c} (${placement}): exit ${p.status ?? p.signal}: ${p.stderr.slice(-800)}`);
    return JSON.parse(p.stdout.trim()) as Record<string, unknown>;
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function parent(runs: number, placements: readonly Placement[]): Promise<void> {
  const self = fileURLToPath(import.meta.url);
  // The first placement asked for is the one the summary's top-level figures and the raw figures
  // (latencies, rates of the log itself) are taken in; with both, the pinned caller figures follow.
  const primary = placements[0]!;
  const results: (Record<string, unknown> & { contender: Contender; placement: Placement; run: number })[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const placement of placements) {
      for (const c of CONTENDERS) {
        if (c === 'raw-redis' && placement !== primary) continue;
        const r = { contender: c, placement, run, ...(await runOne(self, c, placement)) };
        results.push(r);
        console.error(`run ${run} ${c} ${placement}: ${JSON.stringify(r)}`);
      }
    }
  }
  const of = (c: Contender, placement: Placement) => results.filter((r) => r.contender === c && r.placement === placement);
  const med = (c: Contender, k: string): number => median(of(c, primary).map((r) => r[k] as number));
  const caller = (placement: Placement) => {
    const memory = of('sink-memory', placement).map((r) => r.pacedNsPerEvent as number);
    const redis = of('sink-redis', placement).map((r) => r.pacedNsPerEvent as number);
    return {
      sinkPacedNsPerEvent: { memory: median(memory), redis: median(redis) },
      callerRedisOverMemory: median(redis) / median(memory),
      // Each run's two children ran one after the other: the ratio within a run, run by run.
      callerRatioPerRun: redis.map((x, i) => x / memory[i]!),
    };
  };
  const summary = {
    placement: primary,
    ...caller(primary),
    ...(placements.length > 1 ? { pinned: caller('pinned') } : {}),
    sinkRedisSustainedEventsPerSec: med('sink-redis', 'sustainedEventsPerSec'),
    // Over every placement.
    sinkRedisKeptUpEveryRun: results.filter((r) => r.contender === 'sink-redis').every((r) => r.keptUp === true),
    sinkFlatEventsPerSec: { memory: med('sink-memory', 'flatEventsPerSec'), redis: med('sink-redis', 'flatEventsPerSec') },
    raw: Object.fromEntries(
      ['oneAtATimeEventsPerSec', 'oneAtATimeP50Ms', 'oneAtATimeP99Ms', 'batchedEventsPerSec', 'readEventsPerSec', 'subscribeP50Ms', 'subscribeP99Ms'].map((k) => [k, med('raw-redis', k)]),
    ),
  };
  console.error(JSON.stringify(summary, null, 2));
  const version = spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim();
  const command = `node dist/bench/event-log-redis.js --runs ${runs} --placement ${placements.length === 2 ? 'both' : placements[0]}`;
  const out = { command, date: new Date().toISOString(), node: process.version, redis: version, cpus: os.cpus().length, summary, results };
  const outDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'event-log-redis.json'), JSON.stringify(out, null, 2) + '\n');
}

const { values } = parseArgs({ options: { child: { type: 'string' }, url: { type: 'string' }, runs: { type: 'string' }, placement: { type: 'string' } } });
if (values.child !== undefined) {
  const c = values.child as Contender;
  if (!CONTENDERS.includes(c)) throw new Error(`--child must be one of ${CONTENDERS.join(', ')}`);
  const r = c === 'raw-redis' ? await rawChild(values.url!) : await sinkChild(c === 'sink-memory' ? 'memory' : 'redis', values.url!);
  process.stdout.write(JSON.stringify(r) + '\n');
} else {
  const placement = values.placement ?? 'both';
  if (placement !== 'shared' && placement !== 'pinned' && placement !== 'both') throw new Error(`--placement must be shared, pinned or both, got ${placement}`);
  const placements: Placement[] = placement === 'both' ? ['shared', 'pinned'] : [placement];
  if (placements.includes('pinned') && !canPin()) throw new Error('--placement pinned needs Linux taskset and two cores; use --placement shared');
  await parent(parsePositiveInt(values.runs, '--runs', 3), placements);
}
