// Retention (maxFiles) and compression (compress: 'gzip') of closed segments: what is left on disk,
// that the lines in it are exactly the stream, that compression runs beside the writer, and that a
// crash in the middle of a compression leaves a readable set that the next open finishes.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { JsonlEventSink, readEvents, SinkError } from '../dist/src/index.js';
import { makeCorpus } from '../dist/demo/corpus.js';
import { BASE_NAME, coverage, expectedLine, lastJson, runChild, segmentName, spawnNode, spawnScript, splitLines, tempDirs, type Line } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

type Form = 'plain' | 'gz' | 'tmp';

interface SetFile {
  readonly name: string;
  readonly n: number;
  readonly form: Form;
}

/** Every file of the set in every form, by segment number (plain before gz before tmp). */
function setFiles(dir: string): SetFile[] {
  const re = /^event_log(?:-(\d{6,}))?\.jsonl(\.gz|\.gz\.tmp)?$/;
  const out: SetFile[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = re.exec(name);
    if (!m) continue;
    const form: Form = m[2] === undefined ? 'plain' : m[2] === '.gz' ? 'gz' : 'tmp';
    out.push({ name, n: m[1] === undefined ? 0 : Number(m[1]), form });
  }
  const rank = { plain: 0, gz: 1, tmp: 2 };
  return out.sort((a, b) => a.n - b.n || rank[a.form] - rank[b.form]);
}

interface ReadSet {
  /** The file read for each segment, in order (plain preferred over gz, tmp never read). */
  readonly read: SetFile[];
  readonly raw: string[];
  readonly lines: Line[];
  /** A torn last line of the last file (only when reading tolerantly). */
  readonly torn: string | undefined;
}

/** Reads the set as a reader would: each segment once, plain if present, else decompressed. */
function readSet(dir: string, tolerant = false): ReadSet {
  const bySegment = new Map<number, SetFile>();
  for (const f of setFiles(dir)) if (f.form !== 'tmp' && !bySegment.has(f.n)) bySegment.set(f.n, f);
  const read = [...bySegment.values()].sort((a, b) => a.n - b.n);
  const raw: string[] = [];
  let torn: string | undefined;
  read.forEach((f, k) => {
    const bytes = fs.readFileSync(path.join(dir, f.name));
    const text = (f.form === 'gz' ? gunzipSync(bytes) : bytes).toString('utf8');
    const split = splitLines(text);
    if (split.torn !== undefined && !(tolerant && k === read.length - 1)) throw new Error(`${f.name} ends with a torn line`);
    torn = split.torn;
    raw.push(...split.raw);
  });
  return { read, raw, lines: raw.map((r) => JSON.parse(r) as Line), torn };
}

function indexes(lines: readonly Line[]): number[] {
  return lines.map((l) => l.index);
}

/** The set's indexes through the library's own reader (src/reader), which reads .gz transparently. */
async function readerIndexes(dir: string): Promise<{ indexes: number[]; issues: string[] }> {
  const out: number[] = [];
  const issues: string[] = [];
  for await (const ev of readEvents(path.join(dir, BASE_NAME), { issues: 'warn', onIssue: (i) => issues.push(JSON.stringify(i)) })) out.push(ev.index);
  return { indexes: out, issues };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from }, (_, i) => from + i);
}

