// Which encoder should handleEvent use to snapshot an event into the SharedArrayBuffer ring?
// Every contender here runs on the caller's thread, one event per call, and leaves behind a copy
// the caller can no longer change; the figures are the caller-side price of that snapshot. A
// second group measures the other end: turning what was stored back into a JSON line.
//
//   npx tsc -p tsconfig.json && node dist/bench/encoding.js [--time MS] [--quick]
//
// Method, and why:
// - tinybench times every call on its own, so mean and percentiles are per event. Its calibrated
//   timer overhead is subtracted: at ~100 ns per event the two clock reads would otherwise be a
//   large share of the fastest tasks and shrink every ratio towards 1.
// - runSync(), not run(): run() awaits every iteration, and the promises it makes are garbage that
//   lands in whichever task is timed when the collector runs. Non-allocating tasks (the copy floor,
//   ringlog's encoder) would then carry the harness's GC pauses in their tails.
// - The whole Bench runs REPS times, interleaved with the other corpus and group, and the task order
//   rotates each repetition, so drift on a shared 2-core machine spreads over all tasks alike.
//   Each figure is reported as the median of the repetitions with their min-max; ratios are taken
//   within a repetition (task vs baseline measured minutes apart would mix in the drift).
// - Events come from a 10,000-event pool, made flat by a JSON round trip (see harness.ts makePool:
//   the corpus builds rope strings, which cost ~4x to serialise the first time).

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as v8 from 'node:v8';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import {
  isNativeAccelerationEnabled,
  pack,
  Packr,
  RESET_BUFFER_MODE,
  REUSE_BUFFER_MODE,
  unpack,
  Unpackr,
  type Options as MsgpackrOptions,
} from 'msgpackr';
import { Bench, type FnOptions, type Task } from 'tinybench';
import { EventEncoder, Scratch } from '../src/caller/encoder.js';
import { KeyTable } from '../src/ring/keys.js';
import { createRing, type RingViews } from '../src/ring/memory.js';
import { LineBuilder, type Source } from '../src/writer/line-builder.js';
import { fast } from '../src/node-buffer.js';
import { DEFAULT_MAX_DEPTH } from '../src/caller/options.js';
import { OutBuffer } from '../src/writer/out-buffer.js';
import { makeCorpus, type AgentEventLike } from '../demo/corpus.js';
import { markdownTable, median, parsePositiveInt } from './lib.js';
import { encodeRecords } from './records.js';

// ---------------------------------------------------------------------------------------------
// Parameters (each one's reason is next to it)

/** The brief's pool, and the one every contender script uses (harness.ts): per-event figures
 *  average over the corpus's real mix of kinds and sizes. */
const POOL_SIZE = 10_000;
/** makeCorpus's default seed, so these are the events the other benches and the tests use. */
const CORPUS_SEED = 42;
/** The brief's ring: at ~1.3 KB per large-corpus event it wraps about every 50,000 events, so
 *  the wrap's branch is almost never taken and writes stream through memory as a long ring's do. */
const RING_BYTES = 64 * 1024 * 1024;
/**
 * Every ring writer wraps to offset 0 once fewer than this many bytes remain, so a write that
 * starts below the margin always fits. The largest large-corpus event is ~25 KB in any encoding
 * (8,192 characters of text at up to 3 UTF-8 bytes each); checkCorpus fails loudly if three times
 * an event's encoded size ever exceeds half of this.
 */
const WRAP_MARGIN = 1024 * 1024;
/**
 * The private buffer the "prealloc" msgpackr variants pack into. msgpackr will not start a value
 * within 0x800 bytes of its buffer's end and swaps in a new buffer if a value runs past it
 * (pack.js:79-84, makeRoom); at the wrap margin's size neither happens (checkCorpus bounds the
 * largest event, and the task's afterAll confirms the buffer is still in use).
 */
const PREALLOC_BYTES = WRAP_MARGIN;
/** ringlog's records start on 8-byte boundaries (format.ts RECORD_ALIGN); every ring writer here
 *  aligns the same way so no task gets cheaper unaligned copies than the candidate. */
const RECORD_ALIGN = 8;
/** Three is the smallest count whose median ignores one disturbed run (the brief's count). */
const REPS = 3;
/** tinybench's own defaults: 1 s of samples per task is 10^5..10^7 calls here, enough for a p999,
 *  and 250 ms of warm-up is far past the few thousand calls V8 needs to optimise a hot loop. */
const DEFAULT_TIME_MS = 1000;
const DEFAULT_WARMUP_MS = 250;
/** --quick: a smoke test of every path (~30 s in all), not figures to quote. */
const QUICK_TIME_MS = 150;
const QUICK_WARMUP_MS = 50;
/** The line builder's output buffer: larger than any line, so it never grows in the timed loop. */
const OUT_BYTES = WRAP_MARGIN;
/** A fixed emitted_at_ms for pre-encoded data (records, pre-encoded JSON): any plausible epoch-ms
 *  value has the same 13 digits as Date.now() today, so it costs the same to write. */
