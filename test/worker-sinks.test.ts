// Sinks opened inside worker threads, when the main thread ends the process: process.exit() on
// the main thread (the worker still runs during the main thread's 'exit' listeners, so its writer
// finishes, waited for) and worker.terminate() (the worker's writer thread goes with it, so the
// main thread writes what its ring holds). Real child processes, real worker threads, real files.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { coverage, expectedLine, makeFifo, readLines, runChild, startFifoReader, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const EVENTS = 20_000;

/**
 * The main thread loads ringlog (as an application that logs anywhere does), starts a worker that
 * opens a sink (and waits for its writer to run) and logs EVENTS events without closing it, then, once the worker says it logged
 * them, ends as argv[3] says: 'exit' (process.exit()), 'terminate' (await worker.terminate(),
 * then the loop runs dry), 'terminate-exit' (terminate, then process.exit(5)).
 */
const CHILD = `
import { Worker } from 'node:worker_threads';
import '%RINGLOG%';
const [dir, how, rotate] = process.argv.slice(2);
const worker = new Worker(\`
  const { workerData, parentPort } = require('node:worker_threads');
  import(workerData.lib).then(async ({ JsonlEventSink }) => {
    const sink = JsonlEventSink.open(workerData.dir + '/event_log.jsonl', workerData.rotate === '-' ? {} : { rotateBytes: Number(workerData.rotate) });
    const log = (i) => sink.handleEvent({ type: 'work', i, 'é\\\\u0000"k': i % 3, nested: { list: [i, 'x'.repeat(i % 40)] } }, { frameDepth: i % 4 });
    // The writer thread has written the first event before the burst: the main thread's exit waits
    // at most 2 s for it (adopt.ts), which a thread still starting on a loaded machine could spend.
    log(0);
    await sink.flush();
    for (let i = 1; i < workerData.events; i++) log(i);
    parentPort.postMessage('logged');
    setInterval(() => {}, 1000);
  });\`, { eval: true, workerData: { lib: '%RINGLOG%', dir, events: ${EVENTS}, rotate } });
worker.on('message', async () => {
  if (how === 'exit') process.exit(0);
  await worker.terminate();
  if (how === 'terminate-exit') process.exit(5);
});
`;

function event(i: number): object {
  return { type: 'work', i, 'é\u0000"k': i % 3, nested: { list: [i, 'x'.repeat(i % 40)] } };
}

