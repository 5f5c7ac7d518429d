// One writer thread for the whole process: every sink of the process is served by it (sinks with
// writerResourceLimits of their own get a thread per setting), it starts with the first sink and
// ends with the last, and its death affects every sink the same way a sink's own writer's did —
// each resumes from its last line, nothing lost or doubled.

import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rng } from '../dist/demo/corpus.js';
import { JsonlEventSink, readEvents, type SinkError } from '../dist/src/index.js';
import { BASE_NAME, coverage, makeFifo, readLines, RINGLOG_URL, startFifoReader, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Threads of this process now (Linux /proc). */
function threads(): number {
  return Number(/^Threads:\s+(\d+)/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]);
}

async function waitFor(cond: () => boolean, what: string, limitMs = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > limitMs) throw new Error(`gave up waiting for ${what}`);
    await sleep(2);
  }
}

/** Every index 0..n-1 exactly once, in order, no marker, each line the event logged as number n. */
function expectComplete(dir: string, base: string, n: number, tag: string): void {
  const { lines } = readLines(dir, base);
  const cov = coverage(lines);
  expect(cov.problems, `${base}`).toEqual([]);
  expect(cov.markers, `${base}: nothing dropped`).toBe(0);
  expect(lines.length, base).toBe(n);
  const wrong = lines.filter((l, i) => l.sink !== tag || l.n !== i).slice(0, 3);
  expect(wrong, base).toEqual([]);
}

