// Producer threads writing straight into a JsonlEventSink's ring (sinkHandle + connectSink): the
// claim lock keeps one gap-free index order across threads, a producer that dies mid-claim leaves
// a counted loss marker instead of a stall or a silent gap, and the writer dying under many
// producers and several sinks loses nothing. Real worker threads, real files.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { ErrorCode, JsonlEventSink, sinkHandle, type ProducerHandle } from '../dist/src/index.js';
import { Ctl } from '../dist/src/ring/slots.js';
import {
  coverage, expectLossAccounted, lastJson, makeFifo, readLines, RINGLOG_URL, runChildWithEnv, sinkFailure, splitLines, startFifoReader, tempDirs, type Line,
} from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const CLAIM_URL = new URL('../dist/src/ring/claim.js', import.meta.url);
const MEMORY_URL = new URL('../dist/src/ring/memory.js', import.meta.url);
const SLOTS_URL = new URL('../dist/src/ring/slots.js', import.meta.url);

/**
 * A producer thread: logs `count` events `{ type: 'work', producer, seq, pad }` into each of its
 * handles, in turn, then flushes each (reporting what flush() threw), then says done. With
 * `keys`, each event also carries a key of its own per seq, so the key table is exercised.
 */
const PRODUCER = `
import { workerData, parentPort } from 'node:worker_threads';
import { connectSink } from '%RINGLOG%';
const { handles, producer, count, pad, odd } = workerData;
const sinks = handles.map((h) => connectSink(h));
for (let seq = 0; seq < count; seq++) {
  for (const s of sinks) {
    const e = { type: 'work', producer, seq, pad: 'p'.repeat(seq % pad) };
    if (odd) e['k' + (seq % 7)] = { nested: [seq, 'é', null] };
    s.handleEvent(e, { frameDepth: producer });
  }
}
const errors = [];
for (const s of sinks) {
  try { await s.flush(); } catch (err) { errors.push({ code: err.code, droppedEvents: err.droppedEvents, message: err.message }); }
}
parentPort.postMessage({ done: producer, errors });
`;

interface Done {
  done: number;
  errors: { code: string; droppedEvents: number; message: string }[];
}

function producerScript(): string {
  const dir = dirs.make('producer');
  const script = path.join(dir, 'producer.mjs');
  fs.writeFileSync(script, PRODUCER.replaceAll('%RINGLOG%', RINGLOG_URL.href));
  return script;
}

interface ProducerRun {
  readonly worker: Worker;
  /** Resolves with the worker's report, or null when it ended without one (terminated). */
  readonly result: Promise<Done | null>;
}

function startProducer(script: string, handles: readonly ProducerHandle[], producer: number, count: number, opts: { pad?: number; odd?: boolean } = {}): ProducerRun {
  const worker = new Worker(script, {
    workerData: { handles, producer, count, pad: opts.pad ?? 50, odd: opts.odd ?? false },
    transferList: handles.map((h) => h.port),
  });
  const result = new Promise<Done | null>((resolve, reject) => {
    let report: Done | null = null;
    worker.on('message', (m: Done) => (report = m));
    worker.on('error', reject);
    worker.on('exit', () => resolve(report));
  });
  return { worker, result };
}

/** Runs `source` (an ES module) in a worker thread with `handle` in workerData; resolves with
 *  what it posted, once it has exited. */
async function inWorker(dir: string, source: string, handle: ProducerHandle): Promise<unknown[]> {
  const script = path.join(dir, `worker-${Math.random().toString(36).slice(2)}.mjs`);
  fs.writeFileSync(script, source);
  const posted: unknown[] = [];
  await new Promise((resolve, reject) => {
    const w = new Worker(script, { workerData: { handle }, transferList: [handle.port] });
    w.on('message', (m) => posted.push(m));
    w.on('error', reject);
    w.on('exit', resolve);
  });
  return posted;
}

/** A worker's start: the claim protocol's own modules, to die in the middle of it on purpose. */
const CLAIM_IMPORTS = `
  import { workerData } from 'node:worker_threads';
  import { SharedProducer } from '${CLAIM_URL.href}';
  import { ringViews } from '${MEMORY_URL.href}';
  import { Claim } from '${SLOTS_URL.href}';
  const ring = ringViews(workerData.handle.ring.sab);
  const p = new SharedProducer(ring, { svc: new Int32Array(workerData.handle.ring.svc) });`;

