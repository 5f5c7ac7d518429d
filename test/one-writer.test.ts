// Contract 11: one writer per path. A second open() of a base path that a live sink holds — in this
// process or another — fails with ERR_RINGLOG_LOCKED naming the holder, before anything on disk is
// touched; close() and process exit let go of it; a holder killed with SIGKILL is taken over.
// (The lock itself, its races and stale-lock rules: test/path-lock.test.ts.)

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink, SinkError } from '../dist/src/index.js';
import { BASE_NAME, coverage, readLines, runChild, spawnScript, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** Opens the sink, logs `count` events, says "ready" and then waits to be killed or told to close. */
const HOLDER = `
import { JsonlEventSink } from '%RINGLOG%';
import * as fs from 'node:fs';
const [base, count, closeFlag] = process.argv.slice(2);
const sink = JsonlEventSink.open(base, { mode: 'append' });
for (let i = 0; i < Number(count); i++) sink.handleEvent({ type: 'holder', i });
await sink.flush();
console.log('ready');
while (!fs.existsSync(closeFlag)) await new Promise((r) => setTimeout(r, 5));
await sink.close();
console.log('closed');
`;

function openError(fn: () => unknown): SinkError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SinkError);
    return err as SinkError;
  }
  throw new Error('open() did not throw');
}

describe('one writer per path', () => {
  it('a second sink on the same path in this process fails with ERR_RINGLOG_LOCKED; after close() it opens', async () => {
    const dir = dirs.make('lock-inproc');
    const base = path.join(dir, BASE_NAME);
    const first = JsonlEventSink.open(base);
    first.handleEvent({ type: 'a' });
    await first.flush();
    for (const mode of ['truncate', 'append'] as const) {
      const err = openError(() => JsonlEventSink.open(path.join(dir, '.', BASE_NAME), { mode }));
      expect(err.code).toBe('ERR_RINGLOG_LOCKED');
      expect(err.holderPid).toBe(process.pid);
      expect(err.message).toContain(base);
    }
    // The refused open touched nothing: the holder's line is still there, and it keeps writing.
    first.handleEvent({ type: 'b' });
    await first.close();
    expect(readLines(dir).lines.map((l) => l.type)).toEqual(['a', 'b']);
    const second = JsonlEventSink.open(base, { mode: 'append' });
    second.handleEvent({ type: 'c' });
    await second.close();
    expect(readLines(dir).lines.map((l) => [l.index, l.type])).toEqual([[0, 'a'], [1, 'b'], [2, 'c']]);
    expect(fs.readdirSync(dir)).toEqual([BASE_NAME]);
  });

  it('a live holder in another process refuses the open, naming its pid; once it closes, the path is free', async () => {
    const dir = dirs.make('lock-child');
    const base = path.join(dir, BASE_NAME);
    const closeFlag = path.join(dir, 'close-now');
    let ready!: () => void;
    const readyP = new Promise<void>((r) => (ready = r));
    const holder = spawnScript(HOLDER, [base, '100', closeFlag], { onStdout: (d) => d.includes('ready') && ready() });
    await readyP;
    const before = fs.readFileSync(base);
    for (const mode of ['truncate', 'append'] as const) {
      const err = openError(() => JsonlEventSink.open(base, { mode }));
      expect(err.code).toBe('ERR_RINGLOG_LOCKED');
      expect(err.holderPid).toBe(holder.child.pid);
      expect(err.message).toContain(`pid ${holder.child.pid}`);
    }
    expect(fs.readFileSync(base).equals(before)).toBe(true);
    fs.writeFileSync(closeFlag, '');
    const r = await holder.result;
    expect(r.code, r.stderr).toBe(0);
    const sink = JsonlEventSink.open(base, { mode: 'append' });
    sink.handleEvent({ type: 'after' });
    await sink.close();
    const cov = coverage(readLines(dir).lines);
    expect(cov.problems).toEqual([]);
    expect(cov.next).toBe(101);
  });

  it('a holder killed with SIGKILL leaves a stale lock that the next open takes over', async () => {
    const dir = dirs.make('lock-killed');
    const base = path.join(dir, BASE_NAME);
    let ready!: () => void;
    const readyP = new Promise<void>((r) => (ready = r));
    const holder = spawnScript(HOLDER, [base, '50', path.join(dir, 'never')], { onStdout: (d) => d.includes('ready') && ready() });
    await readyP;
    holder.child.kill('SIGKILL');
    const r = await holder.result;
    expect(r.signal).toBe('SIGKILL');
    expect(fs.existsSync(`${base}.lock`)).toBe(true);
    const sink = JsonlEventSink.open(base, { mode: 'append' });
    sink.handleEvent({ type: 'taken-over' });
    await sink.close();
    const { lines } = readLines(dir);
    expect(coverage(lines).problems).toEqual([]);
    expect(lines.at(-1)).toMatchObject({ index: 50, type: 'taken-over' });
    expect(fs.existsSync(`${base}.lock`)).toBe(false);
  });

  it('two processes started together on one path: one opened while the other holds it is refused; the log stays whole', async () => {
    const dir = dirs.make('lock-race');
    const base = path.join(dir, BASE_NAME);
    const RACER = `
import { JsonlEventSink } from '%RINGLOG%';
const [base, who] = process.argv.slice(2);
let sink;
try {
  sink = JsonlEventSink.open(base, { mode: 'append' });
} catch (err) {
  console.log(JSON.stringify({ who, refused: err.code, holderPid: err.holderPid }));
  process.exit(0);
}
for (let i = 0; i < 2000; i++) {
  sink.handleEvent({ type: 'race', who, i });
  if (i % 100 === 0) await new Promise((r) => setTimeout(r, 1));
}
await sink.close();
console.log(JSON.stringify({ who, wrote: 2000 }));
`;
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(['a', 'b'].map((who) => runChild(RACER, [base, `${who}${round}`])));
      const outs = results.map((r) => JSON.parse(r.stdout.trim()) as { wrote?: number; refused?: string });
      // Either one held the path while the other tried (one refused), or they did not overlap at all.
      for (const o of outs) if (o.refused !== undefined) expect(o.refused).toBe('ERR_RINGLOG_LOCKED');
    }
    const { lines } = readLines(dir);
    const cov = coverage(lines);
    expect(cov.problems).toEqual([]);
    // Each writer's events form one unbroken run in the file.
    const runs: string[] = [];
    for (const l of lines) if (runs.at(-1) !== l.who) runs.push(l.who as string);
    expect(new Set(runs).size).toBe(runs.length);
  });

  it('process exit lets go of the path (natural end without close())', async () => {
    const dir = dirs.make('lock-exit');
    const base = path.join(dir, BASE_NAME);
    const r = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2]);
       for (let i = 0; i < 10; i++) sink.handleEvent({ type: 'x', i });`,
      [base],
    );
    expect(r.code, r.stderr).toBe(0);
    expect(fs.existsSync(`${base}.lock`)).toBe(false);
    const sink = JsonlEventSink.open(base, { mode: 'append' });
    expect(sink.eventCount()).toBe(10);
    await sink.close();
  });
});
