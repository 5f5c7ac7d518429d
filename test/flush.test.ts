// Contract 6: barriers. flush() resolves once every event accepted before the call is in the file
// (fsynced with { fsync: true }) and rejects with a SinkError naming the sink, the cause and the
// count of lost events; flushSync() does the same, blocking; both validate their options.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink, SinkError } from '../dist/src/index.js';
import { makeCorpus } from '../dist/demo/corpus.js';
import { BASE_NAME, expectedLine, expectLossAccounted, failure, type Line, readLines, runChild, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** Whole lines of a file that may be being written to (a last line without newline is ignored). */
function wholeLines(file: string): Line[] {
  const text = fs.readFileSync(file, 'utf8');
  const parts = text.split('\n');
  parts.pop();
  return parts.map((p) => JSON.parse(p) as Line);
}

/** Settles with the promise, or rejects if it has not settled in `ms` (a liveness bound, not a speed check). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}


const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

describe('flush()', () => {
  it('is a barrier: after await flush() every accepted line is in the file', async () => {
    const dir = dirs.make('flush-barrier');
    const base = path.join(dir, BASE_NAME);
    const sink = JsonlEventSink.open(base);
    const corpus = makeCorpus(4000, 21);
    let logged = 0;
    for (const batch of [1, 7, 100, 1, 2500, 13, 1378]) {
      for (let i = 0; i < batch; i++) sink.handleEvent(corpus[logged++]!);
      await sink.flush();
      const { raw, lines } = readLines(dir);
      expect(raw).toHaveLength(logged);
      expect(lines[logged - 1]!.index).toBe(logged - 1);
      expect(sink.stats()).toMatchObject({ accepted: logged, written: logged, pending: 0, dropped: 0 });
    }
    await sink.close();
    const { raw, lines } = readLines(dir);
    expect(raw.findIndex((r, i) => r !== expectedLine(i, lines[i]!.emitted_at_ms, corpus[i]!))).toBe(-1);
  });

  it('covers the events accepted before the call even while more keep coming', async () => {
    const dir = dirs.make('flush-concurrent');
    const base = path.join(dir, BASE_NAME);
    const sink = JsonlEventSink.open(base, { ringBytes: 64 * 1024 });
    const corpus = makeCorpus(3000, 4);
    let logged = 0;
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 200; i++) sink.handleEvent(corpus[logged++ % corpus.length]!);
      const target = logged;
      const barrier = sink.flush();
      for (let i = 0; i < 100; i++) sink.handleEvent(corpus[logged++ % corpus.length]!);
      await barrier;
      const seen = wholeLines(base).map((l) => l.index);
      expect(seen.length).toBeGreaterThanOrEqual(target);
      expect(seen.slice(0, target)).toEqual(range(target));
    }
    await sink.close();
    expect(readLines(dir).lines.map((l) => l.index)).toEqual(range(logged));
  });

  it('resolves concurrent flushes, and a flush with nothing logged', async () => {
    const dir = dirs.make('flush-many');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    await sink.flush();
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) {
      sink.handleEvent({ type: 'ev', i });
      pending.push(sink.flush());
    }
    await Promise.all(pending);
    expect(readLines(dir).lines.map((l) => l.i)).toEqual(range(20));
    await sink.close();
  });

  it('with { fsync: true } resolves with every accepted line in the file', async () => {
    const dir = dirs.make('flush-fsync');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    for (let i = 0; i < 500; i++) sink.handleEvent({ type: 'ev', i });
    await within(sink.flush({ fsync: true }), 30_000, 'flush({ fsync: true })');
    expect(readLines(dir).lines.map((l) => l.i)).toEqual(range(500));
    sink.handleEvent({ type: 'ev', i: 500 });
    await within(sink.flush({ fsync: true }), 30_000, 'second flush({ fsync: true })');
    expect(readLines(dir).lines).toHaveLength(501);
    await sink.close();
  });

  it('with { fsync: true } resolves when every line was already written before the call', async () => {
    // The writer has nothing left to write: the fsync must still happen and the flush resolve.
    const dir = dirs.make('flush-fsync-idle');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    for (let i = 0; i < 10; i++) sink.handleEvent({ type: 'ev', i });
    await sink.flush();
    await within(sink.flush({ fsync: true }), 15_000, 'flush({ fsync: true }) after flush()');
    expect(readLines(dir).lines).toHaveLength(10);
    await sink.close();
  });

  it('resolves after close() when nothing was logged after it; close() is idempotent', async () => {
    const dir = dirs.make('flush-after-close');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    for (let i = 0; i < 50; i++) sink.handleEvent({ type: 'ev', i });
    const closing = sink.close();
    expect(sink.close()).toBe(closing);
    await closing;
    await within(sink.flush(), 30_000, 'flush() after close()');
    await within(sink.flush({ fsync: true }), 30_000, 'flush({ fsync: true }) after close()');
    expect(() => sink.flushSync()).not.toThrow();
    await sink.close();
    expect(readLines(dir).lines.map((l) => l.i)).toEqual(range(50));
  });

  it('rejects (does not hang) after close() when an event was logged after close()', async () => {
    // In a child: a flush that never settles must fail this test, not stall the test runner.
    const dir = dirs.make('flush-after-close-late');
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2]);
       sink.handleEvent({ type: 'kept' });
       await sink.close();
       sink.handleEvent({ type: 'late' });
       const out = await sink.flush().then(() => ({ resolved: true }), (e) => ({ name: e.name, code: e.code, dropped: e.droppedEvents, message: e.message }));
       console.log(JSON.stringify(out));`,
      [path.join(dir, BASE_NAME)],
      { timeoutMs: 20_000 },
    );
    expect(res.timedOut, 'flush() after close() never settled').toBe(false);
    expect(res.code).toBe(0);
    const out = JSON.parse(res.stdout) as { name: string; code: string; dropped: number; message: string };
    expect(out).toMatchObject({ name: 'SinkError', code: 'ERR_RINGLOG_DROPPED', dropped: 1 });
    expect(out.message).toContain('after close');
  });

  it('rejects with a SinkError naming the sink, the cause and the count when writes fail (/dev/full)', async () => {
    const heard: SinkError[] = [];
    const sink = JsonlEventSink.open('/dev/full', { onError: (e) => heard.push(e) });
    for (let i = 0; i < 10; i++) sink.handleEvent({ type: 'ev', i });
    const err = await failure(() => sink.flush());
    expect(err).toBeInstanceOf(SinkError);
    const e = err as SinkError;
    expect(e.sink).toBe('/dev/full');
    expect(e.droppedEvents).toBe(10);
    expect(e.message).toContain('/dev/full');
    expect(e.message).toContain('10');
    // The cause is the write failure, reported by the first flush that sees the loss.
    expect(e.code).toBe('ERR_RINGLOG_WRITE');
    expect(e.message).toContain('ENOSPC');
    // Every later barrier reports it again.
    const again = await failure(() => sink.flush());
    expect(again).toMatchObject({ code: 'ERR_RINGLOG_WRITE', droppedEvents: 10 });
    expect(() => sink.flushSync()).toThrow(SinkError);
    expect(heard.length).toBeGreaterThan(0);
    expect(heard[0]!.code).toBe('ERR_RINGLOG_WRITE');
    expect(sink.stats()).toMatchObject({ accepted: 10, written: 0, dropped: 10 });
    expectLossAccounted(sink.stats(), null);
    await expect(sink.close()).rejects.toMatchObject({ code: 'ERR_RINGLOG_WRITE', droppedEvents: 10 });
    expectLossAccounted(sink.stats(), null);
  });

  it('validates its options', async () => {
    const dir = dirs.make('flush-options');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    for (const bad of [null, 'fsync', 1, true]) {
      const err = await failure(() => sink.flush(bad as never));
      expect(err, `flush(${String(bad)})`).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/flush options must be an object/);
    }
    // (undefined and null mean "not given".)
    for (const fsync of ['yes', 1, {}]) {
      const err = await failure(() => sink.flush({ fsync } as never));
      expect(err, `flush({ fsync: ${String(fsync)} })`).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/"fsync"/);
    }
    // Valid forms.
    await sink.flush(undefined);
    await sink.flush({});
    await sink.flush({ fsync: false });
    await sink.flush({ fsync: undefined });
    await sink.close();
  });
});

describe('flushSync()', () => {
  it('writes every accepted line before it returns, on the calling thread', async () => {
    const dir = dirs.make('flushsync');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    const corpus = makeCorpus(3000, 8);
    let logged = 0;
    for (const batch of [1, 999, 2000]) {
      for (let i = 0; i < batch; i++) sink.handleEvent(corpus[logged++]!);
      sink.flushSync();
      // No await in between: the lines are there when flushSync returns.
      const { raw } = readLines(dir);
      expect(raw).toHaveLength(logged);
    }
    await sink.close();
    const { raw, lines } = readLines(dir);
    expect(raw.findIndex((r, i) => r !== expectedLine(i, lines[i]!.emitted_at_ms, corpus[i]!))).toBe(-1);
  });

  it('interleaves with the writer thread without losing, repeating or garbling a line', async () => {
    const dir = dirs.make('flushsync-mix');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { ringBytes: 64 * 1024 });
    const events: Record<string, unknown>[] = [];
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 50; i++) {
        // New keys every round: the key tables of both threads must stay in step.
        const ev = { type: `t${round % 3}`, [`k_${round}`]: i, [`shared_${i % 4}`]: 'v', text: 'x'.repeat((round * 37 + i * 11) % 600) };
        events.push(ev);
        sink.handleEvent(ev);
      }
      if (round % 3 === 0) sink.flushSync({ timeoutMs: 30_000 });
      else if (round % 3 === 1) await sink.flush();
      else await new Promise((r) => setTimeout(r, 1));
    }
    await sink.close();
    const { raw, lines } = readLines(dir);
    expect(raw).toHaveLength(events.length);
    expect(raw.findIndex((r, i) => r !== expectedLine(i, lines[i]!.emitted_at_ms, events[i]!))).toBe(-1);
  });

  it('validates its options', async () => {
    const dir = dirs.make('flushsync-options');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    for (const bad of [null, 'x', 5]) {
      expect(() => sink.flushSync(bad as never)).toThrow(TypeError);
      expect(() => sink.flushSync(bad as never)).toThrow(/flushSync options must be an object/);
    }
    for (const bad of ['100', true, {}]) {
      expect(() => sink.flushSync({ timeoutMs: bad } as never)).toThrow(TypeError);
      expect(() => sink.flushSync({ timeoutMs: bad } as never)).toThrow(/"timeoutMs"/);
    }
    for (const bad of [-1, NaN, -Infinity]) {
      expect(() => sink.flushSync({ timeoutMs: bad })).toThrow(RangeError);
      expect(() => sink.flushSync({ timeoutMs: bad })).toThrow(/"timeoutMs"/);
    }
    expect(() => sink.flushSync({})).not.toThrow();
    expect(() => sink.flushSync({ timeoutMs: 10_000 })).not.toThrow();
    await sink.close();
  });
});
