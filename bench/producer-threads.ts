// Worker threads logging into one sink (issue 12's figures): the per-event cost on a producer
// thread that writes straight into the sink's ring (sinkHandle + connectSink), against the owner's
// own cost on the main thread and against a handle that posts every event to the owner's thread
// (the mechanism every handle used before, still used for sinks that are not a JsonlEventSink:
// forced here by wrapping the sink in a plain object); and end-to-end events/s of 8 threads
// against one. Each contender runs in a process of its own, the same events (the large corpus,
// ~1.3 KB lines) in each.
//
//   npm run build && node dist/bench/producer-threads.js [--threads 8] [--events 200000] [--runs 3]
//
// Results: bench/results/producer-threads.json.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { makeCorpus } from '../demo/corpus.js';
import { connectSink, JsonlEventSink, sinkHandle, type AgentEventSink, type ProducerHandle } from '../src/index.js';
import { median, parsePositiveInt } from './lib.js';

/** Paced: a burst of this many events, then a pause, so the writer keeps up and only the
 *  caller's own work is timed (as in the pipeline benchmark's paced caller cost). */
const BURST = 100;
/** The pause after each burst of the whole process (each of T threads pauses T times as long),
 *  so every contender offers the same total rate: 100 events per 2 ms, 50,000 events/s, a third
 *  of what the writer sustains with these events (README, "Performance"). */
const PAUSE_MS = 2;
const CONTENDERS = ['main', 'direct', 'postmessage'] as const;
type Contender = (typeof CONTENDERS)[number];

interface ThreadResult {
  /** Mean handleEvent time per event, paced (ns of wall clock inside the bursts). */
  pacedNs: number;
  /** CPU time of the thread per event over the timed pass (ns; its timers included). With more
   *  threads than cores, wall time inside a burst also counts waiting for a core; this does not. */
  pacedCpuNs: number;
}