describe('maxFiles', () => {
  it('leaves exactly maxFiles files, the newest, with contiguous lines; the current segment stays', async () => {
    const dir = dirs.make('maxfiles');
    const events = makeCorpus(3000, 11);
    const errors: SinkError[] = [];
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 16 * 1024, maxFiles: 5, onError: (e) => errors.push(e) });
    for (let i = 0; i < events.length; i++) {
      sink.handleEvent(events[i]!);
      // Let rotation messages in as the stream goes, as an agent loop's awaits would.
      if (i % 200 === 199) await new Promise((r) => setImmediate(r));
    }
    await sink.close();
    const st = sink.stats();
    expect(st.segment).toBeGreaterThan(50);
    const files = setFiles(dir);
    expect(files.map((f) => f.name)).toEqual(range(st.segment - 4, st.segment + 1).map((n) => segmentName(n)));
    expect(st.segmentsRemoved).toBe(st.segment + 1 - 5);
    const set = readSet(dir);
    const first = set.lines[0]!.index;
    expect(indexes(set.lines)).toEqual(range(first, events.length));
    set.raw.forEach((r, k) => {
      if (r !== expectedLine(first + k, set.lines[k]!.emitted_at_ms, events[first + k]!)) throw new Error(`line ${first + k} differs`);
    });
    expect((await readerIndexes(dir)).indexes).toEqual(range(first, events.length));
    expect(errors).toEqual([]);
  });

  it('maxFiles 1 keeps only the current segment', async () => {
    const dir = dirs.make('maxfiles-1');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 2048, maxFiles: 1 });
    for (let i = 0; i < 400; i++) sink.handleEvent({ type: 'tick', i, pad: 'x'.repeat(100) });
    await sink.close();
    expect(setFiles(dir).map((f) => f.name)).toEqual([segmentName(sink.stats().segment)]);
    const set = readSet(dir);
    expect(set.lines.at(-1)!.index).toBe(399);
  });
});

describe("compress: 'gzip'", () => {
  it('turns every closed segment into .jsonl.gz holding exactly the lines written; only the current one stays plain', async () => {
    const dir = dirs.make('gzip');
    const events = makeCorpus(3000, 12);
    const errors: SinkError[] = [];
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 64 * 1024, compress: 'gzip', onError: (e) => errors.push(e) });
    for (let i = 0; i < events.length; i++) {
      sink.handleEvent(events[i]!);
      if (i % 200 === 199) await new Promise((r) => setImmediate(r));
    }
    await sink.close();
    const st = sink.stats();
    expect(st.segment).toBeGreaterThan(20);
    const files = setFiles(dir);
    const expected = [...range(0, st.segment).map((n) => `${segmentName(n)}.gz`), segmentName(st.segment)];
    expect(files.map((f) => f.name)).toEqual(expected);
    expect(st.segmentsCompressed).toBe(st.segment);
    const set = readSet(dir);
    expect(indexes(set.lines)).toEqual(range(0, events.length));
    set.raw.forEach((r, k) => {
      if (r !== expectedLine(k, set.lines[k]!.emitted_at_ms, events[k]!)) throw new Error(`line ${k} differs`);
    });
    expect(await readerIndexes(dir)).toEqual({ indexes: range(0, events.length), issues: [] });
    // Each compressed segment is a whole-line file, and they really are compressed.
    for (const f of files.filter((x) => x.form === 'gz')) {
      const bytes = fs.readFileSync(path.join(dir, f.name));
      const text = gunzipSync(bytes).toString('utf8');
      expect(text.endsWith('\n')).toBe(true);
      expect([...bytes.subarray(0, 3)], 'gzip magic, deflate').toEqual([0x1f, 0x8b, 8]);
      expect(bytes.length).toBeLessThan(text.length);
    }
    expect(errors).toEqual([]);
  });

  it('with maxFiles: the newest maxFiles - 1 closed segments compressed, plus the current one', async () => {
    const dir = dirs.make('gzip-maxfiles');
    const events = makeCorpus(3000, 13);
    const errors: SinkError[] = [];
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), {
      rotateBytes: 32 * 1024,
      compress: 'gzip',
      maxFiles: 4,
      onError: (e) => errors.push(e),
    });
    for (let i = 0; i < events.length; i++) {
      sink.handleEvent(events[i]!);
      if (i % 100 === 99) await new Promise((r) => setImmediate(r));
    }
    await sink.close();
    const st = sink.stats();
    const files = setFiles(dir);
    expect(files.map((f) => f.name)).toEqual([
      ...range(st.segment - 3, st.segment).map((n) => `${segmentName(n)}.gz`),
      segmentName(st.segment),
    ]);
    expect(st.segmentsRemoved).toBe(st.segment + 1 - 4);
    const set = readSet(dir);
    const first = set.lines[0]!.index;
    expect(first).toBeGreaterThan(0);
    expect(indexes(set.lines)).toEqual(range(first, events.length));
    expect(errors).toEqual([]);
  });

  // Whether compression slows the writer is a measurement, not a contract: bench/compress.ts
  // measures it. What can be asserted is that jobs run while the sink is open (not at close) and
  // that writing goes on beside them.
  it('compresses closed segments while the sink is open; writing goes on meanwhile', async () => {
    const dir = dirs.make('gzip-while-open');
    const events = makeCorpus(4000, 14);
    const half = events.length / 2;
    const errors: SinkError[] = [];
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 32 * 1024, compress: 'gzip', onError: (e) => errors.push(e) });
    const write = async (from: number, to: number): Promise<void> => {
      for (let i = from; i < to; i++) {
        sink.handleEvent(events[i]!);
        if (i % 200 === 199) await new Promise((r) => setImmediate(r));
      }
      await sink.flush();
    };
    await write(0, half);
    expect(sink.stats().segment).toBeGreaterThan(1);
    // The deadline only keeps a broken build from hanging; the assertion is on what happened.
    const deadline = Date.now() + 30_000;
    while (sink.stats().segmentsCompressed === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(sink.stats().segmentsCompressed, 'a segment compressed with the sink still open').toBeGreaterThan(0);
    expect(setFiles(dir).some((f) => f.form === 'gz')).toBe(true);
    await write(half, events.length);
    await sink.close();
    const st = sink.stats();
    expect(st.segmentsCompressed).toBe(st.segment);
    expect(setFiles(dir).map((f) => f.name)).toEqual([...range(0, st.segment).map((n) => `${segmentName(n)}.gz`), segmentName(st.segment)]);
    expect(indexes(readSet(dir).lines)).toEqual(range(0, events.length));
    expect(errors).toEqual([]);
  });
});

