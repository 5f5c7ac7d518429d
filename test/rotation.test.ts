// Contract 3: rotation by size. `event_log.jsonl`, then `event_log-000001.jsonl`, `-000002`, …;
// rotate when the running file would exceed rotateBytes; a line is never split; reading the files
// in order yields the whole stream in index order.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink } from '../dist/src/index.js';
import { makeCorpus } from '../dist/demo/corpus.js';
import { BASE_NAME, expectedLine, readLines, segmentName, tempDirs, type LogSet } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** Checks the layout invariants of a rotated set against rotateBytes. */
function checkLayout(set: LogSet, rotateBytes: number, base = BASE_NAME): void {
  // Names: the base file, then -000001, -000002, … with no gap.
  expect(set.files.map((f) => f.name)).toEqual(set.files.map((_, n) => segmentName(n, base)));
  for (let k = 0; k < set.files.length; k++) {
    const f = set.files[k]!;
    // Never over the limit, unless the file holds one line that is itself over it.
    if (f.bytes > rotateBytes) expect(f.raw, `${f.name} is over the limit with more than one line`).toHaveLength(1);
    // Not rotated early: the next file's first line would have pushed this one over the limit.
    const next = set.files[k + 1];
    if (next !== undefined) {
      expect(f.raw.length, `${f.name} is empty`).toBeGreaterThan(0);
      const firstNext = Buffer.byteLength(next.raw[0]!, 'utf8') + 1;
      expect(f.bytes + firstNext, `${f.name} rotated before it had to`).toBeGreaterThan(rotateBytes);
    }
  }
}

