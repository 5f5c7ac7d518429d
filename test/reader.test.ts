// Issue 6, the reader: a rotated set (plain and gzip segments) read back in index order, streaming,
// with gaps, duplicates, disorder, bad lines and torn lines reported as typed issues; eventAt over
// a sparse index kept beside the log.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import {
  JsonlEventSink,
  ReadError,
  eventAt,
  listSegments,
  readEvents,
  readRecords,
  readStream,
  sparseIndexPath,
  type PersistedEvent,
  type RawRecord,
  type ReadIssue,
  type ReadOptions,
} from '../dist/src/index.js';
import { indexCounters } from '../dist/src/reader/sparse-index.js';
import { BASE_NAME, failure, lastJson, readLines, runChild, runChildWithEnv, segmentName, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** A set written by a real sink: `count` events of three types, rotated every `rotateBytes`. */
async function sinkSet(label: string, count: number, rotateBytes: number, pad = 40): Promise<{ dir: string; base: string }> {
  const dir = dirs.make(label);
  const base = path.join(dir, BASE_NAME);
  const sink = JsonlEventSink.open(base, { rotateBytes });
  const types = ['llm_call', 'tool_call', 'step'];
  for (let i = 0; i < count; i++) sink.handleEvent({ type: types[i % 3], n: i, text: 'y'.repeat(i % pad) });
  await sink.close();
  return { dir, base };
}

/** A hand-made line in ringlog's format. */
function L(index: number, fields: Record<string, unknown> = { type: 'e' }): string {
  return JSON.stringify({ index, emitted_at_ms: 1_700_000_000_000 + index, frame_depth: null, ...fields });
}

/** Writes files (name → content) into a fresh directory; returns the base path. */
function craft(label: string, files: Record<string, string>): string {
  const dir = dirs.make(label);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return path.join(dir, BASE_NAME);
}

const lines = (...idx: (number | string)[]): string => idx.map((i) => (typeof i === 'number' ? L(i) : i) + '\n').join('');

async function indexesOf(base: string, opts: ReadOptions = {}): Promise<number[]> {
  return (await collect(readEvents(base, opts))).map((e) => e.index);
}

function warnMode(): { opts: ReadOptions; issues: ReadIssue[] } {
  const issues: ReadIssue[] = [];
  return { opts: { issues: 'warn', onIssue: (i) => issues.push(i) }, issues };
}

describe('readEvents / readRecords over a set written by JsonlEventSink', () => {
  it('reads every event back in index order, byte-identical, across many segments', async () => {
    const { dir, base } = await sinkSet('read-all', 5000, 16 * 1024);
    const set = readLines(dir);
    expect(set.files.length).toBeGreaterThan(10);
    const events = await collect(readEvents(base));
    expect(events).toEqual(set.lines);
    const records = await collect(readRecords(base));
    expect(records.map((r) => r.text)).toEqual(set.raw);
    expect(records.map((r) => r.type)).toEqual(set.lines.map((l) => l.type));
    expect(records.every((r) => r.covers === 1 && r.bytes === Buffer.byteLength(r.text) + 1)).toBe(true);
    // file and line point at the line on disk.
    const r = records[4321]!;
    expect(fs.readFileSync(r.file, 'utf8').split('\n')[r.line - 1]).toBe(r.text);
    const segs = await listSegments(base);
    expect(segs.map((s) => path.basename(s.path))).toEqual(set.files.map((f) => f.name));
    expect(segs.map((s) => s.number)).toEqual(set.files.map((f) => f.n));
    expect(segs.every((s, k) => !s.compressed && s.bytes === set.files[k]!.bytes)).toBe(true);
  });

  it('selects by fromIndex, toIndex (inclusive) and types; skipped types are still checked', async () => {
    const { dir, base } = await sinkSet('read-filter', 3000, 8 * 1024);
    const all = readLines(dir).lines;
    expect(await indexesOf(base, { fromIndex: 1234, toIndex: 1300 })).toEqual(all.slice(1234, 1301).map((l) => l.index));
    expect(await indexesOf(base, { fromIndex: 2990 })).toEqual(all.slice(2990).map((l) => l.index));
    expect(await indexesOf(base, { toIndex: 5 })).toEqual([0, 1, 2, 3, 4, 5]);
    expect(await indexesOf(base, { fromIndex: 5000 })).toEqual([]);
    const steps = await collect(readRecords(base, { types: ['step'], fromIndex: 100, toIndex: 199 }));
    expect(steps.map((r) => r.index)).toEqual(all.filter((l) => l.type === 'step' && l.index >= 100 && l.index <= 199).map((l) => l.index));
    expect(await failure(() => collect(readEvents(base, { fromIndex: -1 })))).toBeInstanceOf(RangeError);
    // A gap hidden inside a filtered-out type still rejects.
    const gapped = craft('filter-gap', { [BASE_NAME]: lines(L(0, { type: 'a' }), L(1, { type: 'b' }), L(3, { type: 'b' }), L(4, { type: 'a' })) });
    const err = await failure(() => collect(readEvents(gapped, { types: ['a'] })));
    expect(err).toBeInstanceOf(ReadError);
    expect((err as ReadError).code).toBe('ERR_RINGLOG_READ_GAP');
  });

  it('rejects a missing set with ERR_RINGLOG_READ_IO', async () => {
    const dir = dirs.make('missing');
    const err = await failure(() => collect(readEvents(path.join(dir, 'nope', BASE_NAME))));
    expect(err).toBeInstanceOf(ReadError);
    expect((err as ReadError).code).toBe('ERR_RINGLOG_READ_IO');
  });
});

describe('issues', () => {
  const cases: { name: string; code: string; text: string; line: number; index?: number; expected?: number; read: number[] }[] = [
    { name: 'gap', code: 'ERR_RINGLOG_READ_GAP', text: lines(0, 1, 4, 5), line: 3, index: 4, expected: 2, read: [0, 1, 4, 5] },
    { name: 'duplicate', code: 'ERR_RINGLOG_READ_DUPLICATE', text: lines(0, 1, 1, 2), line: 3, index: 1, expected: 2, read: [0, 1, 1, 2] },
    { name: 'order', code: 'ERR_RINGLOG_READ_ORDER', text: lines(0, 1, 2, 1, 2, 3), line: 4, index: 1, expected: 3, read: [0, 1, 2, 1, 2, 3] },
    { name: 'parse', code: 'ERR_RINGLOG_READ_PARSE', text: lines(0, 1, '{"index":2,"emitted_at', 2), line: 3, read: [0, 1, 2] },
    { name: 'parse (no index)', code: 'ERR_RINGLOG_READ_PARSE', text: lines(0, '{"hello":1}', 1), line: 2, read: [0, 1] },
  ];
  for (const c of cases) {
    it(`${c.name}: rejects with a ReadError in 'throw' mode, after yielding the lines before it`, async () => {
      const base = craft(c.name, { [BASE_NAME]: c.text });
      const got: number[] = [];
      const err = await failure(async () => {
        for await (const e of readEvents(base)) got.push(e.index);
      });
      expect(err).toBeInstanceOf(ReadError);
      const re = err as ReadError;
      expect(re.code).toBe(c.code);
      expect(re.file).toBe(base);
      expect(re.line).toBe(c.line);
      expect(re.index).toBe(c.index);
      expect(re.expected).toBe(c.expected);
      expect(got).toEqual(c.read.slice(0, c.line - 1));
      // readRecords makes the same checks.
      expect(((await failure(() => collect(readRecords(base)))) as ReadError).code).toBe(c.code);
    });
    it(`${c.name}: reported to onIssue in 'warn' mode while reading goes on`, async () => {
      const base = craft(c.name, { [BASE_NAME]: c.text });
      const { opts, issues } = warnMode();
      expect(await indexesOf(base, opts)).toEqual(c.read);
      expect(issues).toHaveLength(1);
      expect(issues[0]).toMatchObject({ code: c.code, file: base, line: c.line });
      expect(issues[0]!.message).toContain(`${base}:${c.line}`);
    });
  }

  it('one index rewritten backwards: out of order, then only the index it replaced is missing; the expectation does not move back', async () => {
    // Index 4 rewritten as 1: a replayed run would go on 2, 3, …; this goes on at 5.
    const base = craft('stray-back', { [BASE_NAME]: lines(0, 1, 2, 3, 1, 5, 6) });
    const { opts, issues } = warnMode();
    expect(await indexesOf(base, opts)).toEqual([0, 1, 2, 3, 1, 5, 6]);
    expect(issues.map((i) => [i.code, i.line, i.index, i.expected])).toEqual([
      ['ERR_RINGLOG_READ_ORDER', 5, 1, 4],
      ['ERR_RINGLOG_READ_GAP', 6, 5, 4],
    ]);
    expect(issues[1]!.message).toMatch(/index 5 where 4 was expected: index 4 is missing$/);
    // A stray line after which the stream goes on as if it were not there: only the stray is wrong.
    const { opts: o2, issues: i2 } = warnMode();
    await indexesOf(craft('stray-back-2', { [BASE_NAME]: lines(0, 1, 2, 3, 1, 4, 5) }), o2);
    expect(i2.map((i) => [i.code, i.line])).toEqual([['ERR_RINGLOG_READ_ORDER', 5]]);
  });

  it('a base file must start at index 0; a set whose base file is gone or empty starts where its oldest segment does', async () => {
    const { opts, issues } = warnMode();
    expect(await indexesOf(craft('base-late', { [BASE_NAME]: lines(3, 4), [segmentName(1)]: lines(5) }), opts)).toEqual([3, 4, 5]);
    expect(issues.map((i) => [i.code, i.line, i.index, i.expected])).toEqual([['ERR_RINGLOG_READ_GAP', 1, 3, 0]]);
    expect(await indexesOf(craft('base-gone', { [segmentName(2)]: lines(3, 4), [segmentName(3)]: lines(5) }))).toEqual([3, 4, 5]);
    expect(await indexesOf(craft('base-empty', { [BASE_NAME]: '', [segmentName(2)]: lines(3, 4) }))).toEqual([3, 4]);
  });

  it('a truncated .gz segment is ERR_RINGLOG_READ_CORRUPT, naming it; in warn mode reading goes on with the next segment', async () => {
    const seg1 = lines(...Array.from({ length: 200 }, (_, i) => 100 + i));
    const gz = zlib.gzipSync(Buffer.from(seg1));
    const base = craft('gz-truncated', {
      [BASE_NAME]: lines(...Array.from({ length: 100 }, (_, i) => i)),
      [segmentName(2)]: lines(300, 301),
    });
    const gzPath = path.join(path.dirname(base), `${segmentName(1)}.gz`);
    fs.writeFileSync(gzPath, gz.subarray(0, gz.length - 20));
    const got: number[] = [];
    const err = (await failure(async () => {
      for await (const e of readEvents(base)) got.push(e.index);
    })) as ReadError;
    expect(err).toBeInstanceOf(ReadError);
    expect(err.code).toBe('ERR_RINGLOG_READ_CORRUPT');
    expect(err.file).toBe(gzPath);
    expect(err.message).toContain(`${gzPath}:${err.line}: compressed data damaged`);
    // Every whole line before the damage was read.
    expect(got).toEqual(Array.from({ length: 100 + err.line - 1 }, (_, i) => i));
    const { opts, issues } = warnMode();
    const all = await indexesOf(base, opts);
    expect(all.slice(-2)).toEqual([300, 301]);
    expect(issues.map((i) => i.code)).toEqual(['ERR_RINGLOG_READ_CORRUPT', 'ERR_RINGLOG_READ_GAP']);
  });

  it('a torn line in the middle of the set is ERR_RINGLOG_READ_TORN', async () => {
    const base = craft('torn-mid', { [BASE_NAME]: lines(0, 1) + L(2).slice(0, 20), [segmentName(1)]: lines(2, 3) });
    const err = (await failure(() => collect(readEvents(base)))) as ReadError;
    expect(err).toBeInstanceOf(ReadError);
    expect(err.code).toBe('ERR_RINGLOG_READ_TORN');
    expect(err.line).toBe(3);
    const { opts, issues } = warnMode();
    expect(await indexesOf(base, opts)).toEqual([0, 1, 2, 3]);
    expect(issues.map((i) => i.code)).toEqual(['ERR_RINGLOG_READ_TORN']);
  });

  it('skips a torn last line of the last segment silently', async () => {
    const base = craft('torn-last', { [BASE_NAME]: lines(0, 1), [segmentName(1)]: lines(2, 3) + L(4).slice(0, 30) });
    expect(await indexesOf(base)).toEqual([0, 1, 2, 3]);
    expect((await collect(readRecords(base))).map((r) => r.index)).toEqual([0, 1, 2, 3]);
  });

  it('onTornTail hears the skipped torn last line of a set or a stream, and nothing on a clean end', async () => {
    const base = craft('torn-tail-hook', { [BASE_NAME]: lines(0, 1), [segmentName(1)]: lines(2, 3) + L(4).slice(0, 30) });
    const heard: { file: string; bytes: number }[] = [];
    await collect(readRecords(base, { onTornTail: (t) => heard.push(t) }));
    expect(heard).toEqual([{ file: path.join(path.dirname(base), segmentName(1)), bytes: 30 }]);
    await collect(readStream(Readable.from([lines(0, 1), L(2).slice(0, 7)]), { onTornTail: (t) => heard.push(t) }));
    expect(heard[1]).toEqual({ file: '-', bytes: 7 });
    const clean = craft('clean-tail', { [BASE_NAME]: lines(0, 1, 2) });
    await collect(readEvents(clean, { onTornTail: (t) => heard.push(t) }));
    expect(heard).toHaveLength(2);
    expect(() => readRecords(clean, { onTornTail: 5 as never })).toThrow(TypeError);
  });

  it("'warn' without onIssue goes to process.emitWarning", async () => {
    const base = craft('emit-warning', { [BASE_NAME]: lines(0, 2) });
    const seen: Error[] = [];
    const listener = (w: Error): void => void seen.push(w);
    process.on('warning', listener);
    try {
      expect(await indexesOf(base, { issues: 'warn' })).toEqual([0, 2]);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', listener);
    }
    expect(seen.map((w) => (w as Error & { code?: string }).code)).toEqual(['ERR_RINGLOG_READ_GAP']);
  });

  it('a drop marker covers count indexes; eventAt returns it for each of them', async () => {
    const base = craft('dropped', {
      [BASE_NAME]: lines(0, L(1, { type: 'events_dropped', count: 3 }), 4, L(5, { type: 'event_rejected', reason: 'x' }), 6),
    });
    expect(await indexesOf(base)).toEqual([0, 1, 4, 5, 6]);
    const recs = await collect(readRecords(base));
    expect(recs.map((r) => r.covers)).toEqual([1, 3, 1, 1, 1]);
    expect(recs.map((r) => r.type)).toEqual(['e', 'events_dropped', 'e', 'event_rejected', 'e']);
    // Range selection intersects the marker's range.
    expect(await indexesOf(base, { fromIndex: 3, toIndex: 3 })).toEqual([1]);
    for (const i of [1, 2, 3]) expect((await eventAt(base, i))?.type).toBe('events_dropped');
    expect((await eventAt(base, 4))?.index).toBe(4);
    expect(await eventAt(base, 7)).toBeUndefined();
    expect(await eventAt(base, -1)).toBeUndefined();
    // A marker whose count is not a positive integer is a bad line.
    const bad = craft('bad-count', { [BASE_NAME]: lines(0, L(1, { type: 'events_dropped', count: 0 })) });
    expect(((await failure(() => collect(readRecords(bad)))) as ReadError).code).toBe('ERR_RINGLOG_READ_PARSE');
  });

  it('readRecords falls back to JSON.parse for lines in another key order (type not first)', async () => {
    const odd = JSON.stringify({ emitted_at_ms: 5, index: 1, frame_depth: 2, type: 't' });
    const later = JSON.stringify({ index: 2, emitted_at_ms: 6, frame_depth: null, other: { type: 'nested' }, type: 'outer' });
    const esc = JSON.stringify({ index: 3, emitted_at_ms: 7, frame_depth: null, type: 'q"uote' });
    const base = craft('key-order', { [BASE_NAME]: lines(0, odd, later, esc) });
    const recs = await collect(readRecords(base));
    expect(recs.map((r) => [r.index, r.type])).toEqual([
      [0, 'e'],
      [1, 't'],
      [2, 'outer'],
      [3, 'q"uote'],
    ]);
  });
});

describe('segments on disk', () => {
  it('reads .gz segments transparently, and one of X.jsonl / X.jsonl.gz when both exist', async () => {
    const { dir, base } = await sinkSet('gz', 4000, 16 * 1024);
    const expected = readLines(dir).lines;
    const files = readLines(dir).files;
    expect(files.length).toBeGreaterThan(6);
    // Compress the base and segments 1..4; keep segment 3 in both forms (a crash mid-compression).
    for (const f of files.slice(0, 5)) {
      fs.writeFileSync(f.path + '.gz', zlib.gzipSync(fs.readFileSync(f.path)));
      if (f.n !== 3) fs.rmSync(f.path);
    }
    fs.writeFileSync(path.join(dir, segmentName(5) + '.gz.tmp'), 'half-written garbage');
    const segs = await listSegments(base);
    expect(segs.map((s) => [s.number, s.compressed])).toEqual(files.map((f) => [f.n, f.n <= 4 && f.n !== 3]));
    expect(await collect(readEvents(base))).toEqual(expected);
    // Seeking into and eventAt inside compressed segments.
    const mid = expected[Math.floor(files[0]!.raw.length + 10)]!;
    expect(await eventAt(base, mid.index)).toEqual(mid);
    expect(await indexesOf(base, { fromIndex: mid.index, toIndex: mid.index + 2 })).toEqual([mid.index, mid.index + 1, mid.index + 2]);
    for (const i of [0, 1999, 3999]) expect(await eventAt(base, i)).toEqual(expected[i]);
  });

  it('a set whose base file and first segments were deleted (retention) starts at the lowest segment', async () => {
    const { dir, base } = await sinkSet('retention', 3000, 8 * 1024);
    const set = readLines(dir);
    for (const f of set.files.slice(0, 3)) fs.rmSync(f.path);
    const first = JSON.parse(set.files[3]!.raw[0]!) as PersistedEvent;
    const got = await indexesOf(base);
    expect(got[0]).toBe(first.index);
    expect(got).toEqual(set.lines.slice(set.lines.length - got.length).map((l) => l.index));
    expect(await eventAt(base, first.index - 1)).toBeUndefined();
    expect(await eventAt(base, first.index)).toEqual(first);
    // A numbered segment missing in the middle is a gap.
    fs.rmSync(set.files[5]!.path);
    const err = (await failure(() => collect(readEvents(base)))) as ReadError;
    expect(err.code).toBe('ERR_RINGLOG_READ_GAP');
    expect(err.file).toBe(set.files[6]!.path);
    expect(err.line).toBe(1);
  });

  it('readStream reads one NDJSON stream with the same checks', async () => {
    const text = lines(0, 1, 2, 3) + L(4).slice(0, 10);
    // Chunks cut mid-line.
    const chunks = [text.slice(0, 7), text.slice(7, 100), text.slice(100)].map((s) => Buffer.from(s));
    const recs: RawRecord[] = await collect(readStream(Readable.from(chunks)));
    expect(recs.map((r) => r.index)).toEqual([0, 1, 2, 3]);
    expect(recs.map((r) => r.line)).toEqual([1, 2, 3, 4]);
    const err = (await failure(() => collect(readStream(Readable.from([lines(0, 2)]))))) as ReadError;
    expect(err.code).toBe('ERR_RINGLOG_READ_GAP');
    const { opts, issues } = warnMode();
    expect((await collect(readStream(Readable.from([lines(0, 2, 2)]), opts))).map((r) => r.index)).toEqual([0, 2, 2]);
    expect(issues.map((i) => i.code)).toEqual(['ERR_RINGLOG_READ_GAP', 'ERR_RINGLOG_READ_DUPLICATE']);
  });
});

describe('eventAt and the sparse index', () => {
  it('finds events in a 200k-event set; builds the index once, reuses, extends and rebuilds it', async () => {
    // Segments of 4 MiB hold several checkpoints each (one per MiB).
    const { dir, base } = await sinkSet('event-at', 200_000, 4 * 1024 * 1024, 200);
    const set = readLines(dir);
    expect(set.files.length).toBeGreaterThan(4);
    const idxFile = sparseIndexPath(base);
    expect(path.basename(idxFile)).toBe('.event_log.jsonl.idx.json');
    expect(fs.existsSync(idxFile)).toBe(false);

    const before = { ...indexCounters };
    const probes = [0, 1, 777, 65_432, 123_456, 199_998, 199_999];
    for (const i of probes) expect(await eventAt(base, i)).toEqual(set.lines[i]);
    expect(await eventAt(base, 200_000)).toBeUndefined();
    expect(indexCounters.scans - before.scans).toBe(set.files.length);
    expect(indexCounters.writes - before.writes).toBe(1);
    const written = JSON.parse(fs.readFileSync(idxFile, 'utf8')) as {
      version: number;
      segments: { name: string; firstIndex: number; lastIndex: number; checkpoints: [number, number, number][] }[];
    };
    expect(written.version).toBe(1);
    expect(written.segments.map((s) => s.name)).toEqual(set.files.map((f) => f.name));
    expect(written.segments[0]!.firstIndex).toBe(0);
    expect(written.segments.at(-1)!.lastIndex).toBe(199_999);
    expect(written.segments[0]!.checkpoints.length).toBeGreaterThanOrEqual(4);
    for (const [index, offset, line] of written.segments[1]!.checkpoints) {
      const f = set.files[1]!;
      expect(JSON.parse(f.raw[line - 1]!).index).toBe(index);
      expect(Buffer.byteLength(f.raw.slice(0, line - 1).join('\n')) + (line > 1 ? 1 : 0)).toBe(offset);
    }

    // Reused: nothing scanned, the file not rewritten.
    const st1 = fs.statSync(idxFile);
    const mid = { ...indexCounters };
    expect(await eventAt(base, 150_000)).toEqual(set.lines[150_000]);
    expect(indexCounters.scans).toBe(mid.scans);
    expect(indexCounters.writes).toBe(mid.writes);
    const st2 = fs.statSync(idxFile);
    expect([st2.ino, st2.mtimeMs]).toEqual([st1.ino, st1.mtimeMs]);

    // Reused by a fresh process from the file.
    const child = await runChild(
      `import { eventAt } from '%RINGLOG%';
       const { indexCounters } = await import(new URL('./reader/sparse-index.js', '%RINGLOG%').href);
       const e = await eventAt(process.argv[2], 99_999);
       console.log(JSON.stringify({ index: e.index, counters: indexCounters }));`,
      [base],
    );
    expect(child.code, child.stderr).toBe(0);
    expect(lastJson<{ index: number; counters: typeof indexCounters }>(child)).toEqual({
      index: 99_999,
      counters: { scans: 0, extensions: 0, writes: 0, writeFailures: 0, fileLoads: 1 },
    });

    // A segment replaced (same content, new file): only that one is scanned again.
    const seg2 = set.files[2]!;
    fs.writeFileSync(seg2.path + '.new', fs.readFileSync(seg2.path));
    fs.renameSync(seg2.path + '.new', seg2.path);
    const r0 = { ...indexCounters };
    expect(await eventAt(base, JSON.parse(seg2.raw[10]!).index)).toEqual(JSON.parse(seg2.raw[10]!));
    expect(indexCounters.scans - r0.scans).toBe(1);
    expect(indexCounters.writes - r0.writes).toBe(1);

    // The last segment grew (a live writer): extended from its last checkpoint, not rescanned.
    const last = set.files.at(-1)!;
    fs.appendFileSync(last.path, lines(200_000, 200_001) + L(200_002).slice(0, 15));
    const e0 = { ...indexCounters };
    expect((await eventAt(base, 200_001))?.index).toBe(200_001);
    expect(await eventAt(base, 200_002)).toBeUndefined();
    expect(indexCounters.scans).toBe(e0.scans);
    expect(indexCounters.extensions - e0.extensions).toBe(1);
    // The torn line completed.
    fs.appendFileSync(last.path, L(200_002).slice(15) + '\n');
    expect((await eventAt(base, 200_002))?.index).toBe(200_002);

    // A segment truncated and rewritten with other content: rebuilt, never trusted.
    fs.writeFileSync(last.path, lines(190_000, 190_001));
    const t0 = { ...indexCounters };
    expect(await eventAt(base, 200_001)).toBeUndefined();
    expect((await eventAt(base, 190_001))?.index).toBe(190_001);
    expect(indexCounters.scans - t0.scans).toBe(1);

    // readEvents({ fromIndex }) seeks with the index and reads the rest.
    expect((await collect(readEvents(base, { fromIndex: 123_000, toIndex: 123_004 }))).map((e) => e.index)).toEqual([
      123_000, 123_001, 123_002, 123_003, 123_004,
    ]);
  });

  it('works in a read-only directory (uid 65534): the index stays in memory', async () => {
    const { dir, base } = await sinkSet('read-only', 20_000, 256 * 1024);
    fs.chmodSync(dir, 0o755);
    for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    if (process.getuid?.() !== 0) fs.chmodSync(dir, 0o555);
    const res = await runChild(
      `import { eventAt, readEvents } from '%RINGLOG%';
       const { indexCounters } = await import(new URL('./reader/sparse-index.js', '%RINGLOG%').href);
       const base = process.argv[2];
       let n = 0;
       for await (const e of readEvents(base)) { if (e.index !== n) throw new Error('order'); n++; }
       const a = await eventAt(base, 12_345);
       const b = await eventAt(base, 19_999);
       const from = [];
       for await (const e of readEvents(base, { fromIndex: 15_000, toIndex: 15_001 })) from.push(e.index);
       console.log(JSON.stringify({ uid: process.getuid(), n, a: a.index, b: b.index, from, counters: indexCounters }));`,
      [base],
      asNobody,
    );
    if (process.getuid?.() !== 0) fs.chmodSync(dir, 0o755);
    expect(res.code, res.stderr).toBe(0);
    const out = lastJson<{ uid: number; n: number; a: number; b: number; from: number[]; counters: typeof indexCounters }>(res);
    expect(out.uid).not.toBe(0);
    expect(out).toMatchObject({ n: 20_000, a: 12_345, b: 19_999, from: [15_000, 15_001] });
    expect(out.counters.writes).toBe(0);
    expect(out.counters.writeFailures).toBe(1);
    // Built once, then served from memory.
    expect(out.counters.scans).toBe(readLines(dir).files.length);
    expect(fs.readdirSync(dir).some((n) => n.startsWith('.'))).toBe(false);
  });
});

describe('streaming', () => {
  it('reads a set of a few hundred MB in bounded memory (child with a 64 MB old-space limit)', async () => {
    const dir = dirs.make('memory');
    const base = path.join(dir, BASE_NAME);
    // About 300 MB in 64 MiB segments, written directly (the sink is not under test here).
    const gen = await runChild(
      `import * as fs from 'node:fs';
       const dir = process.argv[2];
       let seg = 0, idx = 0, total = 0, segBytes = 0;
       let fd = fs.openSync(dir + '/event_log.jsonl', 'w');
       while (total < 300 * 1048576) {
         let s = '';
         for (let k = 0; k < 2000; k++, idx++) s += JSON.stringify({ index: idx, emitted_at_ms: 1.7e12 + idx, frame_depth: null, type: 't' + (idx % 4), text: 'lorem ipsum '.repeat(1 + (idx % 16)) }) + '\\n';
         const b = Buffer.from(s);
         if (segBytes + b.length > 64 * 1048576) { fs.closeSync(fd); seg++; segBytes = 0; fd = fs.openSync(dir + '/event_log-' + String(seg).padStart(6, '0') + '.jsonl', 'w'); }
         fs.writeSync(fd, b); segBytes += b.length; total += b.length;
       }
       fs.closeSync(fd);
       console.log(JSON.stringify({ events: idx, bytes: total }));`,
      [dir],
    );
    expect(gen.code, gen.stderr).toBe(0);
    const { events, bytes } = lastJson<{ events: number; bytes: number }>(gen);
    const res = await runChildWithEnv(
      `import { readEvents, readRecords } from '%RINGLOG%';
       const base = process.argv[2];
       const rss0 = process.memoryUsage().rss;
       let peakRss = 0, peakHeap = 0;
       const out = {};
       for (const [name, fn] of [['records', readRecords], ['events', readEvents]]) {
         const t = performance.now();
         let n = 0, expect = 0;
         for await (const r of fn(base)) {
           if (r.index !== expect++) throw new Error('order at ' + r.index);
           if ((++n & 8191) === 0) {
             const m = process.memoryUsage();
             peakRss = Math.max(peakRss, m.rss);
             peakHeap = Math.max(peakHeap, m.heapUsed);
           }
         }
         out[name] = { n, seconds: (performance.now() - t) / 1000 };
       }
       console.log(JSON.stringify({ ...out, rss0, peakRss, peakHeap }));`,
      [base],
      { env: { NODE_OPTIONS: '--max-old-space-size=64' } },
    );
    expect(res.code, res.stderr).toBe(0);
    const m = lastJson<{ records: { n: number; seconds: number }; events: { n: number; seconds: number }; rss0: number; peakRss: number; peakHeap: number }>(res);
    expect(m.records.n).toBe(events);
    expect(m.events.n).toBe(events);
    // Fixed bounds, each well under the 300 MiB read: a reader that held the set (or its buffers,
    // which live outside the V8 heap) would go past them. Absolute sizes, not shares of the data.
    expect(bytes).toBeGreaterThanOrEqual(300 * 1048576);
    expect(m.peakHeap).toBeLessThan(45 * 1048576);
    expect(m.peakRss - m.rss0).toBeLessThan(75 * 1048576);
    console.log(
      `read ${(bytes / 1048576).toFixed(0)} MB: records ${(bytes / 1048576 / m.records.seconds).toFixed(0)} MB/s, events ${(bytes / 1048576 / m.events.seconds).toFixed(0)} MB/s; ` +
        `peak heap ${(m.peakHeap / 1048576).toFixed(0)} MB, RSS growth ${((m.peakRss - m.rss0) / 1048576).toFixed(0)} MB`,
    );
  });
});