const FIXED_TS = 1_764_000_000_000;

const NS_PER_MS = 1e6;
const NS_PER_S = 1e9;

const RESULTS_FILE = fileURLToPath(new URL('../../bench/results/encoding.json', import.meta.url));

type CorpusName = 'large' | 'small';
const CORPORA: readonly CorpusName[] = ['large', 'small'];
type GroupName = 'encode' | 'decode';

// msgpackr configurations. The standalone pack() is `new Packr({ useRecords: false })`
// (pack.js:1392), so "default" and "no records" are one encoder reached two ways: measuring both
// shows how far two identical tasks drift apart, a floor under any difference worth believing.
const SEQ_RECORDS: MsgpackrOptions = { useRecords: true, sequential: true };
const NO_RECORDS: MsgpackrOptions = { useRecords: false };

/** In REUSE_BUFFER_MODE pack() returns its whole buffer and marks the value's bytes (pack.js:169). */
type ReusedBuffer = Buffer & { start: number; end: number };

// ---------------------------------------------------------------------------------------------
// Workload

/** Everything a corpus's tasks read, built once per corpus, outside any timing. */
interface Corpus {
  name: CorpusName;
  pool: AgentEventLike[];
  /** Each event's envelope line as UTF-8, encoded once: the copy floor's input. */
  jsonBytes: Uint8Array[];
  /** Default msgpackr encoding of each event, as views into one plain Buffer and one over a SAB. */
  mpPlain: Buffer[];
  mpShared: Buffer[];
  /** Sequential-records encoding of the pool in order (later events reference earlier structures). */
  seqPlain: Buffer[];
  seqShared: Buffer[];
  /** ringlog records of the pool, in a private buffer and in a SAB ring, at the same offsets. */
  recPlain: Source;
  recShared: Source;
  recOffsets: number[];
  /** Mean bytes one event takes in each encoding, shown next to the timings. */
  bytesPerEvent: Record<string, number>;
}

function envelope(index: number, ts: number, ev: AgentEventLike): string {
  return JSON.stringify({ index, emitted_at_ms: ts, frame_depth: null, ...ev });
}