describe('one writer thread for the whole process', () => {
  it('200 sinks are served by one extra thread, and every file is complete', async () => {
    const dir = dirs.make('many');
    // The library loaded and one writer started and ended: what is left is the baseline.
    const warm = JsonlEventSink.open(path.join(dir, 'warm.jsonl'));
    await warm.close();
    await waitFor(() => warm.writerThread === undefined, 'the warm-up writer to be let go of');
    const before = threads();
    const SINKS = 200;
    const PER = 50;
    const sinks = Array.from({ length: SINKS }, (_, i) => JsonlEventSink.open(path.join(dir, `s${i}`, BASE_NAME)));
    for (let k = 0; k < PER; k++) {
      for (let i = 0; i < SINKS; i++) sinks[i]!.handleEvent({ type: 'tick', sink: `s${i}`, n: k });
      if (k % 10 === 9) await new Promise((r) => setImmediate(r));
    }
    await Promise.all(sinks.map((s) => s.flush()));
    // One writer thread; the janitor's compression thread is not started (no compress option).
    expect(threads() - before).toBeLessThanOrEqual(1);
    expect(new Set(sinks.map((s) => s.writerThread)).size).toBe(1);
    await Promise.all(sinks.map((s) => s.close()));
    for (let i = 0; i < SINKS; i++) expectComplete(path.join(dir, `s${i}`), BASE_NAME, PER, `s${i}`);
  });

  it('20 sinks rotating with compress: gzip share one compression thread; every segment is compressed and every set reads back whole', async () => {
    const dir = dirs.make('compress-shared');
    const warm = JsonlEventSink.open(path.join(dir, 'warm.jsonl'));
    await warm.close();
    await waitFor(() => warm.writerThread === undefined, 'the warm-up writer to be let go of');
    const before = threads();
    const SINKS = 20;
    const PER = 300;
    const sinks = Array.from({ length: SINKS }, (_, i) => JsonlEventSink.open(path.join(dir, `s${i}`, BASE_NAME), { rotateBytes: 8 * 1024, compress: 'gzip' }));
    let most = 0;
    for (let k = 0; k < PER; k++) {
      for (let i = 0; i < SINKS; i++) sinks[i]!.handleEvent({ type: 'tick', sink: `s${i}`, n: k, text: 'y'.repeat(100) });
      if (k % 20 === 19) {
        await new Promise((r) => setTimeout(r, 1));
        most = Math.max(most, threads() - before);
      }
    }
    await Promise.all(sinks.map((s) => s.close()));
    // The writer thread and the compression thread, whatever the number of sinks compressing.
    expect(most).toBeLessThanOrEqual(2);
    for (let i = 0; i < SINKS; i++) {
      const d = path.join(dir, `s${i}`);
      const ns: number[] = [];
      for await (const e of readEvents<{ n: number }>(path.join(d, BASE_NAME))) ns.push(e.n);
      expect(ns, `s${i}`).toEqual(Array.from({ length: PER }, (_, n) => n));
      // Every closed segment compressed; the last one, current at close, stays plain.
      const { rotations, segmentsCompressed } = sinks[i]!.stats();
      expect(rotations, `s${i}`).toBeGreaterThan(2);
      expect(segmentsCompressed, `s${i}`).toBe(rotations);
      const plain = fs.readdirSync(d).filter((f) => /-\d{6}\.jsonl$/.test(f));
      expect(plain, `s${i}`).toEqual([`event_log-${String(rotations).padStart(6, '0')}.jsonl`]);
    }
  });

  it('the last sink to close lets the thread end; the next sink starts a new one', async () => {
    const dir = dirs.make('lifecycle');
    const a = JsonlEventSink.open(path.join(dir, 'a.jsonl'));
    const b = JsonlEventSink.open(path.join(dir, 'b.jsonl'));
    const thread = a.writerThread;
    expect(thread).toBeDefined();
    expect(b.writerThread).toBe(thread);
    let ended = false;
    thread!.once('exit', () => (ended = true));
    a.handleEvent({ type: 'tick', sink: 'a', n: 0 });
    await a.close();
    // b still logs through the same thread.
    b.handleEvent({ type: 'tick', sink: 'b', n: 0 });
    await b.flush();
    expect(ended).toBe(false);
    expect(b.writerThread).toBe(thread);
    await b.close();
    await waitFor(() => ended, 'the writer thread to end after the last sink closed');
    const c = JsonlEventSink.open(path.join(dir, 'c.jsonl'));
    c.handleEvent({ type: 'tick', sink: 'c', n: 0 });
    await c.flush();
    expect(c.writerThread).toBeDefined();
    expect(c.writerThread).not.toBe(thread);
    await c.close();
    expectComplete(dir, 'a.jsonl', 1, 'a');
    expectComplete(dir, 'b.jsonl', 1, 'b');
    expectComplete(dir, 'c.jsonl', 1, 'c');
  });

  it('sinks with writerResourceLimits of their own get a thread of their own', async () => {
    const dir = dirs.make('limits');
    const plain = JsonlEventSink.open(path.join(dir, 'plain.jsonl'));
    const limited = JsonlEventSink.open(path.join(dir, 'limited.jsonl'), { writerResourceLimits: { maxOldGenerationSizeMb: 64 } });
    const limited2 = JsonlEventSink.open(path.join(dir, 'limited2.jsonl'), { writerResourceLimits: { maxOldGenerationSizeMb: 64 } });
    expect(limited.writerThread).toBeDefined();
    expect(limited.writerThread).not.toBe(plain.writerThread);
    expect(limited2.writerThread).toBe(limited.writerThread);
    await Promise.all([plain.close(), limited.close(), limited2.close()]);
  });

  it('a sink on a FIFO nobody reads gets a thread of its own: the other sinks keep being written while it is stuck in write(2)', async () => {
    const dir = dirs.make('fifo-apart');
    const fifo = path.join(dir, 'pipe.jsonl');
    const gate = path.join(dir, 'gate');
    await makeFifo(fifo);
    const reader = startFifoReader(fifo, path.join(dir, 'copy.jsonl'), { gateFile: gate, fastFlag: gate });
    const stuck = JsonlEventSink.open(fifo, { overload: 'drop' });
    const file = JsonlEventSink.open(path.join(dir, 'file.jsonl'));
    expect(stuck.writerThread).not.toBe(file.writerThread);
    // Far more than the pipe holds (64 KiB): the FIFO's writer blocks in write(2).
    for (let n = 0; n < 2000; n++) stuck.handleEvent({ type: 'pipe', n, pad: 'p'.repeat(500) });
    for (let n = 0; n < 500; n++) file.handleEvent({ sink: 'file', n });
    await file.flush();
    expectComplete(dir, 'file.jsonl', 500, 'file');
    fs.writeFileSync(gate, '');
    await file.close();
    await stuck.close().catch(() => undefined);
    expect((await reader).code).toBe(0);
    const piped = fs.readFileSync(path.join(dir, 'copy.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    expect(piped.length).toBeGreaterThan(0);
    expect(coverage(piped.map((l) => JSON.parse(l))).problems).toEqual([]);
  });

  it('a sink the writer cannot serve (its redaction module will not load in the thread) writes on its own thread; the others keep the writer', async () => {
    const dir = dirs.make('attach-failed');
    const mod = path.join(dir, 'main-thread-only.cjs');
    fs.writeFileSync(
      mod,
      `const { isMainThread } = require('node:worker_threads');
       if (!isMainThread) throw new Error('this redaction module loads on the main thread only');
       module.exports = (event) => ({ ...event, redacted_by: 'custom' });`,
    );
    const errors: SinkError[] = [];
    const odd = JsonlEventSink.open(path.join(dir, 'odd.jsonl'), { redact: { custom: mod }, onError: (e) => errors.push(e) });
    const plain = JsonlEventSink.open(path.join(dir, 'plain.jsonl'));
    for (let n = 0; n < 500; n++) {
      odd.handleEvent({ type: 'tick', sink: 'odd', n });
      plain.handleEvent({ type: 'tick', sink: 'plain', n });
      if (n % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    await Promise.all([odd.flush(), plain.flush()]);
    await waitFor(() => errors.length > 0, 'the report that the writer cannot serve the sink');
    expect(errors[0]!.code).toBe('ERR_RINGLOG_WORKER');
    expect(String((errors[0]!.cause as Error).message)).toMatch(/main thread only/);
    expect(odd.writerThread).toBeUndefined();
    expect(plain.writerThread).toBeDefined();
    await Promise.all([odd.close(), plain.close()]);
    expectComplete(dir, 'odd.jsonl', 500, 'odd');
    expectComplete(dir, 'plain.jsonl', 500, 'plain');
    expect(readLines(dir, 'odd.jsonl').lines.every((l) => l.redacted_by === 'custom')).toBe(true);
  });

  it('the shared writer terminated at random moments while 3 sinks log (one closing midway): every file gap-free, nothing lost or doubled', async () => {
    const seed = Number(process.env.RINGLOG_TEST_SEED ?? Date.now() % 100_000);
    const rand = rng(seed);
    const dir = dirs.make('terminate-shared');
    const names = ['a', 'b', 'c'];
    const sinks = names.map((t) => JsonlEventSink.open(path.join(dir, `${t}.jsonl`), { rotateBytes: 64 * 1024 }));
    const counts = [0, 0, 0];
    const open = [true, true, true];
    const log = (k: number): void => {
      for (let j = 0; j < k; j++) {
        const i = Math.floor(rand() * 3);
        if (!open[i]) continue;
        sinks[i]!.handleEvent({ type: 'tick', sink: names[i], n: counts[i]!++, text: 'x'.repeat(Math.floor(rand() * 400)) });
      }
    };
    const TERMINATIONS = 12;
    try {
      for (let t = 0; t < TERMINATIONS; t++) {
        log(100 + Math.floor(rand() * 600));
        if (rand() < 0.5) await new Promise((r) => setImmediate(r));
        else await sleep(Math.floor(rand() * 3));
        const live = sinks.filter((_, i) => open[i]);
        const restarts = live.map((s) => s.stats().workerRestarts);
        const writer = live[0]!.writerThread;
        expect(writer, 'a writer thread is running').toBeDefined();
        await writer!.terminate();
        log(Math.floor(rand() * 50));
        await waitFor(() => live.every((s, i) => s.stats().workerRestarts === restarts[i]! + 1), `restart ${t + 1} (seed ${seed})`);
        // Progress before the next kill (three deaths without progress end the restarts, by design).
        log(3);
        await Promise.all(live.map((s) => s.flush()));
        if (t === TERMINATIONS / 2) {
          open[1] = false;
          await sinks[1]!.close();
        }
      }
      log(300);
      await Promise.all(sinks.map((s) => s.close()));
    } catch (err) {
      (err as Error).message += ` (seed ${seed}; RINGLOG_TEST_SEED=${seed} replays the schedule)`;
      throw err;
    }
    names.forEach((t, i) => {
      expectComplete(dir, `${t}.jsonl`, counts[i]!, t);
      expect(sinks[i]!.stats(), t).toMatchObject({ accepted: counts[i], written: counts[i], dropped: 0, pending: 0 });
    });
    expect(sinks[0]!.stats().workerRestarts).toBe(TERMINATIONS);
  });
});

// A child that opens `n` sinks in one process under a descriptor limit, logs 3 events into each,
// then ends by close() or by process.exit() without closing; it reports the most descriptors it
// saw open (sampled from /proc/self/fd).
const MANY_SINKS = `
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink } from '%RINGLOG%';
const [dir, nText, ending] = process.argv.slice(2);
const n = Number(nText);
let most = 0;
const sample = () => { most = Math.max(most, fs.readdirSync('/proc/self/fd').length); };
const sinks = [];
for (let i = 0; i < n; i++) {
  sinks.push(JsonlEventSink.open(path.join(dir, 's' + i, 'event_log.jsonl')));
  if (i % 500 === 0) sample();
}
for (let r = 0; r < 3; r++) {
  for (let i = 0; i < n; i++) sinks[i].handleEvent({ type: 'turn', sink: i, n: r });
  await new Promise((res) => setTimeout(res, 20));
  sample();
}
if (ending === 'exit') {
  console.log(JSON.stringify({ most }));
  process.exit(0);
}
await Promise.all(sinks.map((s) => s.flush()));
sample();
await Promise.all(sinks.map((s) => s.close()));
console.log(JSON.stringify({ most }));
`;

/** How many of the child's `n` sets hold exactly its 3 events, indexes 0..2, in order. */
function completeSets(dir: string, n: number): number {
  let complete = 0;
  for (let i = 0; i < n; i++) {
    const text = fs.readFileSync(path.join(dir, 'sets', `s${i}`, BASE_NAME), 'utf8');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { index: number; sink: number; n: number });
    if (lines.length === 3 && lines.every((l, k) => l.index === k && l.n === k && l.sink === i)) complete++;
  }
  return complete;
}

function runUnderLimit(limit: number, dir: string, n: number, ending: 'close' | 'exit'): { code: number | null; stdout: string; stderr: string } {
  const script = path.join(dir, 'many.mjs');
  fs.writeFileSync(script, MANY_SINKS.replaceAll('%RINGLOG%', RINGLOG_URL.href));
  const r = spawnSync('bash', ['-c', `ulimit -n ${limit} && exec "$0" "$@"`, process.execPath, script, path.join(dir, 'sets'), String(n), ending], {
    encoding: 'utf8',
    timeout: 240_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('file descriptors stay bounded however many sinks are open', () => {
  it('10,000 sinks in one process under `ulimit -n 1024`: every file complete, at most a few hundred descriptors open', async () => {
    const dir = dirs.make('ten-thousand');
    const r = runUnderLimit(1024, dir, 10_000, 'close');
    expect(r.code, r.stderr).toBe(0);
    const { most } = JSON.parse(r.stdout.trim().split('\n').pop()!) as { most: number };
    // The writer keeps at most a quarter of the limit open; the rest is the process's own.
    expect(most).toBeLessThan(512);
    expect(completeSets(dir, 10_000)).toBe(10_000);
  });

  it('2,000 sinks under `ulimit -n 256` ending by process.exit() without close(): the exit writes every file whole', async () => {
    const dir = dirs.make('exit-many');
    const r = runUnderLimit(256, dir, 2_000, 'exit');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(completeSets(dir, 2_000)).toBe(2_000);
  });
});
