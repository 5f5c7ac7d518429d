// Sinks opened inside worker threads, when the main thread ends the process: process.exit() on
// the main thread (the worker still runs during the main thread's 'exit' listeners, so its writer
// finishes, waited for) and worker.terminate() (the worker's writer thread goes with it, so the
// main thread writes what its ring holds). Real child processes, real worker threads, real files.

import { afterEach, describe, expect, it } from 'vitest';
import { coverage, expectedLine, readLines, runChild, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const EVENTS = 20_000;

/**
 * The main thread loads ringlog (as an application that logs anywhere does), starts a worker that
 * opens a sink and logs EVENTS events without closing it, then, once the worker says it logged
 * them, ends as argv[3] says: 'exit' (process.exit()), 'terminate' (await worker.terminate(),
 * then the loop runs dry), 'terminate-exit' (terminate, then process.exit(5)).
 */
const CHILD = `
import { Worker } from 'node:worker_threads';
import '%RINGLOG%';
const [dir, how, rotate] = process.argv.slice(2);
const worker = new Worker(\`
  const { workerData, parentPort } = require('node:worker_threads');
  import(workerData.lib).then(({ JsonlEventSink }) => {
    const sink = JsonlEventSink.open(workerData.dir + '/event_log.jsonl', workerData.rotate === '-' ? {} : { rotateBytes: Number(workerData.rotate) });
    for (let i = 0; i < workerData.events; i++) {
      sink.handleEvent({ type: 'work', i, 'é\\\\u0000"k': i % 3, nested: { list: [i, 'x'.repeat(i % 40)] } }, { frameDepth: i % 4 });
    }
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
    // Keys are written whole by a worker's sink (never interned): the bytes are still JSON's.
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
