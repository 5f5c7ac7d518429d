// Contract 10 (README "Signals and exit"): ringlog never changes what the application decided
// about a signal. Alone, the process still dies of it, after everything is written; with other
// listeners — the real signal-exit package, an application's `once` handler, a handler that
// ignores the signal — ringlog writes what it has and lets them decide. Exit is last: events logged
// from any 'exit' listener are written. Every case is a real child process, read back afterwards.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { BASE_NAME, coverage, readLines, spawnScript, tempDirs, type ChildResult, type Line } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** The real signal-exit (a dev dependency), as the ESM build its package exports for `import`. */
const SIGNAL_EXIT = pathToFileURL(path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'node_modules', 'signal-exit', 'dist', 'mjs', 'index.js')).href;

/** Runs `source` (with %SIGNAL_EXIT% resolved) until it prints "ready", then sends `sig` (once or
 *  more: each "ready" line gets one). */
async function signalChild(source: string, sig: NodeJS.Signals, args: string[] = []): Promise<ChildResult> {
  let readies = 0;
  const run = spawnScript(source.replaceAll('%SIGNAL_EXIT%', SIGNAL_EXIT), args, {
    timeoutMs: 30_000,
    onStdout: (chunk) => {
      for (const line of chunk.split('\n')) {
        if (line === 'ready') {
          readies++;
          run.child.kill(sig);
        }
      }
    },
  });
  const r = await run.result;
  expect(readies, r.stderr).toBeGreaterThan(0);
  expect(r.timedOut, `the child hung after ${sig}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`).toBe(false);
  return r;
}

/** Every index from 0 once, in order, no markers; returns the events' types. */
function types(dir: string): string[] {
  const { lines } = readLines(dir);
  const cov = coverage(lines);
  expect(cov.problems).toEqual([]);
  expect(cov.markers).toBe(0);
  return lines.map((l: Line) => String(l.type));
}

/** Logs a start event and ticks until signalled; `setup` runs before or after open(). */
const WITH_SIGNAL_EXIT = `
import { onExit } from '%SIGNAL_EXIT%';
import { JsonlEventSink } from '%RINGLOG%';
const [base, order] = process.argv.slice(2);
let sink;
if (order === 'ringlog-first') sink = JsonlEventSink.open(base);
onExit((code, signal) => { sink.handleEvent({ type: 'signal-exit-handler', signal }); });
if (order !== 'ringlog-first') sink = JsonlEventSink.open(base);
sink.handleEvent({ type: 'start' });
let n = 0;
setInterval(() => sink.handleEvent({ type: 'tick', n: n++ }), 1);
setTimeout(() => console.log('ready'), 50);
`;

