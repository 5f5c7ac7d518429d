// Contracts 6 and 8, README "Guarantees": however the process ends — process.exit(), an uncaught
// exception, an unhandled rejection, SIGTERM/SIGINT with default handling, the natural end of the
// loop, even before the writer thread started — every accepted event is in the file. SIGKILL
// leaves a whole-line prefix of the stream (at most one torn last line) that append mode resumes.
// flushSync() writes synchronously and says clearly when it runs out of time.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink } from '../dist/src/index.js';
import {
  BASE_NAME,
  coverage,
  lastJson,
  makeFifo,
  readLines,
  readLinesTolerant,
  removeDir,
  runChild,
  spawnScript,
  startFifoReader,
  tempDirs,
  type ChildResult,
} from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** The event logged as number n (same function in the children below). */
function deathEvent(n: number): { type: string; n: number; text: string } {
  return { type: 'tick', n, text: `tick ${n} `.padEnd(16 + (n % 97), '.') };
}
const EVENT_SOURCE = `const deathEvent = (n) => ({ type: 'tick', n, text: ('tick ' + n + ' ').padEnd(16 + (n % 97), '.') });`;

function expectedRaw(index: number, ts: number): string {
  return JSON.stringify({ index, emitted_at_ms: ts, frame_depth: null, ...deathEvent(index) });
}

/** The set holds exactly events 0..n-1, each line exact, no torn line (readLines throws on one). */
function checkAll(dir: string, n: number): void {
  const { raw, lines } = readLines(dir);
  const cov = coverage(lines);
  expect(cov.problems).toEqual([]);
  expect(cov.markers).toBe(0);
  expect(lines.length).toBe(n);
  const wrong: string[] = [];
  raw.forEach((r, i) => {
    if (r !== expectedRaw(i, lines[i]!.emitted_at_ms) && wrong.length < 5) wrong.push(`line ${i}: ${r.slice(0, 120)}`);
  });
  expect(wrong).toEqual([]);
}

const DYING = `
import { JsonlEventSink } from '%RINGLOG%';
${EVENT_SOURCE}
const [base, how, nArg] = process.argv.slice(2);
const sink = JsonlEventSink.open(base, { rotateBytes: 256 * 1024 });
const n = Number(nArg);
if (how === 'sigterm-app-listener') process.on('SIGTERM', () => process.exit(7));
for (let i = 0; i < n; i++) sink.handleEvent(deathEvent(i));
// Reported first: what was accepted before the end (the parent checks the file holds all of it).
process.stdout.write(JSON.stringify({ accepted: sink.eventCount(), pending: sink.stats().pending }) + '\\n');
switch (how) {
  case 'exit':
  case 'exit-before-writer':
    process.exit(3);
  case 'throw':
    throw new Error('uncaught on purpose');
  case 'reject':
    Promise.reject(new Error('unhandled rejection on purpose'));
    break;
  case 'SIGTERM':
  case 'SIGINT':
  case 'sigterm-app-listener':
    process.kill(process.pid, how === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
    // Keep the loop alive: the process must die of the signal, not end by itself first.
    setTimeout(() => { console.error('still alive 10 s after the signal'); }, 10_000);
    break;
  case 'natural':
    break;
}
`;

interface DyingReport {
  accepted: number;
  pending: number;
}

async function die(how: string, n: number): Promise<{ r: ChildResult; dir: string; report: DyingReport }> {
  const dir = dirs.make(`die-${how}`);
  const r = await runChild(DYING, [path.join(dir, BASE_NAME), how, String(n)], { timeoutMs: 30_000 });
  expect(r.timedOut).toBe(false);
  const report = JSON.parse(r.stdout.split('\n')[0]!) as DyingReport;
  expect(report.accepted).toBe(n);
  return { r, dir, report };
}

const N = 20_000;

describe('process death: every accepted event is in the file', () => {
  it('process.exit() right after logging (exit code kept)', async () => {
    const { r, dir, report } = await die('exit', N);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([3, null]);
    // Most of it was still pending when exit came: the caller's thread wrote it.
    expect(report.pending).toBeGreaterThan(0);
    checkAll(dir, N);
  });

  it('process.exit() before the writer thread has started', async () => {
    const { r, dir } = await die('exit-before-writer', 50);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([3, null]);
    checkAll(dir, 50);
  });

  it('an uncaught exception', async () => {
    const { r, dir } = await die('throw', N);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('uncaught on purpose');
    expect(r.stderr).not.toContain('ringlog: exit flush failed');
    checkAll(dir, N);
  });

  it('an unhandled rejection', async () => {
    const { r, dir } = await die('reject', N);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('unhandled rejection on purpose');
    expect(r.stderr).not.toContain('ringlog: exit flush failed');
    checkAll(dir, N);
  });

  it.each(['SIGTERM', 'SIGINT'] as const)('%s with default handling: flushed, and the process still dies of the signal', async (sig) => {
    const { r, dir } = await die(sig, N);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([null, sig]);
    checkAll(dir, N);
  });

  it("SIGTERM with the application's own listener (which exits): that listener decides, the exit flush writes", async () => {
    const { r, dir } = await die('sigterm-app-listener', N);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([7, null]);
    checkAll(dir, N);
  });

  it('the natural end of the loop, without close()', async () => {
    const { r, dir } = await die('natural', N);
    expect(r.stderr).toBe('');
    expect([r.code, r.signal]).toEqual([0, null]);
    checkAll(dir, N);
  });
});