const CRASH_CHILD = `
import { JsonlEventSink } from '%RINGLOG%';
import { makeCorpus } from '%CORPUS%';
const sink = JsonlEventSink.open(process.argv[2], { rotateBytes: 8 * 1024 * 1024, compress: 'gzip', compressLevel: 6 });
const events = makeCorpus(5000, 15);
console.log('started');
for (let i = 0; ; i++) {
  sink.handleEvent(events[i % events.length]);
  if (i % 500 === 499) await new Promise((r) => setImmediate(r));
}
`;

describe('a crash in the middle of compression', () => {
  it('leaves a readable set (every index once), and the next open in append mode finishes the job', async () => {
    const dir = dirs.make('crash');
    const { child, result } = spawnScript(CRASH_CHILD, [path.join(dir, BASE_NAME)], { timeoutMs: 60_000 });
    let killedWithTmp = false;
    const deadline = Date.now() + 50_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (setFiles(dir).some((f) => f.form === 'tmp')) {
        child.kill('SIGKILL');
        killedWithTmp = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    const r = await result;
    expect(killedWithTmp, `no .gz.tmp seen; child stderr: ${r.stderr}`).toBe(true);
    expect(r.signal).toBe('SIGKILL');
    const before = setFiles(dir);
    const tmp = before.filter((f) => f.form === 'tmp');
    expect(tmp.length).toBeGreaterThan(0);
    // The segment being compressed is still there in plain form.
    for (const t of tmp) expect(before.some((f) => f.n === t.n && f.form === 'plain')).toBe(true);
    const set = readSet(dir, true);
    const cov = coverage(set.lines);
    expect(cov.problems).toEqual([]);
    expect(set.lines[0]!.index).toBe(0);
    // The library's reader agrees (it may report the torn last line a SIGKILL can leave).
    expect((await readerIndexes(dir)).indexes).toEqual(indexes(set.lines));

    const errors: SinkError[] = [];
    const again = JsonlEventSink.open(path.join(dir, BASE_NAME), { mode: 'append', compress: 'gzip', onError: (e) => errors.push(e) });
    expect(again.eventCount()).toBe(cov.next);
    again.handleEvent({ type: 'resumed' });
    await again.close();
    expect(errors).toEqual([]);
    const after = setFiles(dir);
    const current = again.stats().segment;
    expect(after.filter((f) => f.form === 'tmp')).toEqual([]);
    expect(after.filter((f) => f.form === 'plain').map((f) => f.n)).toEqual([current]);
    expect(after.filter((f) => f.form === 'gz').map((f) => f.n)).toEqual(range(0, current));
    const final = readSet(dir);
    expect(indexes(final.lines)).toEqual(range(0, cov.next + 1));
    expect(final.lines.at(-1)!.type).toBe('resumed');
    expect(await readerIndexes(dir)).toEqual({ indexes: range(0, cov.next + 1), issues: [] });
  });
});

describe('append mode with compressed segments', () => {
  it('resumes after the last line of a compressed segment when the current one is empty', async () => {
    const dir = dirs.make('append-gz');
    const base = path.join(dir, BASE_NAME);
    const first = JsonlEventSink.open(base, { rotateBytes: 4096, compress: 'gzip' });
    for (let i = 0; i < 200; i++) first.handleEvent({ type: 'a', i, pad: 'p'.repeat(50) });
    await first.close();
    const current = first.stats().segment;
    // What a crash right after a rotation leaves: an empty current segment.
    fs.writeFileSync(path.join(dir, segmentName(current)), '');
    const lastKept = readSet(dir).lines.at(-1)!.index;
    expect(lastKept).toBeLessThan(199);
    const again = JsonlEventSink.open(base, { mode: 'append' });
    expect(again.eventCount()).toBe(lastKept + 1);
    again.handleEvent({ type: 'b' });
    await again.close();
    expect(indexes(readSet(dir).lines)).toEqual(range(0, lastKept + 2));
  });

  it('a newest segment present only compressed: writing goes on in the next one', async () => {
    const dir = dirs.make('append-gz-newest');
    const base = path.join(dir, BASE_NAME);
    const first = JsonlEventSink.open(base, { rotateBytes: 4096 });
    for (let i = 0; i < 100; i++) first.handleEvent({ type: 'a', i, pad: 'p'.repeat(50) });
    await first.close();
    const newest = first.stats().segment;
    const p = path.join(dir, segmentName(newest));
    fs.writeFileSync(p + '.gz', gzipSync(fs.readFileSync(p)));
    fs.rmSync(p);
    const again = JsonlEventSink.open(base, { mode: 'append', compress: 'gzip' });
    expect(again.eventCount()).toBe(100);
    again.handleEvent({ type: 'b' });
    await again.close();
    expect(again.stats().segment).toBe(newest + 1);
    expect(indexes(readSet(dir).lines)).toEqual(range(0, 101));
  });

  it('compresses segments an earlier run left plain, recompresses one left in both forms, removes stale .gz.tmp, applies maxFiles', async () => {
    const dir = dirs.make('append-tidy');
    const base = path.join(dir, BASE_NAME);
    const first = JsonlEventSink.open(base, { rotateBytes: 4096 });
    for (let i = 0; i < 300; i++) first.handleEvent({ type: 'a', i, pad: 'p'.repeat(50) });
    await first.close();
    const current = first.stats().segment;
    expect(current).toBeGreaterThan(8);
    // Segment 5 as a crash between rename and unlink leaves it (the .gz deliberately holds only
    // part of it: the plain copy is the one to trust), segment 6 mid-compression.
    const p5 = path.join(dir, segmentName(5));
    fs.writeFileSync(p5 + '.gz', gzipSync(fs.readFileSync(p5).subarray(0, 100)));
    const p6 = path.join(dir, segmentName(6));
    fs.writeFileSync(p6 + '.gz.tmp', 'half a gzip stream');
    // Read as a reader would (plain preferred), the set is whole.
    expect(indexes(readSet(dir).lines)).toEqual(range(0, 300));
    expect((await readerIndexes(dir)).indexes).toEqual(range(0, 300));
    const errors: SinkError[] = [];
    const again = JsonlEventSink.open(base, { mode: 'append', compress: 'gzip', maxFiles: current - 1, onError: (e) => errors.push(e) });
    await again.close();
    expect(errors).toEqual([]);
    const files = setFiles(dir);
    expect(files.map((f) => f.name)).toEqual([...range(2, current).map((n) => `${segmentName(n)}.gz`), segmentName(current)]);
    const set = readSet(dir);
    expect(indexes(set.lines)).toEqual(range(set.lines[0]!.index, 300));
    expect(again.stats().segmentsRemoved).toBe(2);
  });
});

describe('truncate mode', () => {
  it("removes an earlier session's compressed segments and temporary files, the base file's included", async () => {
    const dir = dirs.make('truncate-gz');
    const base = path.join(dir, BASE_NAME);
    const first = JsonlEventSink.open(base, { rotateBytes: 4096, compress: 'gzip' });
    for (let i = 0; i < 200; i++) first.handleEvent({ type: 'a', i, pad: 'p'.repeat(50) });
    await first.close();
    fs.writeFileSync(path.join(dir, `${segmentName(3)}.gz.tmp`), 'x');
    expect(setFiles(dir).some((f) => f.name === `${BASE_NAME}.gz`)).toBe(true);
    const second = JsonlEventSink.open(base);
    second.handleEvent({ type: 'fresh' });
    await second.close();
    expect(setFiles(dir).map((f) => f.name)).toEqual([BASE_NAME]);
    expect(readSet(dir).lines.map((l) => [l.index, l.type])).toEqual([[0, 'fresh']]);
  });
});

describe('compression failure', () => {
  it('reaches onError as ERR_RINGLOG_COMPRESS, leaves the segment uncompressed and writing unaffected', async () => {
    const dir = dirs.make('gzip-fail');
    const errors: SinkError[] = [];
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 4096, compress: 'gzip', onError: (e) => errors.push(e) });
    // A directory where segment 1's temporary file must go: its creation fails (EISDIR), for root too.
    fs.mkdirSync(path.join(dir, `${segmentName(1)}.gz.tmp`));
    for (let i = 0; i < 300; i++) sink.handleEvent({ type: 'a', i, pad: 'p'.repeat(50) });
    await sink.flush();
    await sink.close();
    const st = sink.stats();
    expect(st.segment).toBeGreaterThan(3);
    expect(st.dropped).toBe(0);
    expect(st.faults).toBe(0);
    expect(errors).toHaveLength(1);
    const err = errors[0]!;
    expect(err).toBeInstanceOf(SinkError);
    expect(err.code).toBe('ERR_RINGLOG_COMPRESS');
    expect(err.droppedEvents).toBe(0);
    expect((err.cause as { code: string }).code).toBe('EISDIR');
    expect(err.message).toContain('segment 1');
    const files = setFiles(dir);
    expect(files.filter((f) => f.form === 'plain').map((f) => f.n)).toEqual([1, st.segment]);
    expect(files.filter((f) => f.form === 'gz').map((f) => f.n)).toEqual(range(0, st.segment).filter((n) => n !== 1));
    expect(indexes(readSet(dir).lines)).toEqual(range(0, 300));
    expect(await readerIndexes(dir)).toEqual({ indexes: range(0, 300), issues: [] });
  });
});

