// Contract 2: the index is stamped synchronously in handleEvent, from 0, gap-free, in call order;
// eventCount() is the next index; emitted_at_ms is Date.now() at that moment, non-decreasing.

import { afterEach, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { JsonlEventSink } from '../dist/src/index.js';
import { makeCorpus } from '../dist/demo/corpus.js';
import { BASE_NAME, readLines, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

describe('index and emitted_at_ms', () => {
  it('stamps 120,000 events with contiguous indexes from 0 and non-decreasing emitted_at_ms', async () => {
    const N = 120_000;
    const dir = dirs.make('index-120k');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    const corpus = makeCorpus(1000, 3, true);
    expect(sink.eventCount()).toBe(0);
    const before = Date.now();
    let countMismatches = 0;
    for (let i = 0; i < N; i++) {
      if (sink.eventCount() !== i) countMismatches++;
      sink.handleEvent(corpus[i % corpus.length]!);
    }
    const after = Date.now();
    expect(countMismatches).toBe(0);
    expect(sink.eventCount()).toBe(N);
    await sink.flush();
    expect(sink.stats()).toMatchObject({ accepted: N, written: N, dropped: 0, rejected: 0, pending: 0 });
    await sink.close();
    expect(sink.eventCount()).toBe(N);

    const { lines } = readLines(dir);
    expect(lines).toHaveLength(N);
    let badIndex = -1;
    let badTs = -1;
    let badType = -1;
    for (let i = 0; i < N; i++) {
      const l = lines[i]!;
      if (badIndex < 0 && l.index !== i) badIndex = i;
      if (badTs < 0 && i > 0 && l.emitted_at_ms < lines[i - 1]!.emitted_at_ms) badTs = i;
      if (badType < 0 && l.type !== corpus[i % corpus.length]!.type) badType = i;
    }
    expect({ badIndex, badTs, badType }).toEqual({ badIndex: -1, badTs: -1, badType: -1 });
    // Stamped with the wall clock of the call.
    expect(lines[0]!.emitted_at_ms).toBeGreaterThanOrEqual(before);
    expect(lines[N - 1]!.emitted_at_ms).toBeLessThanOrEqual(after);
    for (const l of lines.slice(0, 100)) expect(Number.isInteger(l.emitted_at_ms)).toBe(true);
  });

  it('keeps indexes gap-free and in order with the large corpus (ring wrap, overflow queue)', async () => {
    const N = 100_000;
    const dir = dirs.make('index-large');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { ringBytes: 1 << 20 });
    const corpus = makeCorpus(2000, 42);
    for (let i = 0; i < N; i++) sink.handleEvent(corpus[i % corpus.length]!);
    expect(sink.eventCount()).toBe(N);
    await sink.close();
    expect(sink.stats()).toMatchObject({ accepted: N, written: N, dropped: 0, pending: 0 });
    const { lines } = readLines(dir);
    expect(lines).toHaveLength(N);
    const firstGap = lines.findIndex((l, i) => l.index !== i);
    expect(firstGap).toBe(-1);
  });

  it('takes the index at call time even for an event logged from inside another event (getter)', async () => {
    const dir = dirs.make('reentrant');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ type: 'before' });
    const outer = {
      type: 'outer',
      get side() {
        sink.handleEvent({ type: 'inner' });
        return 'effect';
      },
    };
    sink.handleEvent(outer);
    sink.handleEvent({ type: 'after' });
    expect(sink.eventCount()).toBe(4);
    await sink.close();
    const { lines } = readLines(dir);
    expect(lines.map((l) => [l.index, l.type])).toEqual([
      [0, 'before'],
      [1, 'outer'],
      [2, 'inner'],
      [3, 'after'],
    ]);
    expect(lines[1]!.side).toBe('effect');
  });

  it('numbers each sink on its own', async () => {
    const a = dirs.make('two-a');
    const b = dirs.make('two-b');
    const sa = JsonlEventSink.open(path.join(a, BASE_NAME));
    const sb = JsonlEventSink.open(path.join(b, BASE_NAME));
    for (let i = 0; i < 300; i++) {
      sa.handleEvent({ type: 'a', i });
      if (i % 3 === 0) sb.handleEvent({ type: 'b', i });
    }
    expect(sa.eventCount()).toBe(300);
    expect(sb.eventCount()).toBe(100);
    await Promise.all([sa.close(), sb.close()]);
    const la = readLines(a).lines;
    const lb = readLines(b).lines;
    expect(la.map((l) => l.index)).toEqual(Array.from({ length: 300 }, (_, i) => i));
    expect(lb.map((l) => l.index)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(lb.map((l) => l.i)).toEqual(Array.from({ length: 100 }, (_, i) => i * 3));
  });

  it('spends no index on events logged after close(), and counts them as accepted and dropped', async () => {
    const dir = dirs.make('after-close');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ type: 'kept' });
    await sink.close();
    expect(() => sink.handleEvent({ type: 'late' })).not.toThrow();
    expect(sink.eventCount()).toBe(1);
    expect(sink.stats()).toMatchObject({ accepted: 2, written: 1, dropped: 1 });
    expect(readLines(dir).lines.map((l) => l.type)).toEqual(['kept']);
  });
});