describe('rotation', () => {
  it('spreads a stream over many files, each within rotateBytes, whose concatenation is the stream', async () => {
    const rotateBytes = 16 * 1024;
    const dir = dirs.make('rotate-many');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes });
    const events = makeCorpus(3000, 5);
    for (const e of events) sink.handleEvent(e);
    await sink.close();
    const set = readLines(dir);
    expect(set.files.length).toBeGreaterThan(50);
    checkLayout(set, rotateBytes);
    expect(sink.stats().rotations).toBe(set.files.length - 1);
    expect(sink.stats().segment).toBe(set.files.length - 1);
    expect(set.raw).toHaveLength(events.length);
    const wrong = set.raw.findIndex((r, i) => r !== expectedLine(i, set.lines[i]!.emitted_at_ms, events[i]!));
    expect(wrong).toBe(-1);
    // Nothing else was written next to the set.
    expect(fs.readdirSync(dir).sort()).toEqual(set.files.map((f) => f.name).sort());
  });

  it('keeps each file within the limit when every line is the same size (tight packing)', async () => {
    const dir = dirs.make('rotate-exact');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 1000 });
    for (let i = 0; i < 500; i++) sink.handleEvent({ type: 'fixed', pad: 'x'.repeat(40) });
    await sink.close();
    const set = readLines(dir);
    checkLayout(set, 1000);
    expect(set.lines.map((l) => l.index)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    for (const f of set.files) expect(f.bytes).toBeLessThanOrEqual(1000);
  });

  it('rotates on a line that would land exactly one byte over the limit, not on one that fits exactly', async () => {
    const dir = dirs.make('rotate-boundary');
    const probe = dirs.make('rotate-probe');
    // Measure a line's size (the timestamp has the same width for the lifetime of these tests).
    const p = JsonlEventSink.open(path.join(probe, BASE_NAME));
    p.handleEvent({ type: 'b', pad: 'x' });
    await p.close();
    const lineBytes = readLines(probe).files[0]!.bytes;
    // Two lines fit exactly; the third would be over by a full line.
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 2 * lineBytes });
    for (let i = 0; i < 5; i++) sink.handleEvent({ type: 'b', pad: 'y' });
    await sink.close();
    const set = readLines(dir);
    expect(set.files.map((f) => f.raw.length)).toEqual([2, 2, 1]);
    expect(set.files.map((f) => f.bytes)).toEqual([2 * lineBytes, 2 * lineBytes, lineBytes]);
    // One byte less and only one line fits per file.
    const dir2 = dirs.make('rotate-boundary2');
    const sink2 = JsonlEventSink.open(path.join(dir2, BASE_NAME), { rotateBytes: 2 * lineBytes - 1 });
    for (let i = 0; i < 3; i++) sink2.handleEvent({ type: 'b', pad: 'y' });
    await sink2.close();
    expect(readLines(dir2).files.map((f) => f.raw.length)).toEqual([1, 1, 1]);
  });

  it('puts every line in its own file with rotateBytes 1', async () => {
    const dir = dirs.make('rotate-1');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 1 });
    for (let i = 0; i < 25; i++) sink.handleEvent({ type: 'one', i });
    await sink.close();
    const set = readLines(dir);
    expect(set.files).toHaveLength(25);
    checkLayout(set, 1);
    expect(set.files.map((f) => f.raw.length)).toEqual(Array(25).fill(1));
    expect(set.lines.map((l) => l.i)).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('writes a single line larger than rotateBytes whole, in a file of its own', async () => {
    const rotateBytes = 4096;
    const dir = dirs.make('rotate-big-line');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes });
    const big = { type: 'big', text: 'é'.repeat(10_000) + '🙂'.repeat(1000) };
    const events = [
      { type: 'small', n: 0 },
      { type: 'small', n: 1 },
      big,
      { type: 'small', n: 2 },
      big,
      big,
      { type: 'small', n: 3 },
    ];
    for (const e of events) sink.handleEvent(e);
    await sink.close();
    const set = readLines(dir);
    checkLayout(set, rotateBytes);
    expect(set.files.map((f) => f.raw.map((r) => (JSON.parse(r) as { type: string }).type))).toEqual([
      ['small', 'small'],
      ['big'],
      ['small'],
      ['big'],
      ['big'],
      ['small'],
    ]);
    expect(set.files[1]!.bytes).toBeGreaterThan(rotateBytes);
    const wrong = set.raw.findIndex((r, i) => r !== expectedLine(i, set.lines[i]!.emitted_at_ms, events[i]!));
    expect(wrong).toBe(-1);
  });

  it('keeps an oversized first line in the base file (no empty file before it)', async () => {
    const dir = dirs.make('rotate-big-first');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 100 });
    sink.handleEvent({ type: 'big', text: 'z'.repeat(500) });
    sink.handleEvent({ type: 'small' });
    await sink.close();
    const set = readLines(dir);
    expect(set.files.map((f) => [f.name, f.raw.length])).toEqual([
      [BASE_NAME, 1],
      [segmentName(1), 1],
    ]);
    expect(set.lines.map((l) => l.type)).toEqual(['big', 'small']);
  });

  it('names segments after other base names as the reference does (stem-000001.ext, jsonl when none)', async () => {
    for (const base of ['trace.log', 'events', 'my.session.ndjson']) {
      const dir = dirs.make('rotate-names');
      const sink = JsonlEventSink.open(path.join(dir, base), { rotateBytes: 200 });
      for (let i = 0; i < 12; i++) sink.handleEvent({ type: 'named', text: 'n'.repeat(60), i });
      await sink.close();
      const set = readLines(dir, base);
      expect(set.files.length).toBeGreaterThan(2);
      checkLayout(set, 200, base);
      expect(set.lines.map((l) => l.index)).toEqual(Array.from({ length: 12 }, (_, i) => i));
      expect(fs.readdirSync(dir).sort()).toEqual(set.files.map((f) => f.name).sort());
    }
    expect(segmentName(3, 'events')).toBe('events-000003.jsonl');
    expect(segmentName(12, 'trace.log')).toBe('trace-000012.log');
  });

  it('rotates the same way when the stream is written by flushSync on the caller thread', async () => {
    const rotateBytes = 2048;
    const dir = dirs.make('rotate-flushsync');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes });
    const events = makeCorpus(600, 9, true);
    for (let i = 0; i < events.length; i++) {
      sink.handleEvent(events[i]!);
      if (i % 50 === 49) sink.flushSync();
    }
    await sink.close();
    const set = readLines(dir);
    checkLayout(set, rotateBytes);
    const wrong = set.raw.findIndex((r, i) => r !== expectedLine(i, set.lines[i]!.emitted_at_ms, events[i]!));
    expect(wrong).toBe(-1);
  });

  it('uses 100 MiB, the reference threshold, by default', () => {
    expect(JsonlEventSink.ROTATE_BYTES).toBe(100 * 1024 * 1024);
  });
});