describe('option validation', () => {
  const open = (options: Record<string, unknown>): unknown => {
    const dir = dirs.make('opts');
    try {
      const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), options as never);
      void sink.close();
      return undefined;
    } catch (err) {
      return err;
    }
  };
  it.each([
    [{ maxFiles: 0 }, RangeError, /"maxFiles" must be an integer from 1/],
    [{ maxFiles: 2.5 }, RangeError, /"maxFiles"/],
    [{ maxFiles: Infinity }, RangeError, /"maxFiles"/],
    [{ maxFiles: '3' }, TypeError, /"maxFiles" must be a number, got string/],
    [{ compress: true }, TypeError, /"compress" must be false or 'gzip', got boolean/],
    [{ compress: 'zstd' }, RangeError, /"compress" must be one of 'gzip', got 'zstd'/],
    [{ compress: null }, TypeError, /"compress" must be false or 'gzip', got null/],
    [{ compress: 'gzip', compressLevel: 0 }, RangeError, /"compressLevel" must be an integer from 1 to 9, got 0/],
    [{ compress: 'gzip', compressLevel: 10 }, RangeError, /"compressLevel"/],
    [{ compress: 'gzip', compressLevel: '6' }, TypeError, /"compressLevel" must be a number/],
    [{ compressLevel: 6 }, TypeError, /"compressLevel" needs compress: 'gzip'/],
  ])('%j is refused', (options, type, message) => {
    const err = open(options);
    expect(err).toBeInstanceOf(type);
    expect((err as Error).message).toMatch(message);
  });
  it('accepts the valid forms', () => {
    expect(open({ maxFiles: 1 })).toBeUndefined();
    expect(open({ compress: false })).toBeUndefined();
    expect(open({ compress: 'gzip', compressLevel: 9, maxFiles: 3 })).toBeUndefined();
  });
});