describe('signals', () => {
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    for (const order of ['ringlog-first', 'signal-exit-first'] as const) {
      it(`${sig} with signal-exit loaded (${order}): the process dies of it, every event written, signal-exit's handler's included`, async () => {
        const dir = dirs.make('sig-signal-exit');
        const r = await signalChild(WITH_SIGNAL_EXIT, sig, [path.join(dir, BASE_NAME), order]);
        expect(r.signal, r.stderr).toBe(sig);
        const t = types(dir);
        expect(t[0]).toBe('start');
        expect(t.at(-1)).toBe('signal-exit-handler');
        expect(fs.existsSync(path.join(dir, `${BASE_NAME}.lock`))).toBe(false);
      });
    }

    it(`${sig} with ringlog alone: the process dies of it, every event written`, async () => {
      const dir = dirs.make('sig-alone');
      const r = await signalChild(
        `import { JsonlEventSink } from '%RINGLOG%';
         const sink = JsonlEventSink.open(process.argv[2]);
         let n = 0;
         setInterval(() => { for (let i = 0; i < 100; i++) sink.handleEvent({ type: 'tick', n: n++ }); }, 1);
         setTimeout(() => console.log('ready'), 50);`,
        sig,
        [path.join(dir, BASE_NAME)],
      );
      expect(r.signal).toBe(sig);
      expect(types(dir).length).toBeGreaterThan(0);
    });
  }

  it("signal-exit without ringlog (the control): SIGTERM ends the process", async () => {
    const r = await signalChild(
      `import { onExit } from '%SIGNAL_EXIT%';
       onExit(() => {});
       setInterval(() => {}, 1000);
       console.log('ready');`,
      'SIGTERM',
    );
    expect(r.signal).toBe('SIGTERM');
  });

  for (const when of ['before open()', 'after open()'] as const) {
    it(`an application's process.once('SIGTERM', shutdown) added ${when}: its asynchronous shutdown completes and its events are written`, async () => {
      const dir = dirs.make('sig-once');
      const r = await signalChild(
        `import { JsonlEventSink } from '%RINGLOG%';
         const [base, when] = process.argv.slice(2);
         let sink;
         const shutdown = async () => {
           sink.handleEvent({ type: 'shutdown-start' });
           await new Promise((r) => setTimeout(r, 50));
           sink.handleEvent({ type: 'shutdown-complete' });
           await sink.close();
           console.log('shutdown complete');
           process.exit(0);
         };
         if (when === 'before open()') process.once('SIGTERM', shutdown);
         sink = JsonlEventSink.open(base);
         if (when === 'after open()') process.once('SIGTERM', shutdown);
         sink.handleEvent({ type: 'start' });
         setInterval(() => {}, 1000);
         console.log('ready');`,
        'SIGTERM',
        [path.join(dir, BASE_NAME), when],
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('shutdown complete');
      expect(types(dir)).toEqual(['start', 'shutdown-start', 'shutdown-complete']);
    });
  }

  it('a handler that re-raises the signal while another listener stays: the process lives on, the sink stays open and keeps its path', async () => {
    const dir = dirs.make('sig-reraise');
    const r = await signalChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       import * as fs from 'node:fs';
       const base = process.argv[2];
       const sink = JsonlEventSink.open(base);
       let heard = 0;
       // A persistent listener: it keeps the process alive through the re-raise below.
       process.on('SIGTERM', () => { heard++; });
       process.once('SIGTERM', () => { sink.handleEvent({ type: 'cleanup' }); process.kill(process.pid, 'SIGTERM'); });
       sink.handleEvent({ type: 'start' });
       // Once both deliveries were heard (the signal, then its re-raise), however late the parent
       // sends it: a fixed delay raced the parent and the signal's handling on a loaded machine.
       const after = async () => {
         if (heard < 2) return void setTimeout(after, 10);
         sink.handleEvent({ type: 'after', heard, lockHeld: fs.existsSync(base + '.lock') });
         await sink.close();
         console.log('closed');
       };
       after();
       console.log('ready');`,
      'SIGTERM',
      [path.join(dir, BASE_NAME)],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('closed');
    expect(types(dir)).toEqual(['start', 'cleanup', 'after']);
    expect(readLines(dir).lines.at(-1)).toMatchObject({ heard: 2, lockHeld: true });
  });

  it('a handler that keeps the process running: ringlog writes, stays out of the way, and is there again for the next signal', async () => {
    const dir = dirs.make('sig-ignore');
    const r = await signalChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2]);
       let signals = 0;
       process.on('SIGINT', () => {
         signals++;
         sink.handleEvent({ type: 'sigint', signals });
         if (signals === 3) process.exit(5);
         setTimeout(() => { sink.handleEvent({ type: 'still-running', signals }); console.log('ready'); }, 20);
       });
       sink.handleEvent({ type: 'start' });
       setInterval(() => {}, 1000);
       console.log('ready');`,
      'SIGINT',
      [path.join(dir, BASE_NAME)],
    );
    expect(r.code, r.stderr).toBe(5);
    expect(types(dir)).toEqual(['start', 'sigint', 'still-running', 'sigint', 'still-running', 'sigint']);
  });
});

/** Logs from an 'exit' listener added before or after open(), ending in the way given. */
const EXIT_LISTENER = `
import { JsonlEventSink } from '%RINGLOG%';
const [base, when, ending] = process.argv.slice(2);
const listener = (code) => {
  for (let i = 0; i < 3; i++) sink.handleEvent({ type: 'from-exit-listener', code, i });
};
let sink;
if (when === 'before') process.on('exit', listener);
sink = JsonlEventSink.open(base);
if (when === 'after') process.on('exit', listener);
for (let i = 0; i < 1000; i++) sink.handleEvent({ type: 'work', i });
if (ending === 'exit3') process.exit(3);
if (ending === 'throw') throw new Error('boom');
`;

describe('exit is last', () => {
  for (const when of ['before', 'after'] as const) {
    for (const [ending, code] of [['natural', 0], ['exit3', 3], ['throw', 1]] as const) {
      it(`events logged from an 'exit' listener added ${when} open() are written (${ending})`, async () => {
        const dir = dirs.make('exit-listener');
        const run = spawnScript(EXIT_LISTENER, [path.join(dir, BASE_NAME), when, ending]);
        const r = await run.result;
        expect(r.code).toBe(code);
        const t = types(dir);
        expect(t).toHaveLength(1003);
        expect(t.slice(-3)).toEqual(['from-exit-listener', 'from-exit-listener', 'from-exit-listener']);
        const last = readLines(dir).lines.at(-1)!;
        expect(last.code).toBe(code);
        // The path is free for the next run.
        const next = spawnScript(
          `import { JsonlEventSink } from '%RINGLOG%';
           const sink = JsonlEventSink.open(process.argv[2], { mode: 'append' });
           sink.handleEvent({ type: 'next-run' });
           await sink.close();
           console.log(sink.eventCount());`,
          [path.join(dir, BASE_NAME)],
        );
        const n = await next.result;
        expect(n.code, n.stderr).toBe(0);
        expect(n.stdout.trim()).toBe('1004');
      });
    }
  }
});
