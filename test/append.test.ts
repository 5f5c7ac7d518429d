// Contract 4: opening. Truncate mode (default) starts a fresh session at index 0 and removes stale
// numbered segments; append mode resumes after the last whole line of the set, cutting a torn
// last line.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink, SinkError } from '../dist/src/index.js';
import { BASE_NAME, readLines, segmentName, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

type Options = Parameters<typeof JsonlEventSink.open>[1];

async function session(base: string, count: number, tag: string, options?: Options): Promise<JsonlEventSink> {
  const sink = JsonlEventSink.open(base, options);
  for (let i = 0; i < count; i++) sink.handleEvent({ type: 'ev', session: tag, n: i, text: `${tag} event ${i}` });
  await sink.close();
  return sink;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);

describe('append mode', () => {
  it('continues the index across a restart', async () => {
    const dir = dirs.make('append-restart');
    const base = path.join(dir, BASE_NAME);
    await session(base, 100, 'one');
    const second = JsonlEventSink.open(base, { mode: 'append' });
    expect(second.eventCount()).toBe(100);
    for (let i = 0; i < 50; i++) second.handleEvent({ type: 'ev', session: 'two', n: i });
    expect(second.eventCount()).toBe(150);
    await second.close();
    // The session's own counters start at this open.
    expect(second.stats()).toMatchObject({ accepted: 50, written: 50 });
    await session(base, 10, 'three', { mode: 'append' });
    const { lines } = readLines(dir);
    expect(lines.map((l) => l.index)).toEqual(range(0, 160));
    expect(lines.map((l) => l.session)).toEqual([...Array(100).fill('one'), ...Array(50).fill('two'), ...Array(10).fill('three')]);
    for (let i = 1; i < lines.length; i++) expect(lines[i]!.emitted_at_ms).toBeGreaterThanOrEqual(lines[i - 1]!.emitted_at_ms);
  });

  it('continues a rotated set in its last segment and keeps rotating within the limit', async () => {
    const dir = dirs.make('append-rotated');
    const base = path.join(dir, BASE_NAME);
    const rotateBytes = 2000;
    await session(base, 60, 'one', { rotateBytes });
    const before = readLines(dir);
    expect(before.files.length).toBeGreaterThan(2);
    const lastBefore = before.files[before.files.length - 1]!;
    await session(base, 60, 'two', { rotateBytes, mode: 'append' });
    const after = readLines(dir);
    expect(after.lines.map((l) => l.index)).toEqual(range(0, 120));
    expect(after.files.map((f) => f.name)).toEqual(after.files.map((_, n) => segmentName(n)));
    for (const f of after.files) expect(f.bytes).toBeLessThanOrEqual(rotateBytes);
    // Earlier segments untouched; the last one was continued, not replaced.
    for (const f of before.files.slice(0, -1)) expect(fs.readFileSync(f.path, 'utf8')).toBe(f.raw.join('\n') + '\n');
    expect(fs.readFileSync(lastBefore.path, 'utf8').startsWith(lastBefore.raw.join('\n') + '\n')).toBe(true);
  });

  it('cuts a torn last line and resumes after the last whole line', async () => {
    const dir = dirs.make('append-torn');
    const base = path.join(dir, BASE_NAME);
    await session(base, 20, 'one');
    const whole = fs.readFileSync(base, 'utf8');
    // A crash mid-write left the start of line 20.
    fs.appendFileSync(base, '{"index":20,"emitted_at_ms":17000000');
    const sink = JsonlEventSink.open(base, { mode: 'append' });
    expect(sink.eventCount()).toBe(20);
    // The cut happens at open.
    expect(fs.readFileSync(base, 'utf8')).toBe(whole);
    sink.handleEvent({ type: 'ev', session: 'two', n: 0 });
    await sink.close();
    const { lines } = readLines(dir);
    expect(lines.map((l) => l.index)).toEqual(range(0, 21));
    expect(lines[20]!.session).toBe('two');
  });

  it('cuts a torn last line longer than the tail scan chunk (64 KiB)', async () => {
    const dir = dirs.make('append-torn-long');
    const base = path.join(dir, BASE_NAME);
    await session(base, 5, 'one');
    fs.appendFileSync(base, `{"index":5,"emitted_at_ms":1,"frame_depth":null,"text":"${'t'.repeat(200_000)}`);
    const sink = JsonlEventSink.open(base, { mode: 'append' });
    expect(sink.eventCount()).toBe(5);
    sink.handleEvent({ type: 'ev', session: 'two', n: 0 });
    await sink.close();
    const { lines } = readLines(dir);
    expect(lines.map((l) => [l.index, l.session])).toEqual([...range(0, 5).map((i) => [i, 'one']), [5, 'two']]);
  });

  it('resumes from the previous segment when the last segment holds only a torn line', async () => {
    const dir = dirs.make('append-torn-segment');
    const base = path.join(dir, BASE_NAME);
    const rotateBytes = 1500;
    await session(base, 40, 'one', { rotateBytes });
    const files = readLines(dir).files;
    const next = segmentName(files.length);
    fs.writeFileSync(path.join(dir, next), '{"index":40,"emit');
    const sink = JsonlEventSink.open(base, { mode: 'append', rotateBytes });
    expect(sink.eventCount()).toBe(40);
    for (let i = 0; i < 5; i++) sink.handleEvent({ type: 'ev', session: 'two', n: i });
    await sink.close();
    const set = readLines(dir);
    expect(set.lines.map((l) => l.index)).toEqual(range(0, 45));
    expect(set.files.map((f) => f.name)).toEqual(set.files.map((_, n) => segmentName(n)));
    expect(set.files[files.length]!.raw.length).toBeGreaterThan(0);
  });

  it('resumes from the previous segment when the last segment is empty', async () => {
    const dir = dirs.make('append-empty-segment');
    const base = path.join(dir, BASE_NAME);
    await session(base, 30, 'one', { rotateBytes: 1000 });
    const n = readLines(dir).files.length;
    fs.writeFileSync(path.join(dir, segmentName(n)), '');
    await session(base, 3, 'two', { rotateBytes: 1000, mode: 'append' });
    expect(readLines(dir).lines.map((l) => l.index)).toEqual(range(0, 33));
  });

  it('counts a trailing events_dropped marker as the indexes it covers', async () => {
    const dir = dirs.make('append-marker');
    const base = path.join(dir, BASE_NAME);
    const lines = [
      '{"index":0,"emitted_at_ms":1000,"frame_depth":null,"type":"a"}',
      '{"index":1,"emitted_at_ms":1001,"frame_depth":null,"type":"events_dropped","count":4}',
    ];
    fs.writeFileSync(base, lines.join('\n') + '\n');
    const sink = JsonlEventSink.open(base, { mode: 'append' });
    expect(sink.eventCount()).toBe(5);
    sink.handleEvent({ type: 'b' });
    await sink.close();
    const set = readLines(dir);
    expect(set.lines.map((l) => l.index)).toEqual([0, 1, 5]);
    expect(set.lines[2]!.emitted_at_ms).toBeGreaterThanOrEqual(1001);
  });

  it('starts at index 0 when the file does not exist (creating parent directories)', async () => {
    const dir = dirs.make('append-missing');
    const base = path.join(dir, 'a', 'b', BASE_NAME);
    const sink = JsonlEventSink.open(base, { mode: 'append' });
    expect(sink.eventCount()).toBe(0);
    sink.handleEvent({ type: 'first' });
    await sink.close();
    expect(readLines(path.dirname(base)).lines.map((l) => [l.index, l.type])).toEqual([[0, 'first']]);
  });

  it('starts at index 0 on an empty file, and on a file holding only a torn line', async () => {
    const dir = dirs.make('append-empty');
    const base = path.join(dir, BASE_NAME);
    fs.writeFileSync(base, '');
    await session(base, 2, 'one', { mode: 'append' });
    expect(readLines(dir).lines.map((l) => l.index)).toEqual([0, 1]);

    const dir2 = dirs.make('append-only-torn');
    const base2 = path.join(dir2, BASE_NAME);
    fs.writeFileSync(base2, '{"index":0,"emitted_at_ms":12');
    await session(base2, 2, 'one', { mode: 'append' });
    expect(readLines(dir2).lines.map((l) => l.index)).toEqual([0, 1]);
  });

  it('refuses to resume a file whose last line is not a ringlog line', () => {
    const dir = dirs.make('append-foreign');
    const base = path.join(dir, BASE_NAME);
    fs.writeFileSync(base, 'just some text\n');
    let caught: unknown;
    try {
      JsonlEventSink.open(base, { mode: 'append' });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(SinkError);
    expect((caught as SinkError).code).toBe('ERR_RINGLOG_OPEN');
    expect((caught as SinkError).message).toContain(base);
    // Nothing was changed.
    expect(fs.readFileSync(base, 'utf8')).toBe('just some text\n');
  });
});

describe('truncate mode (default)', () => {
  it('starts again at index 0 and deletes stale numbered segments', async () => {
    const dir = dirs.make('truncate-stale');
    const base = path.join(dir, BASE_NAME);
    await session(base, 80, 'one', { rotateBytes: 1000 });
    const stale = readLines(dir).files.length;
    expect(stale).toBeGreaterThan(3);
    // Files that are not segments of this set stay.
    fs.writeFileSync(path.join(dir, 'event_log-1.jsonl'), 'not a segment name\n');
    fs.writeFileSync(path.join(dir, 'other-000001.jsonl'), 'another set\n');
    fs.writeFileSync(path.join(dir, 'notes.txt'), 'keep me\n');
    const sink = JsonlEventSink.open(base, { rotateBytes: 1000 });
    expect(sink.eventCount()).toBe(0);
    // The stale segments are gone at open, before anything is written; the open sink holds the
    // path's lock file.
    expect(fs.readdirSync(dir).sort()).toEqual([BASE_NAME, `${BASE_NAME}.lock`, 'event_log-1.jsonl', 'notes.txt', 'other-000001.jsonl'].sort());
    expect(fs.statSync(base).size).toBe(0);
    for (let i = 0; i < 3; i++) sink.handleEvent({ type: 'ev', session: 'two', n: i });
    await sink.close();
    const set = readLines(dir);
    expect(set.files.map((f) => f.name)).toEqual([BASE_NAME]);
    expect(set.lines.map((l) => [l.index, l.session])).toEqual([
      [0, 'two'],
      [1, 'two'],
      [2, 'two'],
    ]);
    expect(fs.readFileSync(path.join(dir, 'notes.txt'), 'utf8')).toBe('keep me\n');
  });

  it('is the default and also applies with mode: "truncate"', async () => {
    for (const options of [undefined, { mode: 'truncate' as const }]) {
      const dir = dirs.make('truncate-mode');
      const base = path.join(dir, BASE_NAME);
      await session(base, 10, 'one');
      await session(base, 4, 'two', options);
      expect(readLines(dir).lines.map((l) => [l.index, l.session])).toEqual(range(0, 4).map((i) => [i, 'two']));
    }
  });
});