// Retention and compression racing the end of the process: whatever moment the process ends at,
// the set left on disk is the newest segments as one contiguous run, which the reader and
// `ringlog verify` accept and an append-mode open continues.

const CLI = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));

/** `ringlog verify <base>` in a child: its exit code and output. */
async function verifyCli(base: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const { result } = spawnNode([CLI, 'verify', base], { env: process.env, cwd: path.dirname(base), timeoutMs: 60_000 });
  return result;
}

/** Reads the set through readEvents (which throws on any issue): every index once, in order. */
async function readRun(base: string): Promise<{ first: number; last: number; count: number }> {
  let first = -1;
  let prev = -1;
  let count = 0;
  for await (const ev of readEvents(base)) {
    if (first < 0) first = ev.index;
    else if (ev.index !== prev + 1) throw new Error(`index ${ev.index} after ${prev}`);
    prev = ev.index;
    count++;
  }
  return { first, last: prev, count };
}

/** Segment numbers present in some readable form (plain or .gz), ascending, each once. */
function segmentNumbers(dir: string): number[] {
  return [...new Set(setFiles(dir).filter((f) => f.form !== 'tmp').map((f) => f.n))].sort((a, b) => a - b);
}

function expectContiguous(numbers: readonly number[]): void {
  expect(numbers.length).toBeGreaterThan(0);
  expect(numbers).toEqual(range(numbers[0]!, numbers.at(-1)! + 1));
}