/** Each producer's seqs, in file order: 0, 1, 2, … with none missing, none twice. */
function seqProblems(lines: readonly Line[], producers: number, expected?: number): string[] {
  const next = new Array<number>(producers).fill(0);
  const problems: string[] = [];
  for (const l of lines) {
    if (l.type !== 'work') continue;
    const p = l.producer as number;
    if (p < 0) continue; // the owner's own events
    if (l.seq !== next[p] && problems.length < 5) problems.push(`producer ${p}: seq ${String(l.seq)}, expected ${next[p]}`);
    next[p] = (l.seq as number) + 1;
  }
  if (expected !== undefined) next.forEach((n, p) => n !== expected && problems.push(`producer ${p}: ${n} of ${expected} events`));
  return problems;
}

/** Under 'drop', each producer's seqs in file order only ever grow: drops cut runs short, never reorder. */
function orderProblems(lines: readonly Line[], producers: number): string[] {
  const last = new Array<number>(producers).fill(-1);
  const problems: string[] = [];
  for (const l of lines) {
    if (l.type !== 'work') continue;
    const p = l.producer as number;
    const seq = l.seq as number;
    if (seq <= last[p]! && problems.length < 5) problems.push(`producer ${p}: seq ${seq} after ${last[p]!}`);
    last[p] = seq;
  }
  return problems;
}

/**
 * A sink path that nobody reads until release(): a FIFO whose reader (another process) holds off,
 * so the writer stalls on the full pipe and the ring fills however fast the machine is, and
 * overload 'drop' really drops. After release() the reader drains at full speed; lines() is what
 * went through the pipe.
 */
async function stalledPipe(label: string): Promise<{ path: string; release(): void; lines(): Promise<Line[]> }> {
  const dir = dirs.make(label);
  const fifo = path.join(dir, 'events.jsonl');
  const copy = path.join(dir, 'copy.jsonl');
  const gate = path.join(dir, 'gate');
  await makeFifo(fifo);
  const reader = startFifoReader(fifo, copy, { gateFile: gate, fastFlag: gate });
  return {
    path: fifo,
    release: () => fs.writeFileSync(gate, ''),
    lines: async () => {
      const r = await reader;
      expect(r.code, `fifo reader: ${r.stderr}`).toBe(0);
      const { raw, torn } = splitLines(fs.readFileSync(copy, 'utf8'));
      expect(torn, 'the pipe ends with a whole line').toBeUndefined();
      return raw.map((l) => JSON.parse(l) as Line);
    },
  };
}