// --- SIGKILL --------------------------------------------------------------------------------

const LOGGING_FOREVER = `
import { JsonlEventSink } from '%RINGLOG%';
${EVENT_SOURCE}
const [base] = process.argv.slice(2);
const sink = JsonlEventSink.open(base, { rotateBytes: 64 * 1024 });
let n = 0;
process.stdout.write('ready\\n');
for (;;) {
  for (let i = 0; i < 100; i++) sink.handleEvent(deathEvent(n++));
  await new Promise((r) => setTimeout(r, 1));
}
`;

interface KillOutcome {
  lines: number;
  torn: boolean;
  files: number;
}

/** Runs the endless logger, SIGKILLs it `delayMs` after it opened the sink, checks what is left. */
async function killRun(i: number, delayMs: number): Promise<KillOutcome> {
  const dir = dirs.make(`sigkill-${i}`);
  const base = path.join(dir, BASE_NAME);
  let timer: NodeJS.Timeout | undefined;
  const { child, result } = spawnScript(LOGGING_FOREVER, [base], {
    timeoutMs: 30_000,
    onStdout: (chunk) => {
      if (timer === undefined && chunk.includes('ready')) timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    },
  });
  const r = await result;
  const context = `run ${i} (SIGKILL ${delayMs} ms after open)`;
  expect(r.signal, `${context}: ${r.stderr}`).toBe('SIGKILL');
  expect(r.timedOut, context).toBe(false);

  const set = readLinesTolerant(dir);
  expect(set.problems, context).toEqual([]);
  // A whole-line prefix of the stream: 0, 1, 2, … with nothing missing, doubled or altered.
  const cov = coverage(set.lines);
  expect(cov.problems, context).toEqual([]);
  expect(cov.markers, context).toBe(0);
  const next = set.lines.length;
  const wrong = set.raw.filter((raw, k) => raw !== expectedRaw(k, set.lines[k]!.emitted_at_ms));
  expect(wrong.slice(0, 3), context).toEqual([]);
  if (set.torn !== undefined) {
    // The torn line is the start of the next line of the stream.
    const head = `{"index":${next},`;
    expect(set.torn.startsWith(head) || head.startsWith(set.torn), `${context}: torn line ${set.torn.slice(0, 80)}`).toBe(true);
  }

  // Append mode cuts the torn line and resumes at the right index.
  const again = JsonlEventSink.open(base, { mode: 'append' });
  expect(again.eventCount(), context).toBe(next);
  const afterOpen = readLinesTolerant(dir);
  expect(afterOpen.torn, `${context}: append mode cut the torn line`).toBeUndefined();
  expect(afterOpen.raw, context).toEqual(set.raw);
  for (let k = 0; k < 10; k++) again.handleEvent(deathEvent(next + k));
  await again.close();
  const resumed = readLines(dir);
  const rc = coverage(resumed.lines);
  expect(rc.problems, context).toEqual([]);
  expect(resumed.lines.length, context).toBe(next + 10);
  resumed.raw.forEach((raw, k) => {
    if (raw !== expectedRaw(k, resumed.lines[k]!.emitted_at_ms)) expect.fail(`${context}: line ${k} after resuming: ${raw.slice(0, 120)}`);
  });
  removeDir(dir);
  return { lines: next, torn: set.torn !== undefined, files: set.files.length };
}

describe('SIGKILL at random moments', () => {
  it('50 runs: each leaves a whole-line prefix (at most one torn last line) that append mode resumes at the right index', async () => {
    const RUNS = 50;
    const CONCURRENCY = 2;
    const seed = Number(process.env.RINGLOG_TEST_SEED ?? Date.now() % 1_000_000);
    let state = seed;
    const rand = (): number => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state / 2 ** 32;
    };
    const delays = Array.from({ length: RUNS }, () => Math.floor(rand() * 250));
    const outcomes: KillOutcome[] = [];
    let nextRun = 0;
    const worker = async (): Promise<void> => {
      while (nextRun < RUNS) {
        const i = nextRun++;
        outcomes.push(await killRun(i, delays[i]!));
      }
    };
    try {
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    } catch (err) {
      (err as Error).message += ` (seed ${seed}; RINGLOG_TEST_SEED=${seed} replays the delays)`;
      throw err;
    }
    expect(outcomes).toHaveLength(RUNS);
    const torn = outcomes.filter((o) => o.torn).length;
    console.log(
      `SIGKILL runs (seed ${seed}): ${outcomes.filter((o) => o.lines > 0).length}/${RUNS} left lines, ${torn} a torn last line, ` +
        `up to ${Math.max(...outcomes.map((o) => o.files))} segments`,
    );
    // Not every kill landed before the first write: some came after a rotation, with lines to lose.
    expect(outcomes.some((o) => o.files > 1), 'some runs were killed after a rotation').toBe(true);
  });
});