/**
 * Logs `count` events to a sink with maxFiles 3, gzip and small segments, yielding to the loop
 * now and then (so rotations reach the janitor and removals and compressions are in flight), then
 * ends with process.exit() or close() as argv says. Prints the index it started at.
 */
const END_CHILD = `
import { JsonlEventSink } from '%RINGLOG%';
const [base, mode, count, end] = process.argv.slice(2);
const sink = JsonlEventSink.open(base, { mode, rotateBytes: 8 * 1024, maxFiles: 3, compress: 'gzip' });
console.log(JSON.stringify({ start: sink.eventCount() }));
const n = Number(count);
for (let i = 0; i < n; i++) {
  sink.handleEvent({ type: 'tick', i, pad: 'x'.repeat(100) });
  if (i % 40 === 39) await new Promise((r) => setImmediate(r));
}
if (end === 'close') await sink.close();
process.exit(0);
`;

describe('retention never leaves a hole', () => {
  it('process.exit() mid-stream, round after round in append mode: a contiguous run of the newest segments that reads whole', async () => {
    const dir = dirs.make('exit-holes');
    const base = path.join(dir, BASE_NAME);
    let next = 0;
    const counts = [1500, 2600, 700, 3100, 1900, 1200];
    for (let round = 0; round < counts.length; round++) {
      const count = counts[round]!;
      const r = await runChild(END_CHILD, [base, round === 0 ? 'truncate' : 'append', String(count), 'exit']);
      expect(r.code, r.stderr).toBe(0);
      expect(lastJson<{ start: number }>(r).start).toBe(next);
      next += count;
      expectContiguous(segmentNumbers(dir));
      const run = await readRun(base);
      // Exit writes every accepted event: the run ends at the last one logged.
      expect(run.last).toBe(next - 1);
      expect(run.first).toBeGreaterThan(0);
      const v = await verifyCli(base);
      expect(v.code, v.stdout + v.stderr).toBe(0);
      expect(v.stdout).toMatch(/OK — /);
    }
  });

  it('close() leaves exactly maxFiles segments, the newest, and the set reads whole', async () => {
    const dir = dirs.make('close-holes');
    const base = path.join(dir, BASE_NAME);
    const r = await runChild(END_CHILD, [base, 'truncate', '4000', 'close']);
    expect(r.code, r.stderr).toBe(0);
    const numbers = segmentNumbers(dir);
    expect(numbers).toHaveLength(3);
    expectContiguous(numbers);
    expect(setFiles(dir).filter((f) => f.form === 'tmp')).toEqual([]);
    expect((await readRun(base)).last).toBe(3999);
    expect((await verifyCli(base)).code).toBe(0);
  });

  it('SIGKILL at random moments, 20 rounds on one set: every round leaves a gap-free run that verify accepts and append mode continues', async () => {
    const dir = dirs.make('kill-holes');
    const base = path.join(dir, BASE_NAME);
    // Logs until killed; every 200 events it flushes and prints how many are in the file.
    const KILL_CHILD = `
import { JsonlEventSink } from '%RINGLOG%';
const [base, mode] = process.argv.slice(2);
const sink = JsonlEventSink.open(base, { mode, rotateBytes: 8 * 1024, maxFiles: 3, compress: 'gzip' });
console.log(JSON.stringify({ start: sink.eventCount() }));
for (let i = 0; ; i++) {
  sink.handleEvent({ type: 'tick', i, pad: 'x'.repeat(100) });
  if (i % 200 === 199) {
    await sink.flush();
    console.log(JSON.stringify({ written: sink.eventCount() }));
  } else if (i % 40 === 39) await new Promise((r) => setImmediate(r));
}
`;
    let next = 0;
    for (let round = 0; round < 20; round++) {
      let out = '';
      let started!: () => void;
      const ready = new Promise<void>((resolve) => (started = resolve));
      const { child, result } = spawnScript(KILL_CHILD, [base, round === 0 ? 'truncate' : 'append'], {
        onStdout: (chunk) => {
          out += chunk;
          if (out.includes('"start"')) started();
        },
      });
      await Promise.race([ready, result]);
      await new Promise((r) => setTimeout(r, 20 + Math.floor(Math.random() * 400)));
      child.kill('SIGKILL');
      const r = await result;
      expect(r.signal, r.stderr).toBe('SIGKILL');
      const reports = r.stdout
        .split('\n')
        .filter((l) => l.startsWith('{') && l.endsWith('}'))
        .map((l) => JSON.parse(l) as { start?: number; written?: number });
      // Append mode picks up right after the last whole line the previous round left.
      expect(reports[0]!.start, `round ${round}`).toBe(next);
      const flushed = Math.max(next, ...reports.map((x) => x.written ?? 0));
      expectContiguous(segmentNumbers(dir));
      const run = await readRun(base);
      // Everything flushed is there; a SIGKILL may leave more, never less.
      expect(run.last + 1).toBeGreaterThanOrEqual(flushed);
      const v = await verifyCli(base);
      expect(v.code, `round ${round}: ${v.stdout}${v.stderr}`).toBe(0);
      next = run.last + 1;
    }
    // A last append-mode open keeps going and, closed, leaves maxFiles segments.
    const sink = JsonlEventSink.open(base, { mode: 'append', rotateBytes: 8 * 1024, maxFiles: 3, compress: 'gzip' });
    expect(sink.eventCount()).toBe(next);
    for (let i = 0; i < 500; i++) sink.handleEvent({ type: 'after', i });
    await sink.close();
    expect(segmentNumbers(dir)).toHaveLength(3);
    expect((await readRun(base)).last).toBe(next + 499);
  });

  it("mode 'truncate' removes an earlier session newest first: stopped part way, what is left has no hole", async () => {
    const dir = dirs.make('truncate-order');
    const base = path.join(dir, BASE_NAME);
    const first = JsonlEventSink.open(base, { rotateBytes: 4096 });
    for (let i = 0; i < 300; i++) first.handleEvent({ type: 'a', i, pad: 'p'.repeat(50) });
    await first.close();
    const last = first.stats().segment;
    expect(last).toBeGreaterThan(6);
    // A non-empty directory where segment 4's temporary file would be: removing it fails, which
    // stops the open part way, as a kill would.
    fs.mkdirSync(path.join(dir, `${segmentName(4)}.gz.tmp`, 'x'), { recursive: true });
    expect(() => JsonlEventSink.open(base)).toThrow(/cannot empty the previous session/);
    const left = segmentNumbers(dir);
    expect(left[0]).toBe(0);
    expectContiguous(left);
    expect(left.at(-1)!).toBeLessThan(last);
    const run = await readRun(base);
    expect(run.first).toBe(0);
  });
});