/** Resolves once `sink` has taken `n` indexes (placed or dropped: every event logged so far). */
async function untilAccepted(sink: JsonlEventSink, n: number): Promise<void> {
  for (let waited = 0; sink.stats().accepted < n; waited += 10) {
    if (waited > 60_000) throw new Error(`${sink.stats().accepted} of ${n} events logged within 60 s`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('producer threads write straight into the ring', () => {
  it('8 producer threads and the owner into one sink: every event once, indexes gap-free in one order, each thread in its own order, times never step back', async () => {
    const dir = dirs.make('eight');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'), { overload: 'block' });
    const script = producerScript();
    const handles = Array.from({ length: 8 }, () => sinkHandle(sink));
    const runs = handles.map((h, p) => startProducer(script, [h], p, 4000, { odd: true }));
    // The owner logs meanwhile, with keys of its own that the key table interns.
    for (let seq = 0; seq < 4000; seq++) sink.handleEvent({ type: 'work', producer: -1, seq, owner_only: seq });
    const reports = await Promise.all(runs.map((r) => r.result));
    expect(reports.map((r) => r?.errors)).toEqual(new Array(8).fill([]));
    // Each producer thread interned its keys in a key area of its own (ring/key-areas.ts).
    expect(new Int32Array(handles[0]!.ring!.sab)[Ctl.KEY_AREAS_TAKEN]).toBe(8);
    await sink.close();
    const lines = readLines(dir, 'events.jsonl').lines;
    expect(lines).toHaveLength(9 * 4000);
    expect(coverage(lines).problems).toEqual([]);
    expect(seqProblems(lines, 8, 4000)).toEqual([]);
    const owner = lines.filter((l) => l.producer === -1).map((l) => l.seq);
    expect(owner).toEqual(Array.from({ length: 4000 }, (_, i) => i));
    let stepBack = -1;
    for (let i = 1; i < lines.length && stepBack < 0; i++) if (lines[i]!.emitted_at_ms < lines[i - 1]!.emitted_at_ms) stepBack = i;
    expect(stepBack).toBe(-1);
    // Bytes as JSON.stringify writes them: keys interned in key areas by producers, in records by the owner.
    const sample = lines.find((l) => l.producer === 3 && l.seq === 10)!;
    expect(sample.k3).toEqual({ nested: [10, 'é', null] });
    expect(lines.find((l) => l.producer === -1 && l.seq === 7)!.owner_only).toBe(7);
    expect(lines.every((l) => l.frame_depth === (l.producer === -1 ? null : l.producer))).toBe(true);
    expectLossAccounted(sink.stats(), lines);
  });

  it("overload 'drop' with a small ring: every index is an event or inside a marker, the markers add up to the drops, and each producer's flush reports its own", async () => {
    const pipe = await stalledPipe('drop');
    const sink = JsonlEventSink.open(pipe.path, { overload: 'drop', ringBytes: 64 * 1024 });
    const script = producerScript();
    const runs = Array.from({ length: 4 }, (_, p) => startProducer(script, [sinkHandle(sink)], p, 20_000, { pad: 200 }));
    // Every event logged, 80,000 × ~250 bytes against 64 KiB of ring and 64 KiB of pipe: most
    // were dropped, whatever the machine's speed. Then the reader may go.
    await untilAccepted(sink, 80_000);
    pipe.release();
    const reports = await Promise.all(runs.map((r) => r.result));
    const reported = reports.reduce((n, r) => n + (r!.errors[0]?.droppedEvents ?? 0), 0);
    for (const r of reports) for (const e of r!.errors) expect(e.code).toBe(ErrorCode.DROPPED);
    const err = await sinkFailure(() => sink.close());
    expect(err.code).toBe(ErrorCode.DROPPED);
    const lines = await pipe.lines();
    const stats = sink.stats();
    expect(stats.accepted).toBe(80_000);
    expect(stats.dropped).toBe(reported);
    expect(stats.dropped).toBeGreaterThan(0);
    const cov = expectLossAccounted(stats, lines)!;
    expect(cov.events + cov.markedDropped).toBe(80_000);
    expect(orderProblems(lines, 4)).toEqual([]);
  });

  it('a producer thread that dies after taking an index, before publishing: the next claim finds the lock, a marker stands for the index, flush() says so, nothing stalls', async () => {
    const dir = dirs.make('dies-claiming');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'));
    sink.handleEvent({ type: 'before' });
    await inWorker(
      dir,
      `import { connectSink } from '${RINGLOG_URL.href}';
       ${CLAIM_IMPORTS}
       connectSink(workerData.handle).handleEvent({ type: 'from-producer' });
       // The claim protocol's first steps, then the thread ends (as terminate() could end it there).
       p.lock();
       ring.claim[Claim.NEXT_INDEX] += 1;
       process.exit(0);`,
      sinkHandle(sink),
    );
    // The owner's next event waits on the dead holder's lock only until its death is seen.
    sink.handleEvent({ type: 'after' });
    const err = await sinkFailure(() => sink.flush());
    expect(err.code).toBe(ErrorCode.DROPPED);
    expect(err.droppedEvents).toBe(1);
    expect(err.message).toMatch(/taken by a producer thread that died/);
    await sinkFailure(() => sink.close());
    const lines = readLines(dir, 'events.jsonl').lines;
    expect(lines.map((l) => [l.index, l.type, l.count])).toEqual([
      [0, 'before', undefined],
      [1, 'from-producer', undefined],
      [2, 'events_dropped', 1],
      [3, 'after', undefined],
    ]);
    expectLossAccounted(sink.stats(), lines);
  });

  it('the dead holder is found by the writer when no producer comes back: flush() ends instead of waiting forever', async () => {
    const dir = dirs.make('dies-alone');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'));
    await inWorker(
      dir,
      `${CLAIM_IMPORTS}
       p.lock();
       ring.claim[Claim.NEXT_INDEX] += 2;
       process.exit(0);`,
      sinkHandle(sink),
    );
    const err = await sinkFailure(() => sink.flush());
    expect(err.droppedEvents).toBe(2);
    await sinkFailure(() => sink.close());
    const lines = readLines(dir, 'events.jsonl').lines;
    expect(lines.map((l) => [l.index, l.type, l.count])).toEqual([[0, 'events_dropped', 2]]);
  });

  it('producer threads terminated at random while they log: the file stays gap-free, a producer loses at most the event it was placing, every loss is marked and counted', async () => {
    const dir = dirs.make('terminated');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'), { overload: 'block', ringBytes: 256 * 1024 });
    const script = producerScript();
    const runs = Array.from({ length: 6 }, (_, p) => startProducer(script, [sinkHandle(sink)], p, 1_000_000, { pad: 30 }));
    for (const [p, r] of runs.entries()) setTimeout(() => void r.worker.terminate(), 100 + p * 37 + Math.random() * 200);
    await Promise.all(runs.map((r) => r.result));
    await sink.flush().catch(() => undefined);
    await sink.close().catch(() => undefined);
    const lines = readLines(dir, 'events.jsonl').lines;
    const cov = coverage(lines);
    expect(cov.problems).toEqual([]);
    expect(seqProblems(lines, 6)).toEqual([]);
    const stats = sink.stats();
    expect(stats.dropped).toBe(cov.markedDropped);
    // A thread dies holding at most one claim.
    expect(cov.markedDropped).toBeLessThanOrEqual(6);
    expectLossAccounted(stats, lines);
  });

  it('the writer killed at random moments while 8 threads write into 3 sinks: nothing lost, nothing twice, every file gap-free', async () => {
    const dir = dirs.make('writer-killed');
    const sinks = [0, 1, 2].map((i) => JsonlEventSink.open(path.join(dir, `s${i}.jsonl`), { overload: 'block', ringBytes: 256 * 1024 }));
    const script = producerScript();
    const runs = Array.from({ length: 8 }, (_, p) => startProducer(script, sinks.map((s) => sinkHandle(s)), p, 3000, { odd: p % 2 === 0 }));
    // A kill only once the current writer has written something: three deaths in a row without
    // progress would (rightly) make the sinks give up on writer threads.
    let kills = 0;
    let writtenAtKill = 0;
    const killer = setInterval(() => {
      const t = sinks[0]!.writerThread;
      const written = sinks.reduce((n, s) => n + s.stats().written, 0);
      if (t !== undefined && kills < 6 && written > writtenAtKill) {
        kills++;
        writtenAtKill = written;
        void t.terminate();
      }
    }, 40 + Math.random() * 40);
    const reports = await Promise.all(runs.map((r) => r.result));
    clearInterval(killer);
    expect(kills).toBeGreaterThan(0);
    expect(reports.map((r) => r?.errors)).toEqual(new Array(8).fill([]));
    for (const s of sinks) await s.close();
    for (let i = 0; i < 3; i++) {
      const lines = readLines(dir, `s${i}.jsonl`).lines;
      expect(lines).toHaveLength(8 * 3000);
      expect(coverage(lines).problems).toEqual([]);
      expect(seqProblems(lines, 8, 3000)).toEqual([]);
    }
    expect(sinks[0]!.stats().workerRestarts).toBeGreaterThan(0);
  });

  it("close() while producer threads log flat out (overload 'drop', a small ring): what was placed is written, drop markers included, later events are refused and reported by their flush, the sums hold", async () => {
    const dir = dirs.make('close-under');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'), { overload: 'drop', ringBytes: 64 * 1024 });
    const script = producerScript();
    const total = 3 * 300_000;
    const runs = Array.from({ length: 3 }, (_, p) => startProducer(script, [sinkHandle(sink)], p, 300_000, { pad: 10 }));
    // Close once the producers are under way: 3,000 of 900,000 events in, they cannot finish in the
    // 10 ms between two looks, so events really arrive after close.
    while (sink.stats().accepted < 3000) await new Promise((r) => setTimeout(r, 10));
    await sink.close().catch(() => undefined);
    const reports = await Promise.all(runs.map((r) => r.result));
    const reported = reports.reduce((n, r) => n + (r!.errors[0]?.droppedEvents ?? 0), 0);
    const lines = readLines(dir, 'events.jsonl').lines;
    const stats = sink.stats();
    const cov = expectLossAccounted(stats, lines)!;
    expect(orderProblems(lines, 3)).toEqual([]);
    // Every event a producer logged is in the file, inside a drop marker, or refused after close:
    // exactly one of the three.
    const refused = reported - cov.markedDropped;
    expect(refused).toBeGreaterThan(0);
    expect(cov.events + cov.markedDropped + refused).toBe(total);
  });

  it('sinkHandle() on a sink that has just dropped events does not throw; its queue is written first, in order', async () => {
    const pipe = await stalledPipe('share-after-drops');
    const sink = JsonlEventSink.open(pipe.path, { overload: 'drop', ringBytes: 64 * 1024 });
    // 4 MB into a 64 KiB ring and a pipe nobody reads yet: drops, whatever the machine.
    for (let i = 0; i < 20_000; i++) sink.handleEvent({ type: 'owner', i, pad: 'x'.repeat(200) });
    expect(sink.stats().dropped).toBeGreaterThan(0);
    // sinkHandle() writes the queue into the ring first, waiting on the writer: let it move.
    pipe.release();
    const handle = sinkHandle(sink);
    handle.port.close();
    sink.handleEvent({ type: 'after-share' });
    await sink.close().catch(() => undefined);
    const lines = await pipe.lines();
    const cov = expectLossAccounted(sink.stats(), lines)!;
    expect(cov.markedDropped).toBeGreaterThan(0);
    expect(lines.at(-1)!.type).toBe('after-share');
  });

  it('an event too big for the ring goes through the owner and is written whole, in the producer\'s order', async () => {
    const dir = dirs.make('big');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'), { ringBytes: 64 * 1024 });
    const posted = await inWorker(
      dir,
      `import { workerData, parentPort } from 'node:worker_threads';
       import { connectSink } from '${RINGLOG_URL.href}';
       const s = connectSink(workerData.handle);
       s.handleEvent({ type: 'small', n: 1 });
       s.handleEvent({ type: 'big', blob: 'b'.repeat(200_000) });
       await s.flush();
       parentPort.postMessage('flushed');`,
      sinkHandle(sink),
    );
    const flushed = posted.includes('flushed');
    expect(flushed).toBe(true);
    await sink.close();
    const lines = readLines(dir, 'events.jsonl').lines;
    expect(lines.map((l) => l.type)).toEqual(['small', 'big']);
    expect((lines[1]!.blob as string).length).toBe(200_000);
  });

  it('hostile events from a producer thread: a throwing getter becomes an event_rejected marker in its place; a handleEvent from inside a getter is placed right after', async () => {
    const dir = dirs.make('hostile');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'));
    await inWorker(
      dir,
      `import { workerData } from 'node:worker_threads';
       import { connectSink } from '${RINGLOG_URL.href}';
       const s = connectSink(workerData.handle);
       s.handleEvent({ type: 'a' });
       s.handleEvent({ type: 'b', get bad() { throw new Error('no'); } });
       s.handleEvent({ type: 'c', get re() { s.handleEvent({ type: 'inner' }); return 1; } });
       s.handleEvent(42);
       await s.flush();`,
      sinkHandle(sink),
    );
    await sink.close();
    const lines = readLines(dir, 'events.jsonl').lines;
    expect(lines.map((l) => l.type)).toEqual(['a', 'event_rejected', 'c', 'inner', 'event_rejected']);
    expect(lines[1]!.reason).toMatch(/Error: no/);
    expect(lines[2]!.re).toBe(1);
    expect(lines[4]!.reason).toMatch(/not an object/);
    expect(coverage(lines).problems).toEqual([]);
  });

  it('no writer thread at all (it dies at once, three times): the owner writes what producer threads place, on its own, while it logs nothing itself', async () => {
    const dir = dirs.make('no-writer');
    const r = await runChildWithEnv(
      `import { Worker } from 'node:worker_threads';
       import { JsonlEventSink, sinkHandle } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2] + '/event_log.jsonl', { overload: 'block', ringBytes: 64 * 1024 });
       const runs = [0, 1].map((producer) => {
         const handle = sinkHandle(sink);
         const w = new Worker(\`
           const { workerData, parentPort } = require('node:worker_threads');
           import(workerData.lib).then(async ({ connectSink }) => {
             const out = connectSink(workerData.handle);
             for (let seq = 0; seq < 20000; seq++) out.handleEvent({ type: 'work', producer: workerData.producer, seq });
             await out.flush();
             parentPort.postMessage('flushed');
           });\`, { eval: true, workerData: { lib: '%RINGLOG%', handle, producer }, transferList: [handle.port] });
         return new Promise((resolve) => { let flushed = false; w.on('message', () => (flushed = true)); w.on('exit', () => resolve(flushed)); });
       });
       const flushed = await Promise.all(runs);
       const stats = sink.stats();
       await sink.close();
       console.log(JSON.stringify({ flushed, workerRestarts: stats.workerRestarts }));`,
      [dir],
      { env: { RINGLOG_TEST_INJECT: JSON.stringify({ crashAfterBatches: 0 }) } },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/writing continues on the caller's thread/);
    expect(lastJson<{ flushed: boolean[]; workerRestarts: number }>(r)).toEqual({ flushed: [true, true], workerRestarts: 2 });
    const lines = readLines(dir).lines;
    expect(lines).toHaveLength(40_000);
    expect(coverage(lines).problems).toEqual([]);
    expect(seqProblems(lines, 2, 20_000)).toEqual([]);
  });
});