// --- flushSync --------------------------------------------------------------------------------

describe('flushSync', () => {
  it('rejects bad options with TypeError / RangeError', async () => {
    const dir = dirs.make('flushsync-args');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ type: 'one' });
    const call = (opts: unknown) => () => sink.flushSync(opts as never);
    expect(call('fast')).toThrow(TypeError);
    expect(call(5)).toThrow(TypeError);
    expect(call(null)).toThrow(TypeError);
    expect(call({ timeoutMs: '100' })).toThrow(TypeError);
    expect(call({ timeoutMs: '100' })).toThrow(/timeoutMs/);
    expect(call({ timeoutMs: -1 })).toThrow(RangeError);
    expect(call({ timeoutMs: -1 })).toThrow(/timeoutMs/);
    expect(call({ timeoutMs: Number.NaN })).toThrow(RangeError);
    // The sink is unharmed.
    sink.flushSync({});
    sink.flushSync({ timeoutMs: 0 });
    sink.handleEvent({ type: 'two' });
    await sink.close();
    expect(readLines(dir).lines.map((l) => l.type)).toEqual(['one', 'two']);
  });

  it('writes everything accepted before it returns: the file is complete right after, with no await', async () => {
    const dir = dirs.make('flushsync');
    const rotateBytes = 128 * 1024;
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes });
    for (let i = 0; i < N; i++) sink.handleEvent(deathEvent(i));
    sink.flushSync();
    // No await between the call and reading the files.
    checkAll(dir, N);
    expect(sink.stats()).toMatchObject({ accepted: N, written: N, dropped: 0, pending: 0 });
    // Again, after more events, mid-stream.
    for (let i = N; i < N + 1000; i++) sink.handleEvent(deathEvent(i));
    sink.flushSync({ timeoutMs: 5000 });
    checkAll(dir, N + 1000);
    await sink.close();
    checkAll(dir, N + 1000);
  });

  it('throws ERR_RINGLOG_TIMEOUT when the writer holds the file past timeoutMs (writer stuck on a full pipe)', async () => {
    const dir = dirs.make('flushsync-timeout');
    const fifo = path.join(dir, BASE_NAME);
    const copy = path.join(dir, 'copy.jsonl');
    const gate = path.join(dir, 'gate');
    await makeFifo(fifo);
    // The reader opens the pipe but reads nothing until the gate file exists: the writer thread
    // blocks in write() on the full pipe, holding the ring's lock.
    const reader = startFifoReader(fifo, copy, { gateFile: gate, sleepMs: 0 });
    const r = await runChild(
      `
      import * as fs from 'node:fs';
      import { JsonlEventSink, SinkError } from '%RINGLOG%';
      ${EVENT_SOURCE}
      const [fifo, gate] = process.argv.slice(2);
      const sink = JsonlEventSink.open(fifo);
      const big = 'x'.repeat(1000);
      for (let i = 0; i < 2000; i++) sink.handleEvent({ ...deathEvent(i), big });
      // Until a thread of this process sleeps in the pipe's write (its wchan): the writer holds the
      // lock then. A fixed pause raced the writer thread's start on a loaded machine.
      const inPipeWrite = () => fs.readdirSync('/proc/self/task').some((t) => {
        try { return /pipe_write/.test(fs.readFileSync('/proc/self/task/' + t + '/wchan', 'utf8')); } catch { return false; }
      });
      for (const deadline = Date.now() + 20_000; !inPipeWrite() && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 20));
      let err = null;
      try {
        sink.flushSync({ timeoutMs: 200 });
      } catch (e) {
        err = { isSinkError: e instanceof SinkError, code: e.code, message: e.message, dropped: e.droppedEvents };
      }
      fs.writeFileSync(gate, '');
      let closeErr = null;
      try { await sink.close(); } catch (e) { closeErr = String(e); }
      console.log(JSON.stringify({ err, closeErr, stats: sink.stats() }));
      `,
      [fifo, gate],
      { timeoutMs: 30_000 },
    );
    // Open the gate whatever happened, so the reader ends.
    fs.writeFileSync(gate, '');
    const read = await reader;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(read.code).toBe(0);
    const out = lastJson<{ err: { isSinkError: boolean; code: string; message: string; dropped: number } | null; closeErr: string | null; stats: { written: number; accepted: number } }>(r);
    expect(out.err, 'flushSync ran out of time and said so').not.toBeNull();
    expect(out.err).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_TIMEOUT', dropped: 0 });
    expect(out.err!.message).toMatch(/timed out/);
    // Nothing was lost by the timeout: once the pipe drains, everything arrives.
    expect(out.closeErr).toBeNull();
    expect(out.stats).toMatchObject({ accepted: 2000, written: 2000 });
    const lines = fs.readFileSync(copy, 'utf8').trimEnd().split('\n');
    expect(lines.map((l) => (JSON.parse(l) as { index: number }).index)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
  });
});