function alignUp(n: number): number {
  return (n + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}

function mean(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Copies `parts` into one buffer (plain or shared) and returns a view per part. */
function packTogether(parts: readonly Uint8Array[], shared: boolean): Buffer[] {
  let total = 0;
  for (const p of parts) total += alignUp(p.length);
  const whole = shared ? Buffer.from(new SharedArrayBuffer(total)) : Buffer.alloc(total);
  const views: Buffer[] = [];
  let off = 0;
  for (const p of parts) {
    whole.set(p, off);
    views.push(whole.subarray(off, off + p.length));
    off += alignUp(p.length);
  }
  return views;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function buildCorpus(name: CorpusName): Corpus {
  const pool = makeCorpus(POOL_SIZE, CORPUS_SEED, name === 'small').map(
    (ev) => JSON.parse(JSON.stringify(ev)) as AgentEventLike,
  );
  const lines = pool.map((ev, i) => envelope(i, FIXED_TS + i, ev));
  const jsonBytes = lines.map((l) => new Uint8Array(Buffer.from(l)));

  const mp = pool.map((ev) => Buffer.from(pack(ev)));
  const seqPackr = new Packr({ ...SEQ_RECORDS });
  const seq = pool.map((ev) => Buffer.from(seqPackr.pack(ev)));

  const { target: scratch, offsets, used } = encodeRecords(pool, (i) => FIXED_TS + i);
  let ringSize = 1;
  while (ringSize < used) ringSize *= 2; // createRing's data region is a power of two (layout.ts)
  const ring = createRing(ringSize);
  ring.u8.set(scratch.u8.subarray(0, used), 0);

  const recordBytes = offsets.map((off, i) => (offsets[i + 1] ?? used) - off);
  const corpus: Corpus = {
    name,
    pool,
    jsonBytes,
    mpPlain: packTogether(mp, false),
    mpShared: packTogether(mp, true),
    seqPlain: packTogether(seq, false),
    seqShared: packTogether(seq, true),
    recPlain: scratch,
    recShared: ring,
    recOffsets: offsets,
    bytesPerEvent: {
      json: mean(jsonBytes.map((b) => b.length)),
      msgpack: mean(mp.map((b) => b.length)),
      msgpackSeq: mean(seq.map((b) => b.length)),
      // The format postMessage and structuredClone serialise to (V8's ValueSerializer).
      v8: mean(pool.map((ev) => v8.serialize(ev).length)),
      record: mean(recordBytes),
    },
  };
  checkCorpus(corpus, lines, Math.max(...recordBytes));
  return corpus;
}

/**
 * Fails before any timing if a decode task would measure the wrong work (a decoder that does not
 * give back the event, a line builder whose line differs from JSON.stringify's), or if an event is
 * large enough to break the fixed-size buffers' assumptions.
 */
function checkCorpus(c: Corpus, lines: readonly string[], largestRecord: number): void {
  const seqPlain = new Unpackr({ ...SEQ_RECORDS });
  const seqShared = new Unpackr({ ...SEQ_RECORDS });
  const plainBuilder = new LineBuilder(new KeyTable());
  const sharedBuilder = new LineBuilder(new KeyTable());
  const out = new OutBuffer(OUT_BYTES);
  let largest = largestRecord;
  for (let i = 0; i < c.pool.length; i++) {
    const ev = c.pool[i]!;
    const fail = (what: string) => {
      throw new Error(`encoding bench self-check (${c.name} corpus, event ${i}): ${what}`);
    };
    if (!sameJson(unpack(c.mpPlain[i]!), ev)) fail('unpack from a plain Buffer differs');
    if (!sameJson(unpack(c.mpShared[i]!), ev)) fail('unpack from a SAB view differs');
    if (!sameJson(seqPlain.unpack(c.seqPlain[i]!), ev)) fail('sequential unpack from a plain Buffer differs');
    if (!sameJson(seqShared.unpack(c.seqShared[i]!), ev)) fail('sequential unpack from a SAB view differs');
    for (const [src, builder] of [[c.recPlain, plainBuilder], [c.recShared, sharedBuilder]] as const) {
      out.len = 0;
      builder.build(src, c.recOffsets[i]!, out);
      if (out.buf.utf8Slice(0, out.len) !== lines[i]) fail('LineBuilder line differs from JSON.stringify');
    }
    largest = Math.max(largest, c.jsonBytes[i]!.length, c.mpPlain[i]!.length, c.seqPlain[i]!.length);
  }
  // 3x: a UTF-8 size bound from a UTF-16 length; half the margin leaves room for msgpackr's
  // 0x800-byte end reserve and any growth of the corpus.
  if (largest * 3 > WRAP_MARGIN / 2) throw new Error(`an event of ${largest} bytes is too close to WRAP_MARGIN`);
}

// ---------------------------------------------------------------------------------------------
// Tasks. Each factory returns a fresh closure with its own cursor, so a repetition starts clean.

type TaskFn = () => void;
interface TaskSpec {
  name: string;
  /** Which mean-bytes entry describes what this task produces, if any. */
  bytes?: string;
  /** Counts toward "best msgpackr" and, with ring, "best msgpackr that ends in the ring". */
  msgpackr?: boolean;
  ring?: boolean;
  fn: TaskFn;
  /** Untimed, before and after each phase (warm-up, run) of the task. */
  beforeAll?: () => void;
  afterAll?: () => void;
  /** Untimed work after every call (draining a MessagePort). */
  afterEach?: () => void;
  /** Untimed clean-up after the Bench ran. */
  dispose?: () => void;
}

const BASELINE = 'JSON.stringify(envelope)';
const CANDIDATE = 'ringlog EventEncoder → SAB';

/** Anything the tasks compute goes here, so no result is dead code the JIT could drop. */
let sink = 0;

/** Where the next ring write starts: wraps to 0 near the end, advances by aligned lengths. */
class Cursor {
  off = 0;
  constructor(private readonly size: number) {}
  at(): number {
    if (this.off > this.size - WRAP_MARGIN) this.off = 0;
    return this.off;
  }
  advance(bytes: number): void {
    this.off += alignUp(bytes);
  }
}

/** What msgpackr allocates for its first pack() in a fresh process (pack.js:74). */
const MSGPACKR_FIRST_BUFFER = 8192;
const bufferSetter = new Packr();

/** Puts msgpackr back in a fresh process's state: a new private buffer of its usual first size. */
function freshMsgpackrTarget(): void {
  bufferSetter.useBuffer(Buffer.allocUnsafeSlow(MSGPACKR_FIRST_BUFFER));
}

/** Yields the pool's events in order, forever. */
function cycler<T>(items: readonly T[]): () => number {
  let i = -1;
  const n = items.length;
  return () => (i = i + 1 === n ? 0 : i + 1);
}

function encodeTasks(c: Corpus, ring: RingViews): TaskSpec[] {
  const { pool } = c;
  const tasks: TaskSpec[] = [];

  {
    const next = cycler(pool);
    let index = 0;
    tasks.push({
      name: BASELINE,
      bytes: 'json',
      fn: () => {
        sink += envelope(index++, Date.now(), pool[next()]!).length;
      },
    });
  }
  {
    const next = cycler(pool);
    const cur = new Cursor(ring.size);
    let index = 0;
    tasks.push({
      name: 'JSON.stringify + utf8Write → SAB',
      bytes: 'json',
      ring: true,
      fn: () => {
        const s = envelope(index++, Date.now(), pool[next()]!);
        const off = cur.at();
        cur.advance(ring.buf.utf8Write(s, off, ring.size - off));
      },
    });
  }
  // msgpackr keeps its output buffer and write position in module state that every Packr shares
  // (pack.js:12-14; useBuffer() sets it for all of them), so each msgpackr task claims that state
  // in beforeAll, untimed, instead of inheriting whatever buffer the previous task left behind.
  {
    const next = cycler(pool);
    tasks.push({
      name: 'msgpackr pack() (defaults)',
      bytes: 'msgpack',
      msgpackr: true,
      beforeAll: freshMsgpackrTarget,
      fn: () => {
        sink += pack(pool[next()]!).length;
      },
    });
  }
  for (const [label, opts, bytes] of [
    ['seq records', SEQ_RECORDS, 'msgpackSeq'],
    ['useRecords:false', NO_RECORDS, 'msgpack'],
  ] as const) {
    {
      const next = cycler(pool);
      const packr = new Packr({ ...opts });
      tasks.push({
        name: `msgpackr Packr ${label}`,
        bytes,
        msgpackr: true,
        beforeAll: freshMsgpackrTarget,
        fn: () => {
          sink += packr.pack(pool[next()]!).length;
        },
      });
    }
    {
      // Packs into one private buffer reused for every event, then copies the bytes into the ring:
      // what a msgpackr-based handleEvent that keeps msgpackr away from the ring would pay.
      const next = cycler(pool);
      const packr = new Packr({ ...opts });
      const pre = Buffer.allocUnsafe(PREALLOC_BYTES);
      const cur = new Cursor(ring.size);
      tasks.push({
        name: `msgpackr Packr ${label} → prealloc + copy → SAB`,
        bytes,
        msgpackr: true,
        ring: true,
        beforeAll: () => packr.useBuffer(pre),
        afterAll: () => {
          if (packr.pack(pool[0]!, REUSE_BUFFER_MODE | RESET_BUFFER_MODE) !== pre) {
            throw new Error(`msgpackr left the preallocated buffer (${c.name} corpus, ${label})`);
          }
        },
        fn: () => {
          const out = packr.pack(pool[next()]!, REUSE_BUFFER_MODE | RESET_BUFFER_MODE) as ReusedBuffer;
          const off = cur.at();
          cur.advance(out.copy(ring.buf, off, out.start, out.end));
        },
      });
    }
    {
      // Not in the brief's list: msgpackr writing straight into the ring (useBuffer on a view of
      // the SAB), the cheapest way msgpackr could fill it. Its own Buffer view, because msgpackr
      // caches a DataView on the buffer object and the shared ring.buf should keep one shape.
      const next = cycler(pool);
      const packr = new Packr({ ...opts });
      const view = Buffer.from(ring.sab, ring.u8.byteOffset, ring.size);
      tasks.push({
        name: `msgpackr Packr ${label} → in place in SAB`,
        bytes,
        msgpackr: true,
        ring: true,
        beforeAll: () => packr.useBuffer(view),
        // The margin check before every pack keeps msgpackr from ever needing a new buffer; this
        // confirms it, since a buffer msgpackr swaps in stays until the next useBuffer().
        afterAll: () => {
          if ((packr.pack(pool[0]!, REUSE_BUFFER_MODE) as ReusedBuffer).buffer !== ring.sab) {
            throw new Error(`msgpackr left the ring (${c.name} corpus, ${label})`);
          }
        },
        fn: () => {
          if (packr.position > ring.size - WRAP_MARGIN) packr.useBuffer(view);
          packr.pack(pool[next()]!, REUSE_BUFFER_MODE);
        },
      });
    }
  }
  {
    const next = cycler(pool);
    tasks.push({
      name: 'structuredClone(event)',
      bytes: 'v8',
      fn: () => {
        sink += structuredClone(pool[next()]!).type.length;
      },
    });
  }
  {
    const next = cycler(pool);
    const { port1, port2 } = new MessageChannel();
    tasks.push({
      name: 'MessageChannel port1.postMessage(event)',
      bytes: 'v8',
      fn: () => {
        port1.postMessage(pool[next()]!);
      },
      // Nobody listens during a synchronous run, so without this every message would queue in
      // memory (gigabytes over a run); receiving is the other thread's cost, so it is untimed.
      afterEach: () => {
        receiveMessageOnPort(port2);
      },
      dispose: () => {
        port1.close();
        port2.close();
      },
    });
  }
  {
    const next = cycler(pool);
    const cur = new Cursor(ring.size);
    const bytes = c.jsonBytes;
    tasks.push({
      name: 'copy pre-encoded JSON → SAB (u8.set)',
      bytes: 'json',
      ring: true,
      fn: () => {
        const b = bytes[next()]!;
        const off = cur.at();
        ring.u8.set(b, off);
        cur.advance(b.length);
      },
    });
  }
  {
    const next = cycler(pool);
    const enc = new EventEncoder(DEFAULT_MAX_DEPTH, new Scratch(64 * 1024));
    const cur = new Cursor(ring.size);
    let index = 0;
    tasks.push({
      name: CANDIDATE,
      bytes: 'record',
      ring: true,
      fn: () => {
        const off = cur.at();
        enc.begin(ring, off, ring.size);
        enc.event(index++, Date.now(), null, undefined, pool[next()]!);
        if (enc.spilled) throw new Error('an event outgrew WRAP_MARGIN: the timing would include a spill');
        cur.off = enc.pos; // finish() already aligned it
      },
    });
  }
  return tasks;
}

function decodeTasks(c: Corpus): TaskSpec[] {
  const { pool } = c;
  const tasks: TaskSpec[] = [];
  {
    const next = cycler(pool);
    let index = 0;
    tasks.push({
      name: BASELINE,
      bytes: 'json',
      fn: () => {
        sink += envelope(index++, Date.now(), pool[next()]!).length;
      },
    });
  }
  {
    // What a stringify-based writer must do before write(): the line's bytes in a reused buffer.
    const next = cycler(pool);
    const out = fast(Buffer.allocUnsafe(OUT_BYTES));
    let index = 0;
    tasks.push({
      name: 'JSON.stringify + utf8Write → Buffer',
      bytes: 'json',
      fn: () => {
        sink += out.utf8Write(envelope(index++, Date.now(), pool[next()]!), 0, OUT_BYTES);
      },
    });
  }
  // From a SAB, msgpackr's native string extractor (msgpackr-extract) refuses the source ("source
  // must be an ArrayBuffer"); msgpackr catches that and decodes in JS, once per unpack() call.
  for (const [from, views] of [
    ['Buffer', c.mpPlain],
    ['SAB', c.mpShared],
  ] as const) {
    const next = cycler(views);
    tasks.push({
      name: `msgpackr unpack() ← ${from}`,
      bytes: 'msgpack',
      msgpackr: true,
      fn: () => {
        sink += (unpack(views[next()]!) as AgentEventLike).type.length;
      },
    });
  }
  for (const [from, views] of [
    ['Buffer', c.seqPlain],
    ['SAB', c.seqShared],
  ] as const) {
    // In order from event 0, so every structure reference follows its definition.
    const next = cycler(views);
    const unpackr = new Unpackr({ ...SEQ_RECORDS });
    tasks.push({
      name: `msgpackr seq records unpack ← ${from}`,
      bytes: 'msgpackSeq',
      msgpackr: true,
      fn: () => {
        sink += (unpackr.unpack(views[next()]!) as AgentEventLike).type.length;
      },
    });
  }
  {
    // The whole writer-side path if the ring held msgpackr: decode, then write the line as JSON.
    const next = cycler(c.seqShared);
    const unpackr = new Unpackr({ ...SEQ_RECORDS });
    const out = fast(Buffer.allocUnsafe(OUT_BYTES));
    let index = 0;
    tasks.push({
      name: 'msgpackr seq unpack ← SAB + JSON.stringify + utf8Write',
      bytes: 'msgpackSeq',
      msgpackr: true,
      fn: () => {
        const ev = unpackr.unpack(c.seqShared[next()]!) as AgentEventLike;
        sink += out.utf8Write(envelope(index++, Date.now(), ev), 0, OUT_BYTES);
      },
    });
  }
  for (const [from, src] of [
    ['Buffer (Scratch)', c.recPlain],
    ['SAB', c.recShared],
  ] as const) {
    const next = cycler(c.recOffsets);
    // Key definitions were read by checkCorpus's pass; a fresh table learns them on the first lap.
    const builder = new LineBuilder(new KeyTable());
    const out = new OutBuffer(OUT_BYTES);
    tasks.push({
      name: `ringlog LineBuilder ← ${from}`,
      bytes: 'record',
      fn: () => {
        out.len = 0;
        builder.build(src, c.recOffsets[next()]!, out);
        sink += out.len;
      },
    });
  }
  return tasks;
}

// ---------------------------------------------------------------------------------------------
// Running and summarising

interface Sample {
  meanNs: number;
  p50Ns: number;
  p99Ns: number;
  p999Ns: number;
  opsPerSec: number;
  ratio: number;
  samples: number;
}
type Figure = Exclude<keyof Sample, 'samples'>;
const FIGURES: readonly Figure[] = ['meanNs', 'p50Ns', 'p99Ns', 'p999Ns', 'opsPerSec', 'ratio'];

interface Spread {
  median: number;
  min: number;
  max: number;
}

interface TaskRecord {
  bytes?: string;
  msgpackr?: boolean;
  ring?: boolean;
  runs: Sample[];
}

/** corpus → group → task name (in definition order) → what each repetition measured. */
type Store = Record<CorpusName, Record<GroupName, Map<string, TaskRecord>>>;

interface RunOptions {
  timeMs: number;
  warmupMs: number;
}

let timerOverheadMs: number | undefined;
const timerWarnings = new Set<string>();

function runGroup(specs: TaskSpec[], rep: number, opts: RunOptions, into: Map<string, TaskRecord>): void {
  const bench = new Bench({
    time: opts.timeMs,
    warmupTime: opts.warmupMs,
    subtractTimerOverhead: true,
    throws: true,
  });
  timerOverheadMs = bench.timerOverhead;
  // tinybench flags tasks whose samples sit at the clock's grain (~10 ns steps on this VM's clock);
  // kept in the results so a percentile that is mostly quantisation is not read as a measurement.
  bench.addEventListener('warning', (evt) => {
    const name = evt.task?.name ?? '?';
    const reason = evt.reason ?? 'unspecified';
    timerWarnings.add(`${name}: ${reason}`);
  });
  // Rotate by a third per repetition, so each task runs early, mid and late once.
  const shift = Math.floor((rep * specs.length) / REPS);
  const order = [...specs.slice(shift), ...specs.slice(0, shift)];
  for (const s of order) {
    const hooks: FnOptions = { async: false };
    if (s.beforeAll) hooks.beforeAll = s.beforeAll;
    if (s.afterAll) hooks.afterAll = s.afterAll;
    if (s.afterEach) hooks.afterEach = s.afterEach;
    bench.add(s.name, s.fn, hooks);
  }
  bench.runSync();
  for (const s of specs) s.dispose?.();

  const stats = (t: Task | undefined) => {
    const r = t?.result;
    if (r === undefined || r.state !== 'completed') {
      throw new Error(`task ${t?.name ?? '?'} did not complete: ${r?.state ?? 'missing'}`);
    }
    return r.latency;
  };
  const base = stats(bench.getTask(BASELINE));
  for (const s of specs) {
    const lat = stats(bench.getTask(s.name));
    const meanNs = lat.mean * NS_PER_MS;
    let rec = into.get(s.name);
    if (rec === undefined) {
      rec = { runs: [] };
      if (s.bytes !== undefined) rec.bytes = s.bytes;
      if (s.msgpackr) rec.msgpackr = true;
      if (s.ring) rec.ring = true;
      into.set(s.name, rec);
    }
    rec.runs.push({
      meanNs,
      p50Ns: lat.p50 * NS_PER_MS,
      p99Ns: lat.p99 * NS_PER_MS,
      p999Ns: lat.p999 * NS_PER_MS,
      // From the mean latency: the sustained rate. tinybench's own throughput is a mean of 1/sample,
      // which the near-zero samples of overhead-corrected fast tasks blow up.
      opsPerSec: NS_PER_S / meanNs,
      ratio: lat.mean / base.mean,
      samples: lat.samplesCount,
    });
  }
}

function spreadOf(xs: readonly number[]): Spread {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) };
}

function summarise(rec: TaskRecord): Record<Figure, Spread> & { samples: number[] } {
  const out = { samples: rec.runs.map((r) => r.samples) } as Record<Figure, Spread> & { samples: number[] };
  for (const f of FIGURES) out[f] = spreadOf(rec.runs.map((r) => r[f]));
  return out;
}

function fmtNum(x: number): string {
  if (x >= 1e6) return `${(x / 1e6).toFixed(2)}M`;
  if (x >= 1e4) return `${(x / 1e3).toFixed(0)}k`;
  if (x >= 100) return x.toFixed(0);
  return x.toFixed(1);
}

function cell(s: Spread, fmt: (x: number) => string = fmtNum): string {
  return `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})`;
}

const fmtRatio = (x: number) => x.toFixed(2);

function table(group: Map<string, TaskRecord>, bytes: Record<string, number>): string {
  const header = ['task', 'mean ns', 'p50 ns', 'p99 ns', 'p999 ns', 'ops/s', '× JSON.stringify', 'B/event'];
  const rows = [...group.entries()].map(([name, rec]) => {
    const s = summarise(rec);
    return [
      name,
      cell(s.meanNs),
      cell(s.p50Ns),
      cell(s.p99Ns),
      cell(s.p999Ns),
      cell(s.opsPerSec),
      cell(s.ratio, fmtRatio),
      rec.bytes !== undefined ? bytes[rec.bytes]!.toFixed(0) : '',
    ];
  });
  return markdownTable(header, rows, [false, true, true, true, true, true, true, true]);
}

interface Pick {
  task: string;
  ratio: Spread;
}

function best(group: Map<string, TaskRecord>, keep: (r: TaskRecord) => boolean): Pick | null {
  let found: Pick | null = null;
  for (const [task, rec] of group) {
    if (!keep(rec)) continue;
    const ratio = summarise(rec).ratio;
    if (found === null || ratio.median < found.ratio.median) found = { task, ratio };
  }
  return found;
}

/** a ÷ b within each repetition, then the spread over repetitions. */
function pairedRatio(group: Map<string, TaskRecord>, a: string, b: string): Spread | null {
  const ra = group.get(a)?.runs;
  const rb = group.get(b)?.runs;
  if (ra === undefined || rb === undefined) return null;
  return spreadOf(ra.map((r, i) => r.meanNs / rb[i]!.meanNs));
}

function conclusions(store: Store, c: CorpusName) {
  const enc = store[c].encode;
  const dec = store[c].decode;
  const candidate = summarise(enc.get(CANDIDATE)!).ratio;
  const bestMp = best(enc, (r) => r.msgpackr === true);
  const bestMpRing = best(enc, (r) => r.msgpackr === true && r.ring === true);
  return {
    ringlogOverStringify: { ratio: candidate, target: 0.5, met: candidate.median <= 0.5 },
    bestMsgpackrOverStringify: bestMp,
    bestMsgpackrIntoRingOverStringify: bestMpRing,
    ringlogOverBestMsgpackrIntoRing: bestMpRing ? pairedRatio(enc, CANDIDATE, bestMpRing.task) : null,
    ringlogOverCopyFloor: pairedRatio(enc, CANDIDATE, 'copy pre-encoded JSON → SAB (u8.set)'),
    unpackSabOverPlain: {
      defaults: pairedRatio(dec, 'msgpackr unpack() ← SAB', 'msgpackr unpack() ← Buffer'),
      seqRecords: pairedRatio(dec, 'msgpackr seq records unpack ← SAB', 'msgpackr seq records unpack ← Buffer'),
    },
    lineBuilderSabOverStringify: summarise(dec.get('ringlog LineBuilder ← SAB')!).ratio,
    lineBuilderSabOverMsgpackrWriterPath: pairedRatio(
      dec,
      'ringlog LineBuilder ← SAB',
      'msgpackr seq unpack ← SAB + JSON.stringify + utf8Write',
    ),
  };
}

function printConclusions(c: CorpusName, k: ReturnType<typeof conclusions>): void {
  const r = (s: Spread | null | undefined) => (s ? cell(s, fmtRatio) : 'n/a');
  const p = (x: Pick | null) => (x ? `${r(x.ratio)}  [${x.task}]` : 'n/a');
  const lines: [string, string][] = [
    ['ringlog encoder ÷ JSON.stringify', `${r(k.ringlogOverStringify.ratio)}  target ≤ 0.5: ${k.ringlogOverStringify.met ? 'met' : 'NOT met'}`],
    ['best msgpackr ÷ JSON.stringify', p(k.bestMsgpackrOverStringify)],
    ['best msgpackr into the ring ÷ JSON.stringify', p(k.bestMsgpackrIntoRingOverStringify)],
    ['ringlog encoder ÷ that msgpackr variant', r(k.ringlogOverBestMsgpackrIntoRing)],
    ['ringlog encoder ÷ copy floor', r(k.ringlogOverCopyFloor)],
    ['msgpackr unpack ← SAB ÷ ← Buffer', `defaults ${r(k.unpackSabOverPlain.defaults)}, seq records ${r(k.unpackSabOverPlain.seqRecords)}`],
    ['LineBuilder ← SAB ÷ JSON.stringify', r(k.lineBuilderSabOverStringify)],
    ['LineBuilder ← SAB ÷ msgpackr writer path', r(k.lineBuilderSabOverMsgpackrWriterPath)],
  ];
  const width = Math.max(...lines.map(([label]) => label.length));
  console.log(`\nConclusions, ${c} corpus (median of ${REPS} runs, min–max):`);
  for (const [label, value] of lines) console.log(`  ${(label + ':').padEnd(width + 1)} ${value}`);
}

function readOptions(): RunOptions & { quick: boolean } {
  const { values } = parseArgs({
    options: { time: { type: 'string' }, quick: { type: 'boolean', default: false } },
    strict: true,
  });
  const quick = values.quick === true;
  const timeMs = parsePositiveInt(values.time, '--time', quick ? QUICK_TIME_MS : DEFAULT_TIME_MS);
  // A quarter of the measuring time, capped at tinybench's default: warm-up only has to get V8
  // past optimisation, which takes far less than a long measurement.
  const warmupMs = Math.min(quick ? QUICK_WARMUP_MS : DEFAULT_WARMUP_MS, Math.max(1, Math.floor(timeMs / 4)));
  return { timeMs, warmupMs, quick };
}

async function main(): Promise<void> {
  const opts = readOptions();
  const command = [process.execPath, ...process.execArgv, ...process.argv.slice(1)].join(' ');
  const log = (s: string) => process.stderr.write(s + '\n');

  log('building corpora and checking decoders...');
  const corpora = { large: buildCorpus('large'), small: buildCorpus('small') };
  const ring = createRing(RING_BYTES);
  // A new SAB is mapped page by page on first write (measured: a first lap of 8 KB string writes
  // took twice the steady-state time); without this fill the first lap round the ring would
  // charge those page faults to whichever ring task happened to run first.
  ring.u8.fill(0);

  const store = {} as Store;
  for (const c of CORPORA) store[c] = { encode: new Map(), decode: new Map() };

  const started = Date.now();
  const loadStart = os.loadavg()[0];
  for (let rep = 0; rep < REPS; rep++) {
    for (const c of CORPORA) {
      for (const group of ['encode', 'decode'] as const) {
        log(`run ${rep + 1}/${REPS}: ${c} corpus, ${group} (${((Date.now() - started) / 1000).toFixed(0)} s elapsed)`);
        const specs = group === 'encode' ? encodeTasks(corpora[c], ring) : decodeTasks(corpora[c]);
        runGroup(specs, rep, opts, store[c][group]);
        // Let the MessagePort's close and any pending work settle before the next Bench.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
  }

  const cpus = os.cpus();
  const results: Record<string, unknown> = {
    benchmark: 'encoding',
    date: new Date().toISOString(),
    command,
    node: process.version,
    v8: process.versions.v8,
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    platform: `${os.platform()} ${os.release()}`,
    msgpackr: { version: packageVersion('msgpackr'), nativeStringExtraction: isNativeAccelerationEnabled },
    tinybench: packageVersion('tinybench'),
    params: {
      quick: opts.quick,
      timeMsPerTaskPerRun: opts.timeMs,
      warmupMsPerTaskPerRun: opts.warmupMs,
      runs: REPS,
      pool: POOL_SIZE,
      seed: CORPUS_SEED,
      ringBytes: RING_BYTES,
      timerOverheadNsSubtracted: timerOverheadMs === undefined ? null : timerOverheadMs * NS_PER_MS,
      runner: 'tinybench runSync(), task order rotated each run',
    },
    // The machine is shared with other benchmarks; the load says how contended these runs were.
    loadAverage1m: { start: loadStart, end: os.loadavg()[0] },
    timerSaturationWarnings: [...timerWarnings],
    notes: [
      'Every figure is { median, min, max } over the runs; ratios are task mean ÷ JSON.stringify(envelope) mean of the same run.',
      'opsPerSec is 1e9 / meanNs. Latencies have the calibrated timer overhead subtracted (tinybench subtractTimerOverhead).',
      'msgpackr tasks pack the event alone (no index/timestamp envelope), as the brief specifies; JSON tasks and the ringlog encoder include the envelope and a Date.now() call.',
      "msgpackr pack() is Packr({ useRecords: false }) internally (msgpackr pack.js:1392): the two rows measure one encoder and show the run-to-run noise between identical tasks.",
      "'in place in SAB' rows are beyond the brief: msgpackr packing straight into the ring via useBuffer().",
      'Decode rows read pre-encoded data; sequential-record decoders read in pool order so every structure is defined before use.',
      'bytesPerEvent.v8 is v8.serialize() output, the serialisation postMessage and structuredClone use.',
      "msgpackr-extract's native string extractor throws on a SharedArrayBuffer source; msgpackr catches it and decodes in JS, so unpack from a SAB pays a throw per call.",
      'The clock steps in ~10 ns; sub-100 ns tasks (the copy floor on the small corpus) have coarse percentiles, their means are sound.',
    ],
    corpora: Object.fromEntries(
      CORPORA.map((c) => [
        c,
        {
          bytesPerEvent: corpora[c].bytesPerEvent,
          encode: Object.fromEntries([...store[c].encode].map(([n, r]) => [n, summarise(r)])),
          decode: Object.fromEntries([...store[c].decode].map(([n, r]) => [n, summarise(r)])),
          conclusions: conclusions(store, c),
        },
      ]),
    ),
    checksum: sink,
  };

  console.log(`encoding bench: ${results.cpu as string}, ${cpus.length} cores, node ${process.version}`);
  console.log(`command: ${command}`);
  console.log(`${opts.timeMs} ms per task per run, ${REPS} runs; cells are median (min–max) over runs.`);
  for (const c of CORPORA) {
    const b = corpora[c].bytesPerEvent;
    console.log(`\n## ${c} corpus: encode (caller thread), mean JSON line ${b.json!.toFixed(0)} B\n`);
    console.log(table(store[c].encode, b));
    console.log(`\n## ${c} corpus: decode (writer side), ratio to JSON.stringify(envelope) of this group\n`);
    console.log(table(store[c].decode, b));
    printConclusions(c, conclusions(store, c));
  }

  fs.mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  fs.writeFileSync(RESULTS_FILE, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nresults: ${path.relative(process.cwd(), RESULTS_FILE) || RESULTS_FILE}`);
}

function packageVersion(name: string): string {
  const file = fileURLToPath(new URL(`../../node_modules/${name}/package.json`, import.meta.url));
  try {
    return (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

await main();
