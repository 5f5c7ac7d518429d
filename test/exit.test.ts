// Contract 6 (exit): process exit flushes automatically: process.exit() right after logging, exit
// in the same tick as open (before the writer thread could start), the natural end of the loop,
// an uncaught exception. Each scenario runs in a child process.

import { afterEach, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { BASE_NAME, readLines, runChild, segmentName, tempDirs, type ChildResult } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function expectClean(res: ChildResult, code = 0): void {
  expect(res.timedOut, `child hung; stderr: ${res.stderr}`).toBe(false);
  expect(res.code, `stderr: ${res.stderr}`).toBe(code);
  expect(res.stderr).not.toContain('ringlog: exit flush failed');
}

/** Every event i of n is in the set, in order, with its own payload. */
function expectAll(dir: string, n: number, base = BASE_NAME): void {
  const { lines } = readLines(dir, base);
  expect(lines).toHaveLength(n);
  expect(lines.findIndex((l, i) => l.index !== i || l.i !== i)).toBe(-1);
}

describe('exit flush', () => {
  it('writes every event when the child calls process.exit() right after logging (writer running)', async () => {
    const dir = dirs.make('exit-explicit');
    const N = 20_000;
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const [base, n] = [process.argv[2], Number(process.argv[3])];
       const sink = JsonlEventSink.open(base);
       sink.handleEvent({ type: 'warmup', i: 0 });
       await sink.flush(); // the writer thread is certainly up and has written
       for (let i = 1; i < n; i++) sink.handleEvent({ type: 'ev', i, text: 'payload '.repeat(i % 20) });
       process.exit(0);`,
      [path.join(dir, BASE_NAME), String(N)],
    );
    expectClean(res);
    expectAll(dir, N);
  });

  it.each([1, 200, 5000])('writes every event when the child exits in the same tick as open (before the writer started): %i events', async (N) => {
    // A worker thread takes tens of milliseconds to boot; a few events and exit take far less.
    const dir = dirs.make('exit-same-tick');
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2]);
       for (let i = 0; i < Number(process.argv[3]); i++) sink.handleEvent({ type: 'ev', i });
       process.exit(0);`,
      [path.join(dir, BASE_NAME), String(N)],
    );
    expectClean(res);
    expectAll(dir, N);
  });

  it('writes every event at the natural end of the program, without close()', async () => {
    const dir = dirs.make('exit-natural');
    const N = 30_000;
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       import { makeCorpus } from '%CORPUS%';
       const sink = JsonlEventSink.open(process.argv[2]);
       const corpus = makeCorpus(1000, 1, true);
       const n = Number(process.argv[3]);
       // Some events in later ticks too, then nothing keeps the loop alive.
       for (let i = 0; i < n / 2; i++) sink.handleEvent({ ...corpus[i % 1000], i });
       setTimeout(() => { for (let i = n / 2; i < n; i++) sink.handleEvent({ ...corpus[i % 1000], i }); }, 5);`,
      [path.join(dir, BASE_NAME), String(N)],
    );
    expectClean(res);
    expectAll(dir, N);
  });

  it('writes events still in the overflow queue and big external records at exit (small ring)', async () => {
    const dir = dirs.make('exit-queue');
    const N = 3000;
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2], { ringBytes: 65536 });
       for (let i = 0; i < Number(process.argv[3]); i++) {
         sink.handleEvent(i % 500 === 250 ? { type: 'big', i, text: 'B'.repeat(300_000) } : { type: 'ev', i, text: 'x'.repeat(200) });
       }
       process.exit(0);`,
      [path.join(dir, BASE_NAME), String(N)],
    );
    expectClean(res);
    expectAll(dir, N);
    const big = readLines(dir).lines.filter((l) => l.type === 'big');
    expect(big.map((l) => l.i)).toEqual([250, 750, 1250, 1750, 2250, 2750]);
    for (const l of big) expect(l.text).toBe('B'.repeat(300_000));
  });

  it('rotates correctly when the exit drain writes (rotateBytes small)', async () => {
    const dir = dirs.make('exit-rotate');
    const N = 2000;
    const rotateBytes = 4096;
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2], { rotateBytes: Number(process.argv[4]) });
       for (let i = 0; i < Number(process.argv[3]); i++) sink.handleEvent({ type: 'ev', i, text: 'r'.repeat(i % 97) });
       process.exit(0);`,
      [path.join(dir, BASE_NAME), String(N), String(rotateBytes)],
    );
    expectClean(res);
    expectAll(dir, N);
    const { files } = readLines(dir);
    expect(files.length).toBeGreaterThan(10);
    expect(files.map((f) => f.name)).toEqual(files.map((_, n) => segmentName(n)));
    for (const f of files) expect(f.bytes).toBeLessThanOrEqual(rotateBytes);
  });

  it('writes every event when the child dies of an uncaught exception', async () => {
    const dir = dirs.make('exit-throw');
    const N = 4000;
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2]);
       for (let i = 0; i < Number(process.argv[3]); i++) sink.handleEvent({ type: 'ev', i });
       throw new Error('agent loop crashed');`,
      [path.join(dir, BASE_NAME), String(N)],
    );
    expect(res.timedOut).toBe(false);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('agent loop crashed');
    expect(res.stderr).not.toContain('ringlog: exit flush failed');
    expectAll(dir, N);
  });

  it('flushes every open sink of the process, and keeps the exit code', async () => {
    const a = dirs.make('exit-two-a');
    const b = dirs.make('exit-two-b');
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sa = JsonlEventSink.open(process.argv[2]);
       const sb = JsonlEventSink.open(process.argv[3], { rotateBytes: 1000 });
       for (let i = 0; i < 1000; i++) { sa.handleEvent({ type: 'a', i }); sb.handleEvent({ type: 'b', i }); }
       process.exit(7);`,
      [path.join(a, BASE_NAME), path.join(b, BASE_NAME)],
    );
    expectClean(res, 7);
    expectAll(a, 1000);
    expectAll(b, 1000);
  });

  it('leaves a closed sink alone at exit and the file as close() left it', async () => {
    const dir = dirs.make('exit-closed');
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2]);
       for (let i = 0; i < 100; i++) sink.handleEvent({ type: 'ev', i });
       await sink.close();
       sink.handleEvent({ type: 'late', i: 100 });
       console.log(JSON.stringify(sink.stats()));
       process.exit(0);`,
      [path.join(dir, BASE_NAME)],
    );
    expectClean(res);
    expectAll(dir, 100);
    expect(JSON.parse(res.stdout)).toMatchObject({ accepted: 101, written: 100, dropped: 1 });
  });

  it('appends after the lines of a child that exited without close()', async () => {
    const dir = dirs.make('exit-then-append');
    const base = path.join(dir, BASE_NAME);
    const script = `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2], { mode: 'append' });
       const first = sink.eventCount();
       for (let i = 0; i < 500; i++) sink.handleEvent({ type: 'ev', i: first + i });
       process.exit(0);`;
    for (let run = 0; run < 3; run++) expectClean(await runChild(script, [base]));
    expect(readLines(dir).lines.map((l) => l.index)).toEqual(range(1500));
    expectAll(dir, 1500);
  });
});