/** CPU time this thread has run, in ns (Linux: /proc/thread-self/schedstat, first field). */
function threadCpuNs(): number {
  try {
    return Number(fs.readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
  } catch {
    return NaN;
  }
}

interface ChildResult {
  contender: Contender;
  threads: number;
  events: number;
  /** Median over producer threads of their mean paced cost per event (ns): wall, and CPU. */
  pacedNsPerEvent: number;
  pacedCpuNsPerEvent: number;
  /** Flat out: every thread logs its share as fast as it can, then flushes; total events/s. */
  endToEndEventsPerSec: number;
  /** Lines written and events dropped, from stats() after close(): every event is written. */
  written: number;
  dropped: number;
}

/** One producer's paced work: bursts timed, the pauses not; a first pass of the same events
 *  untimed, so the JIT has settled (the first events of a process cost 10-20x: V8 compiling). */
async function produce(sink: AgentEventSink, events: number, pauseMs: number): Promise<ThreadResult> {
  const corpus = makeCorpus(Math.min(events, 20_000));
  let spent = 0;
  let cpu = 0;
  for (let pass = 0; pass < 2; pass++) {
    spent = 0;
    cpu = threadCpuNs();
    for (let i = 0; i < events; ) {
      const t0 = process.hrtime.bigint();
      for (let k = 0; k < BURST && i < events; k++, i++) sink.handleEvent(corpus[i % corpus.length]!);
      spent += Number(process.hrtime.bigint() - t0);
      // Jittered: threads started together would otherwise burst together, and with more
      // threads than cores a burst would then time the wait for a core, not the work.
      await new Promise((r) => setTimeout(r, pauseMs * (0.5 + Math.random())));
    }
    cpu = threadCpuNs() - cpu;
  }
  await sink.flush();
  return { pacedNs: spent / events, pacedCpuNs: cpu / events };
}

async function child(contender: Contender, threads: number, events: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-bench-threads-'));
  const file = path.join(dir, 'events.jsonl');
  try {
    // 'block': end to end measures what the writer sustains, nothing dropped.
    const sink = JsonlEventSink.open(file, { overload: 'block' });
    const perThread = Math.floor(events / threads);
    let paced: ThreadResult[];
    let e2eMs: number;
    if (contender === 'main') {
      paced = [await produce(sink, perThread, PAUSE_MS)];
      const corpus = makeCorpus(20_000);
      const t0 = performance.now();
      for (let i = 0; i < perThread; i++) sink.handleEvent(corpus[i % corpus.length]!);
      await sink.flush();
      e2eMs = performance.now() - t0;
    } else {
      const start = new Int32Array(new SharedArrayBuffer(4));
      const self = fileURLToPath(import.meta.url);
      const done: Promise<ThreadResult>[] = [];
      const flatDone: Promise<number>[] = [];
      for (let t = 0; t < threads; t++) {
        const target: AgentEventSink = contender === 'direct' ? sink : { handleEvent: (e, c) => sink.handleEvent(e, c), flush: () => sink.flush() };
        const handle = sinkHandle(target);
        const w = new Worker(self, { workerData: { handle, events: perThread, pauseMs: PAUSE_MS * threads, start }, transferList: [handle.port] });
        let flatResolve!: (at: number) => void;
        flatDone.push(new Promise((r) => (flatResolve = r)));
        done.push(
          new Promise((resolve, reject) => {
            w.on('message', (m: { paced?: ThreadResult; flatDoneAt?: number }) => {
              if (m.paced) resolve(m.paced);
              if (m.flatDoneAt !== undefined) flatResolve(m.flatDoneAt);
            });
            w.on('error', reject);
          }),
        );
      }
      paced = await Promise.all(done);
      const t0 = performance.timeOrigin + performance.now();
      Atomics.store(start, 0, 1);
      Atomics.notify(start, 0);
      const ends = await Promise.all(flatDone);
      e2eMs = Math.max(...ends) - t0;
    }
    await sink.close();
    const stats = sink.stats();
    const result: ChildResult = {
      contender,
      threads: contender === 'main' ? 1 : threads,
      events: perThread * (contender === 'main' ? 1 : threads),
      pacedNsPerEvent: median(paced.map((p) => p.pacedNs)),
      pacedCpuNsPerEvent: median(paced.map((p) => p.pacedCpuNs)),
      endToEndEventsPerSec: (perThread * (contender === 'main' ? 1 : threads)) / (e2eMs / 1000),
      written: stats.written,
      dropped: stats.dropped,
    };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function producerThread(): Promise<void> {
  const { handle, events, pauseMs, start } = workerData as { handle: ProducerHandle; events: number; pauseMs: number; start: Int32Array };
  const sink = connectSink(handle);
  const paced = await produce(sink, events, pauseMs);
  const corpus = makeCorpus(20_000);
  parentPort!.postMessage({ paced });
  Atomics.wait(start, 0, 0);
  for (let i = 0; i < events; i++) sink.handleEvent(corpus[i % corpus.length]!);
  await sink.flush();
  parentPort!.postMessage({ flatDoneAt: performance.timeOrigin + performance.now() });
}

function parent(threads: number, events: number, runs: number): void {
  const self = fileURLToPath(import.meta.url);
  const results: ChildResult[] = [];
  for (let run = 0; run < runs; run++) {
    // Interleaved, so a noisy moment of the machine hits every contender alike.
    for (const c of CONTENDERS) {
      const p = spawnSync(process.execPath, [self, '--child', c, '--threads', String(threads), '--events', String(events)], { encoding: 'utf8', timeout: 600_000 });
      if (p.status !== 0) throw new Error(`${c}: exit ${p.status ?? p.signal}: ${p.stderr.slice(-800)}`);
      const r = JSON.parse(p.stdout.trim()) as ChildResult;
      results.push(r);
      console.error(`run ${run + 1} ${c}: paced ${r.pacedNsPerEvent.toFixed(0)} ns/event (CPU ${r.pacedCpuNsPerEvent.toFixed(0)}), end to end ${r.endToEndEventsPerSec.toFixed(0)} events/s, ${r.written} written, ${r.dropped} dropped`);
    }
  }
  const med = (c: Contender, k: 'pacedNsPerEvent' | 'pacedCpuNsPerEvent' | 'endToEndEventsPerSec'): number => median(results.filter((r) => r.contender === c).map((r) => r[k]));
  const summary = {
    pacedNsPerEvent: Object.fromEntries(CONTENDERS.map((c) => [c, med(c, 'pacedNsPerEvent')])),
    endToEndEventsPerSec: Object.fromEntries(CONTENDERS.map((c) => [c, med(c, 'endToEndEventsPerSec')])),
    pacedCpuNsPerEvent: Object.fromEntries(CONTENDERS.map((c) => [c, med(c, 'pacedCpuNsPerEvent')])),
    directOverMain: med('direct', 'pacedNsPerEvent') / med('main', 'pacedNsPerEvent'),
    directOverPostMessage: med('direct', 'pacedNsPerEvent') / med('postmessage', 'pacedNsPerEvent'),
    cpuDirectOverMain: med('direct', 'pacedCpuNsPerEvent') / med('main', 'pacedCpuNsPerEvent'),
    cpuDirectOverPostMessage: med('direct', 'pacedCpuNsPerEvent') / med('postmessage', 'pacedCpuNsPerEvent'),
    endToEndDirectOverMain: med('direct', 'endToEndEventsPerSec') / med('main', 'endToEndEventsPerSec'),
  };
  console.error(JSON.stringify(summary, null, 2));
  const out = {
    command: `node dist/bench/producer-threads.js --threads ${threads} --events ${events} --runs ${runs}`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    summary,
    results,
  };
  const outDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'producer-threads.json'), JSON.stringify(out, null, 2) + '\n');
}

if (!isMainThread) {
  await producerThread();
} else {
  const { values } = parseArgs({
    options: { child: { type: 'string' }, threads: { type: 'string' }, events: { type: 'string' }, runs: { type: 'string' } },
  });
  const threads = parsePositiveInt(values.threads, '--threads', 8);
  const events = parsePositiveInt(values.events, '--events', 200_000);
  if (values.child !== undefined) {
    if (!(CONTENDERS as readonly string[]).includes(values.child)) throw new Error(`--child must be one of ${CONTENDERS.join(', ')}`);
    await child(values.child as Contender, threads, events);
  } else {
    parent(threads, events, parsePositiveInt(values.runs, '--runs', 3));
  }
}