describe('a sink opened in a worker thread keeps every event when the main thread ends the process', () => {
  it.each([
    ['exit', 'process.exit() on the main thread', 0],
    ['terminate', 'worker.terminate(), then the loop runs dry', 0],
    ['terminate-exit', 'worker.terminate(), then process.exit(5)', 5],
  ] as const)('%s: %s — every event written, gap-free, each line as JSON.stringify writes it', async (how, _what, code) => {
    const dir = dirs.make(`worker-sink-${how}`);
    const r = await runChild(CHILD, [dir, how, '-']);
    expect(r.timedOut).toBe(false);
    expect(r.code, r.stderr).toBe(code);
    expect(r.stderr).toBe('');
    const { lines, raw } = readLines(dir);
    expect(lines).toHaveLength(EVENTS);
    expect(coverage(lines).problems).toEqual([]);
    // A worker's sink interns its keys in a key area of the ring, which the main thread reads: the bytes are still JSON's.
    for (const i of [0, 1, 2, 777, EVENTS - 1]) {
      expect(raw[i]).toBe(expectedLine(i, lines[i]!.emitted_at_ms, event(i), { frameDepth: i % 4 }));
    }
  });

  it('worker.terminate() with a small rotateBytes: the main thread writes the rest across rotations, and the set reads whole', async () => {
    const dir = dirs.make('worker-sink-rotating');
    const r = await runChild(CHILD, [dir, 'terminate', String(64 * 1024)]);
    expect(r.code, r.stderr).toBe(0);
    const set = readLines(dir);
    expect(set.lines).toHaveLength(EVENTS);
    expect(coverage(set.lines).problems).toEqual([]);
    // It rotated: the main thread's drain went on in the numbered segments.
    expect(set.files.length).toBeGreaterThan(2);
  });

  it.each(['close', 'end'] as const)('a worker thread’s rotating sinks (%s), flushSync() half way: every segment descriptor is closed by the thread that opened it — no warning, none left open, every set whole', async (how) => {
    const dir = dirs.make(`worker-fds-${how}`);
    // Each worker keeps one sink open throughout (so its writer thread lives on), opens 3 rotating
    // sinks, logs into them with a flushSync() half way (its own thread then writes and rotates
    // too), and 'close' closes them and counts the process's descriptors while the writer still
    // runs; 'end' lets the thread end with them open (its own exit writes them).
    const r = await runChild(
      `import { Worker } from 'node:worker_threads';
       import '%RINGLOG%';
       const [dir, how] = process.argv.slice(2);
       // One after the other: the descriptors counted are the process's, one worker's at a time.
       const run = (w) => new Promise((resolve) => {
         const worker = new Worker(\`
           const { workerData, parentPort } = require('node:worker_threads');
           const fs = require('node:fs');
           // The process's descriptors open on this test's files (others come and go meanwhile).
           const fds = () => fs.readdirSync('/proc/self/fd').filter((f) => {
             try { return fs.readlinkSync('/proc/self/fd/' + f).startsWith(workerData.dir); } catch { return false; }
           }).length;
           import(workerData.lib).then(async ({ JsonlEventSink }) => {
             const keep = JsonlEventSink.open(workerData.dir + '/keep' + workerData.w + '.jsonl');
             keep.handleEvent({ type: 'keep' });
             await keep.flush();
             const before = fds();
             const sinks = [0, 1, 2].map((k) => JsonlEventSink.open(workerData.dir + '/w' + workerData.w + '-' + k + '.jsonl', { rotateBytes: 4096 }));
             for (let i = 0; i < 600; i++) {
               for (const s of sinks) s.handleEvent({ type: 'fd', i, pad: 'x'.repeat(i % 90) });
               if (i === 300) for (const s of sinks) s.flushSync();
             }
             if (workerData.how !== 'close') return;
             for (const s of sinks) await s.close();
             parentPort.postMessage(fds() - before);
             await keep.close();
           });\`, { eval: true, workerData: { lib: '%RINGLOG%', dir, w, how } });
         let left = null;
         worker.on('message', (n) => (left = n));
         worker.on('exit', () => resolve(left));
       });
       const left = [await run(0), await run(1)];
       console.log(JSON.stringify({ left }));`,
      [dir, how],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const { left } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { left: (number | null)[] };
    if (how === 'close') expect(left).toEqual([0, 0]);
    for (const w of [0, 1]) {
      for (const k of [0, 1, 2]) {
        const set = readLines(dir, `w${w}-${k}.jsonl`);
        expect(set.lines.map((l) => l.i)).toEqual(Array.from({ length: 600 }, (_, i) => i));
        expect(coverage(set.lines).problems).toEqual([]);
        expect(set.files.length).toBeGreaterThan(3);
      }
    }
  });

  it('a worker thread’s sink on a FIFO keeps its one descriptor through flushSync(): the reader gets every line, end-of-file only at close', async () => {
    const dir = dirs.make('worker-fifo');
    const fifo = path.join(dir, 'pipe.jsonl');
    await makeFifo(fifo);
    const reader = startFifoReader(fifo, path.join(dir, 'copy.jsonl'), { sleepMs: 0 });
    const r = await runChild(
      `import { Worker } from 'node:worker_threads';
       import '%RINGLOG%';
       const worker = new Worker(\`
         const { workerData } = require('node:worker_threads');
         import(workerData.lib).then(async ({ JsonlEventSink }) => {
           const sink = JsonlEventSink.open(workerData.fifo);
           sink.handleEvent({ type: 'f', i: 0 });
           sink.flushSync();
           for (let i = 1; i < 500; i++) sink.handleEvent({ type: 'f', i });
           sink.flushSync();
           for (let i = 500; i < 1000; i++) sink.handleEvent({ type: 'f', i });
           await sink.close();
         });\`, { eval: true, workerData: { lib: '%RINGLOG%', fifo: process.argv[2] } });
       worker.on('error', (err) => { console.error(err); process.exitCode = 1; });`,
      [fifo],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect((await reader).code).toBe(0);
    const lines = fs.readFileSync(path.join(dir, 'copy.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
    expect(lines.map((l) => (JSON.parse(l) as { i: number }).i)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  // Node closes a terminated writer's descriptors (it is tracked when started from a worker): the
  // numbers are free for anything, often the replacement thread's own. The replacement must open
  // the segment again, never write through the old number.
  it('a worker thread’s writer dies (terminated) with its segment open: the replacement carries on in the same set, nothing is written into files opened since', async () => {
    const dir = dirs.make('worker-writer-dies');
    const r = await runChild(
      `import { Worker } from 'node:worker_threads';
       import '%RINGLOG%';
       const [dir] = process.argv.slice(2);
       const worker = new Worker(\`
         const { workerData } = require('node:worker_threads');
         const fs = require('node:fs');
         import(workerData.lib).then(async ({ JsonlEventSink }) => {
           const sink = JsonlEventSink.open(workerData.dir + '/event_log.jsonl', { rotateBytes: 8192 });
           for (let i = 0; i < 300; i++) sink.handleEvent({ type: 'w', i });
           await sink.flush();
           await sink.writerThread.terminate();
           // The lowest free numbers now: the ones Node just closed with the writer.
           const decoys = Array.from({ length: 32 }, (_, k) => fs.openSync(workerData.dir + '/decoy' + k, 'a'));
           for (let i = 300; i < 600; i++) sink.handleEvent({ type: 'w', i });
           await sink.close();
           for (const fd of decoys) fs.closeSync(fd);
         });\`, { eval: true, workerData: { lib: '%RINGLOG%', dir } });
       worker.on('error', (err) => { console.error(err); process.exitCode = 1; });`,
      [dir],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    for (let k = 0; k < 32; k++) expect(fs.readFileSync(path.join(dir, `decoy${k}`), 'utf8')).toBe('');
    const set = readLines(dir);
    expect(set.lines.map((l) => l.i)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    expect(coverage(set.lines).problems).toEqual([]);
  });

  it('a terminated worker left events, and a new sink took its path since: the main thread does not write the old session into the new one, and says so', async () => {
    const dir = dirs.make('worker-sink-retaken');
    const r = await runChild(
      `import { Worker } from 'node:worker_threads';
       import { JsonlEventSink } from '%RINGLOG%';
       const dir = process.argv[2];
       const worker = new Worker(\`
         const { workerData, parentPort } = require('node:worker_threads');
         import(workerData.lib).then(({ JsonlEventSink }) => {
           const sink = JsonlEventSink.open(workerData.dir + '/event_log.jsonl');
           for (let i = 0; i < 20000; i++) sink.handleEvent({ type: 'old', i });
           parentPort.postMessage('logged');
           setInterval(() => {}, 1000);
         });\`, { eval: true, workerData: { lib: '%RINGLOG%', dir } });
       worker.on('message', async () => {
         await worker.terminate();
         // Its lock names a thread that is gone: a new session takes the path.
         const sink = JsonlEventSink.open(dir + '/event_log.jsonl');
         for (let i = 0; i < 3; i++) sink.handleEvent({ type: 'new', i });
         await sink.close();
       });`,
      [dir],
    );
    expect(r.code, r.stderr).toBe(0);
    const { lines } = readLines(dir);
    expect(lines.map((l) => [l.index, l.type])).toEqual([
      [0, 'new'],
      [1, 'new'],
      [2, 'new'],
    ]);
    expect(r.stderr).toMatch(/path is no longer its own/);
  });
});