describe('the reader and retained sets', () => {
  it('a set starting in a later segment reads from there; a base file not starting at 0, or a missing middle segment, is a gap', async () => {
    const dir = dirs.make('retained-rule');
    const base = path.join(dir, BASE_NAME);
    const sink = JsonlEventSink.open(base, { rotateBytes: 4096, maxFiles: 3, compress: 'gzip' });
    for (let i = 0; i < 400; i++) sink.handleEvent({ type: 'a', i, pad: 'p'.repeat(50) });
    await sink.close();
    const numbers = segmentNumbers(dir);
    expect(numbers[0]).toBeGreaterThan(0);
    const run = await readRun(base);
    expect(run.first).toBeGreaterThan(0);
    expect(run.last).toBe(399);
    // An empty base file is a base file retention would have removed: still a retained set.
    fs.writeFileSync(base, '');
    expect(await readRun(base)).toEqual(run);
    // A base file holding lines must start at 0: here it starts where the set's first kept line is.
    const firstLines = readSet(dir).raw.slice(0, 2);
    fs.writeFileSync(base, firstLines.map((l) => l + '\n').join(''));
    const issues: string[] = [];
    for await (const _ of readEvents(base, { issues: 'warn', onIssue: (i) => issues.push(i.code + ' ' + i.message) }));
    expect(issues[0]).toMatch(new RegExp(`^ERR_RINGLOG_READ_GAP .*event_log\\.jsonl:1: index ${run.first} where 0 was expected`));
    fs.rmSync(base);
    // The middle of the run missing: a gap, reported in the segment after it.
    const middle = setFiles(dir).filter((f) => f.n === numbers[1]!);
    for (const f of middle) fs.rmSync(path.join(dir, f.name));
    const err = await readRun(base).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_RINGLOG_READ_GAP');
  });
});
