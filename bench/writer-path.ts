// Which path should the writer worker use to put JSON lines into the log file: sonic-boom, or our
// own batch writer (utf8Write into one reusable Buffer, one fs.writeSync per batch)? (--suite file,
// the default.) And what does redaction cost the writer: the line builder turning ring records into
// lines, then the same batch write, with redaction off, the default policy, and the default policy
// plus three extra patterns? (--suite redaction.)
//
// Every contender runs in its own child process so that one contender's heap, JIT state and
// garbage cannot tax the next. Runs are interleaved (and the order rotated) so that slow drift
// of the machine (page-cache writeback, thermal, neighbours) spreads over all contenders alike.
//
//   npx tsc -p tsconfig.json && node dist/bench/writer-path.js [--suite file|redaction] [--lines N] [--runs R]

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
// sonic-boom is CommonJS (module.exports = SonicBoom): Node hands that function over as the default
// import and finds no named exports, while the typings describe the module object. The .SonicBoom
// property (index.js:978) is where runtime and typings agree.
import sonicBoom from 'sonic-boom';
import { KeyTable } from '../src/ring/keys.js';
import { encodeRecords } from './records.js';
import { LineBuilder } from '../src/writer/line-builder.js';
import { OutBuffer } from '../src/writer/out-buffer.js';
import { compileRedaction, resolveRedactSpec, type RedactSpec } from '../src/writer/redact.js';
import { makeCorpus, type AgentEventLike } from '../demo/corpus.js';

const { SonicBoom } = sonicBoom;
type SonicBoom = InstanceType<typeof SonicBoom>;

// ---------------------------------------------------------------------------------------------
// Parameters (each one's reason is next to it)

/** The brief's workload: 200k lines is ~260 MB on the large corpus, long enough to swamp timer noise. */
const DEFAULT_LINES = 200_000;
/** Odd, so the median is a real run; 5 keeps the full run within a few minutes on 2 cores. */
const DEFAULT_RUNS = 5;
/** makeCorpus's own default seed, so these lines are the ones the other benches and tests use. */
const CORPUS_SEED = 42;
/** Lines per batch, fixed by the design under test: ~83 KB per write at the ~1.3 KB mean line. */
const BATCH_LINES = 64;
/**
 * Initial scratch size for the batch encoders. It exceeds the worst case of a typical large-corpus
 * batch (64 lines x ~1.3 KB x 3 bytes per UTF-16 unit ~= 250 KB), so growth is rare; grow() covers
 * the outliers rather than sizing for the largest batch up front.
 */
const SCRATCH_INITIAL_BYTES = 1 << 20;
/** UTF-8 needs at most 3 bytes per UTF-16 code unit (a surrogate pair is 2 units for 4 bytes). */
const MAX_UTF8_BYTES_PER_UTF16_UNIT = 3;
/**
 * sonic-boom's maxWrite for the sync contenders, as the brief fixes it. maxWrite only limits how
 * far sonic-boom coalesces queued writes (index.js:443-450, 475-484); 1 MiB makes sure it never
 * splits or caps one of our batches, so what we measure is the sync write path, not the chunking.
 */
const SONIC_MAX_WRITE = 1 << 20;
/**
 * Lines written (to a scratch file, untimed) before the timed run. A few thousand iterations take
 * every hot loop well past the point where V8 optimises it, so the timed run sees the steady state
 * of a long-lived worker rather than a cold process.
 */
const WARMUP_LINES = 5_000;
/** Decimal megabytes, as disk and network throughput are usually quoted. */
const BYTES_PER_MB = 1e6;
const NS_PER_S = 1e9;
const NS_PER_MS = 1e6;

/**
 * Three patterns of the kind a deployment adds (a US social security number, an OpenAI-style
 * secret key, an AWS access key id): each has to be tried on every string, since no byte test can
 * rule a user's pattern out. None matches the corpus, so every contender writes the same bytes.
 */
const EXTRA_PATTERNS = [/\b\d{3}-\d{2}-\d{4}\b/, /\bsk-[A-Za-z0-9_-]{20,}/, /\bAKIA[0-9A-Z]{16}\b/];

const SUITES = {
  file: {
    contenders: ['sonic-boom-async', 'sonic-boom-sync-batched', 'sonic-boom-sync-buffer', 'direct-batch', 'direct-per-line'],
    baseline: 'direct-batch',
    results: 'writer-path.json',
  },
  redaction: {
    contenders: ['builder-redact-off', 'builder-redact-default', 'builder-redact-3-patterns'],
    baseline: 'builder-redact-off',
    results: 'writer-path-redaction.json',
  },
} as const;
type SuiteName = keyof typeof SUITES;
const SUITE_NAMES = Object.keys(SUITES) as SuiteName[];
type ContenderName = (typeof SUITES)[SuiteName]['contenders'][number];
const CONTENDERS: readonly ContenderName[] = SUITE_NAMES.flatMap((s) => SUITES[s].contenders);

const CORPORA = ['large', 'small'] as const;
type CorpusName = (typeof CORPORA)[number];

/** Results directory, found from this script's location so the run does not depend on the cwd. */
const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));
const THIS_FILE = fileURLToPath(import.meta.url);

// ---------------------------------------------------------------------------------------------
// Workload

/** The lines every contender must write, and what they are made of (the line-builder contenders
 *  start from the events, as the writer thread does). */
interface Workload {
  readonly lines: readonly string[];
  readonly events: readonly AgentEventLike[];
  readonly stamps: readonly number[];
}

function buildWorkload(count: number, corpus: CorpusName): Workload {
  const events = makeCorpus(count, CORPUS_SEED, corpus === 'small');
  const lines: string[] = new Array(count);
  const stamps: number[] = new Array(count);
  for (let i = 0; i < count; i++) {
    stamps[i] = Date.now();
    lines[i] = JSON.stringify({ index: i, emitted_at_ms: stamps[i], frame_depth: null, ...events[i] }) + '\n';
  }
  return { lines, events, stamps };
}

function sliceWorkload(w: Workload, count: number): Workload {
  return { lines: w.lines.slice(0, count), events: w.events.slice(0, count), stamps: w.stamps.slice(0, count) };
}

function totalBytes(lines: readonly string[]): number {
  let bytes = 0;
  for (const line of lines) bytes += Buffer.byteLength(line);
  return bytes;
}

function sha256OfLines(lines: readonly string[]): string {
  const hash = createHash('sha256');
  for (const line of lines) hash.update(line, 'utf8');
  return hash.digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Batch encoding shared by sonic-boom-sync-buffer and direct-batch, so they differ only in the sink

/** Buffer.prototype.utf8Write exists in Node but is missing from @types/node; typed here, locally. */
type Utf8Buffer = Buffer & { utf8Write(text: string, offset: number, length?: number): number };

function allocScratch(bytes: number): Utf8Buffer {
  // allocUnsafe: every byte handed to a write was just encoded, so zero-filling would be wasted.
  return Buffer.allocUnsafe(bytes) as Utf8Buffer;
}

class BatchEncoder {
  private buf = allocScratch(SCRATCH_INITIAL_BYTES);

  get buffer(): Buffer {
    return this.buf;
  }

  /** Encodes lines[start, end) from offset 0 of the scratch buffer; returns the byte count. */
  encode(lines: readonly string[], start: number, end: number): number {
    let pos = 0;
    for (let i = start; i < end; i++) {
      const line = lines[i]!;
      // utf8Write silently truncates when space runs out, so guarantee room for the worst case
      // instead of paying for a Buffer.byteLength scan of every line.
      const worstCase = pos + line.length * MAX_UTF8_BYTES_PER_UTF16_UNIT;
      if (worstCase > this.buf.length) this.grow(worstCase, pos);
      pos += this.buf.utf8Write(line, pos);
    }
    return pos;
  }

  private grow(needed: number, keep: number): void {
    // Doubling keeps the number of regrowths logarithmic if batches keep getting bigger.
    const next = allocScratch(Math.max(needed, this.buf.length * 2));
    this.buf.copy(next, 0, 0, keep);
    this.buf = next;
  }
}

function forEachBatch(count: number, body: (start: number, end: number) => void): void {
  for (let start = 0; start < count; start += BATCH_LINES) body(start, Math.min(start + BATCH_LINES, count));
}

/** write(2) may write fewer bytes than asked (signals, quotas, some filesystems): loop until done. */
function writeFullySync(fd: number, buf: Buffer, length: number): void {
  let off = 0;
  while (off < length) off += fs.writeSync(fd, buf, off, length - off);
}

// ---------------------------------------------------------------------------------------------
// Contenders. Each gets an open fd, writes every line, and owns closing it.

interface Timing {
  /** From just before the first write until every byte has been handed to the kernel. */
  writeNs: number;
  /** Line-builder contenders: the part of writeNs spent building lines (the rest is writing). */
  buildNs?: number;
  /**
   * Closing, timed apart: sonic-boom's end() fsyncs before closing (index.js:941), the direct
   * writers only close(2). Folding that into writeNs would compare a disk flush with a syscall.
   */
  closeNs: number;
}
type Contender = (fd: number, w: Workload, expectedBytes: number) => Promise<Timing>;

/** The buffer-mode write() accepts a Buffer, but sonic-boom's typings only declare write(string). */
type BufferSink = { write(chunk: Buffer): boolean };

const now = (): bigint => process.hrtime.bigint();
const elapsed = (from: bigint, to: bigint): number => Number(to - from);

function assertFdSize(fd: number, expectedBytes: number, what: string): void {
  const size = fs.fstatSync(fd).size;
  if (size !== expectedBytes) throw new Error(`${what}: file holds ${size} bytes, expected ${expectedBytes}`);
}

async function endSonic(sonic: SonicBoom): Promise<number> {
  const t0 = now();
  const closed = once(sonic, 'close'); // rejects if 'error' is emitted first
  sonic.end();
  await closed;
  return elapsed(t0, now());
}

function closeDirect(fd: number): number {
  const t0 = now();
  fs.closeSync(fd);
  return elapsed(t0, now());
}

/** Resolves once sonic-boom reports (via its 'write' events) that all bytes were written. */
function allBytesWritten(sonic: SonicBoom, expectedBytes: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let written = 0;
    sonic.on('write', (n: number) => {
      written += n;
      if (written === expectedBytes) resolve();
    });
    sonic.once('error', reject);
  });
}

const contenders: Record<ContenderName, Contender> = {
  // How pino's file destination drives sonic-boom (pino/file.js forces sync: false; pino.destination
  // uses minLength: 0): every write() queues the line and fs.write runs it on the libuv pool.
  'sonic-boom-async': async (fd, { lines }, expectedBytes) => {
    const sonic = new SonicBoom({ fd, minLength: 0 });
    await once(sonic, 'ready'); // emitted on the next tick for an fd; keep that tick out of the timing
    const done = allBytesWritten(sonic, expectedBytes);
    const t0 = now();
    for (const line of lines) sonic.write(line);
    await done;
    const writeNs = elapsed(t0, now());
    assertFdSize(fd, expectedBytes, 'sonic-boom-async');
    return { writeNs, closeNs: await endSonic(sonic) };
  },

  // No flushSync() here or below: flushSync() ends in fs.fsyncSync (index.js:799-803), which
  // would time the disk instead of the write path. sync: true already writes inside write().
  'sonic-boom-sync-batched': async (fd, { lines }, expectedBytes) => {
    const sonic = new SonicBoom({ fd, sync: true, maxWrite: SONIC_MAX_WRITE });
    await once(sonic, 'ready');
    const t0 = now();
    forEachBatch(lines.length, (start, end) => {
      sonic.write(lines.slice(start, end).join(''));
    });
    const writeNs = elapsed(t0, now());
    assertFdSize(fd, expectedBytes, 'sonic-boom-sync-batched');
    return { writeNs, closeNs: await endSonic(sonic) };
  },

  'sonic-boom-sync-buffer': async (fd, { lines }, expectedBytes) => {
    const sonic = new SonicBoom({ fd, contentMode: 'buffer', sync: true, maxWrite: SONIC_MAX_WRITE });
    await once(sonic, 'ready');
    const sink = sonic as unknown as BufferSink;
    const encoder = new BatchEncoder();
    const t0 = now();
    forEachBatch(lines.length, (start, end) => {
      const n = encoder.encode(lines, start, end);
      // Reusing the scratch buffer is only safe because sync mode writes it before write() returns
      // (index.js:488-489 -> 885-887); writeBuffer keeps a reference, not a copy (index.js:479).
      // The content hash check after the run would catch a batch overwritten while still queued.
      sink.write(encoder.buffer.subarray(0, n));
    });
    const writeNs = elapsed(t0, now());
    assertFdSize(fd, expectedBytes, 'sonic-boom-sync-buffer');
    return { writeNs, closeNs: await endSonic(sonic) };
  },

  'direct-batch': async (fd, { lines }, expectedBytes) => {
    const encoder = new BatchEncoder();
    const t0 = now();
    forEachBatch(lines.length, (start, end) => {
      writeFullySync(fd, encoder.buffer, encoder.encode(lines, start, end));
    });
    const writeNs = elapsed(t0, now());
    assertFdSize(fd, expectedBytes, 'direct-batch');
    return { writeNs, closeNs: closeDirect(fd) };
  },

  // Deliberately naive, as the reference implementation is: a short write would go unnoticed here,
  // which is why the file size is checked after every run.
  'direct-per-line': async (fd, { lines }, expectedBytes) => {
    const t0 = now();
    for (const line of lines) fs.writeSync(fd, line);
    const writeNs = elapsed(t0, now());
    assertFdSize(fd, expectedBytes, 'direct-per-line');
    return { writeNs, closeNs: closeDirect(fd) };
  },

  // The writer thread's own path: ring records → LineBuilder → one write per batch, with each
  // redaction policy. The records are encoded before the clock starts (that is the caller's cost).
  'builder-redact-off': async (fd, w, expectedBytes) => builderRun(fd, w, expectedBytes, null, 'builder-redact-off'),
  'builder-redact-default': async (fd, w, expectedBytes) =>
    builderRun(fd, w, expectedBytes, resolveRedactSpec(undefined), 'builder-redact-default'),
  'builder-redact-3-patterns': async (fd, w, expectedBytes) =>
    builderRun(fd, w, expectedBytes, resolveRedactSpec({ patterns: EXTRA_PATTERNS }), 'builder-redact-3-patterns'),
};


async function builderRun(fd: number, w: Workload, expectedBytes: number, spec: RedactSpec | null, what: string): Promise<Timing> {
  const { target: src, offsets } = encodeRecords(w.events, (i) => w.stamps[i]!);
  const builder = new LineBuilder(new KeyTable(), compileRedaction(spec));
  const out = new OutBuffer(SCRATCH_INITIAL_BYTES);
  let buildNs = 0;
  const t0 = now();
  forEachBatch(offsets.length, (start, end) => {
    const b0 = now();
    out.len = 0;
    for (let i = start; i < end; i++) {
      builder.build(src, offsets[i]!, out);
      out.ensure(1);
      out.buf[out.len++] = NEWLINE;
    }
    buildNs += elapsed(b0, now());
    writeFullySync(fd, out.buf, out.len);
  });
  const writeNs = elapsed(t0, now());
  assertFdSize(fd, expectedBytes, what);
  return { writeNs, buildNs, closeNs: closeDirect(fd) };
}

const NEWLINE = 0x0a;

// ---------------------------------------------------------------------------------------------
// Child: one contender, one corpus, one timed run

interface ChildResult {
  contender: ContenderName;
  corpus: CorpusName;
  run: number;
  lines: number;
  bytes: number;
  writeNs: number;
  closeNs: number;
  nsPerLine: number;
  /** Line-builder contenders: building alone, per line. */
  buildNsPerLine?: number;
  linesPerSec: number;
  mbPerSec: number;
}

function sha256OfFile(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** Size and content, read back from disk after close: a contender must not just write enough bytes. */
function verifyFile(file: string, expectedBytes: number, expectedSha: string, what: string): void {
  const size = fs.statSync(file).size;
  if (size !== expectedBytes) throw new Error(`${what}: ${file} has ${size} bytes, expected ${expectedBytes}`);
  if (sha256OfFile(file) !== expectedSha) throw new Error(`${what}: ${file} content differs from the lines`);
}

async function runOnce(name: ContenderName, file: string, w: Workload): Promise<Timing> {
  const expectedBytes = totalBytes(w.lines);
  const expectedSha = sha256OfLines(w.lines);
  // 'a': the worker appends to its log file; a fresh file per run makes 'a' and 'w' write the same bytes.
  const fd = fs.openSync(file, 'a');
  const timing = await contenders[name](fd, w, expectedBytes);
  verifyFile(file, expectedBytes, expectedSha, name);
  fs.unlinkSync(file); // free the page cache before the next run rather than leave it to writeback
  return timing;
}

async function runChild(name: ContenderName, corpus: CorpusName, run: number, count: number, dir: string): Promise<void> {
  const workload = buildWorkload(count, corpus);
  await runOnce(name, path.join(dir, `${name}-${corpus}-${run}-warmup.jsonl`), sliceWorkload(workload, WARMUP_LINES));
  // Collect the corpus-building garbage now, so no contender pays for it inside its timed window.
  globalThis.gc?.();
  const timing = await runOnce(name, path.join(dir, `${name}-${corpus}-${run}.jsonl`), workload);
  const bytes = totalBytes(workload.lines);
  const seconds = timing.writeNs / NS_PER_S;
  const result: ChildResult = {
    contender: name,
    corpus,
    run,
    lines: count,
    bytes,
    writeNs: timing.writeNs,
    closeNs: timing.closeNs,
    nsPerLine: timing.writeNs / count,
    ...(timing.buildNs !== undefined ? { buildNsPerLine: timing.buildNs / count } : {}),
    linesPerSec: count / seconds,
    mbPerSec: bytes / BYTES_PER_MB / seconds,
  };
  process.stdout.write(JSON.stringify(result) + '\n');
}

// ---------------------------------------------------------------------------------------------
// Parent: spawn, interleave, summarise

function spawnChild(name: ContenderName, corpus: CorpusName, run: number, count: number, dir: string): ChildResult {
  const args = [
    // --expose-gc: lets the child collect its setup garbage before timing (see runChild).
    '--expose-gc',
    THIS_FILE,
    '--child', name,
    '--corpus', corpus,
    '--run', String(run),
    '--lines', String(count),
    '--dir', dir,
  ];
  const child = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (child.error) throw child.error;
  if (child.status !== 0) throw new Error(`child ${name}/${corpus}/run ${run} failed (exit ${child.status ?? child.signal})`);
  const last = child.stdout.trim().split('\n').pop();
  if (!last) throw new Error(`child ${name}/${corpus}/run ${run} printed no result`);
  return JSON.parse(last) as ChildResult;
}

/** Rotating the start each run means no contender always runs first, or always right after another. */
function rotated<T>(items: readonly T[], by: number): T[] {
  return items.map((_, k) => items[(k + by) % items.length]!);
}

interface Spread {
  median: number;
  min: number;
  max: number;
}

function spread(values: readonly number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]! };
}

interface ContenderSummary {
  nsPerLine: Spread;
  /** Line-builder contenders: building alone (ns/line), and its median over the baseline's. */
  buildNsPerLine?: Spread;
  buildRatioToBaseline?: number;
  linesPerSec: Spread;
  mbPerSec: Spread;
  closeMs: Spread;
  /** Median ns/line divided by the suite's baseline's: 2.0 means twice as slow. */
  ratioToBaseline: number;
  runs: ChildResult[];
}

interface CorpusSummary {
  lines: number;
  bytes: number;
  meanLineBytes: number;
  baseline: ContenderName;
  contenders: Record<string, ContenderSummary>;
}

function summarise(results: readonly ChildResult[], corpus: CorpusName, suite: SuiteName): CorpusSummary {
  const { contenders: names, baseline: BASELINE } = SUITES[suite];
  const mine = results.filter((r) => r.corpus === corpus);
  const bytes = mine[0]!.bytes;
  // Same seed and count must give the same bytes in every child; otherwise the workloads differ.
  const odd = mine.find((r) => r.bytes !== bytes);
  if (odd) throw new Error(`${corpus}: ${odd.contender} wrote ${odd.bytes} bytes, others ${bytes}`);
  const pick = (name: ContenderName) => mine.filter((r) => r.contender === name);
  const baseline = spread(pick(BASELINE).map((r) => r.nsPerLine)).median;
  const builds = pick(BASELINE).map((r) => r.buildNsPerLine);
  const baselineBuild = builds.every((b) => b !== undefined) ? spread(builds as number[]).median : undefined;
  const contenderSummaries: Record<string, ContenderSummary> = {};
  for (const name of names) {
    const runs = pick(name);
    const nsPerLine = spread(runs.map((r) => r.nsPerLine));
    const buildValues = runs.map((r) => r.buildNsPerLine);
    const build = buildValues.every((b) => b !== undefined) ? spread(buildValues as number[]) : undefined;
    contenderSummaries[name] = {
      nsPerLine,
      ...(build ? { buildNsPerLine: build } : {}),
      ...(build && baselineBuild ? { buildRatioToBaseline: build.median / baselineBuild } : {}),
      linesPerSec: spread(runs.map((r) => r.linesPerSec)),
      mbPerSec: spread(runs.map((r) => r.mbPerSec)),
      closeMs: spread(runs.map((r) => r.closeNs / NS_PER_MS)),
      ratioToBaseline: nsPerLine.median / baseline,
      runs,
    };
  }
  const lines = mine[0]!.lines;
  return { lines, bytes, meanLineBytes: bytes / lines, baseline: BASELINE, contenders: contenderSummaries };
}

function formatTable(corpus: CorpusName, s: CorpusSummary, suite: SuiteName): string {
  const names = SUITES[suite].contenders;
  const withBuild = suite === 'redaction';
  const header = ['contender', 'ns/line med [min-max]', 'lines/s', 'MB/s', 'close ms', `x ${s.baseline}`];
  if (withBuild) header.push('build ns/line', 'build x');
  const rows = names.map((name) => {
    const c = s.contenders[name]!;
    const ns = c.nsPerLine;
    const row = [
      name,
      `${ns.median.toFixed(0)} [${ns.min.toFixed(0)}-${ns.max.toFixed(0)}]`,
      Math.round(c.linesPerSec.median).toLocaleString('en-US'),
      c.mbPerSec.median.toFixed(0),
      c.closeMs.median.toFixed(1),
      c.ratioToBaseline.toFixed(2),
    ];
    if (withBuild) row.push(c.buildNsPerLine?.median.toFixed(0) ?? '-', c.buildRatioToBaseline?.toFixed(2) ?? '-');
    return row;
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  const title = `${corpus} corpus: ${s.lines.toLocaleString('en-US')} lines, ${(s.bytes / BYTES_PER_MB).toFixed(1)} MB, mean ${s.meanLineBytes.toFixed(0)} B/line (medians of each metric)`;
  return [title, fmt(header), ...rows.map(fmt)].join('\n');
}

function writeResults(count: number, runs: number, suite: SuiteName, summaries: Record<CorpusName, CorpusSummary>): string {
  const report = {
    benchmark: 'writer-path',
    suite,
    date: new Date().toISOString(),
    command: [process.execPath, ...process.execArgv, ...process.argv.slice(1)].join(' '),
    node: process.version,
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    platform: `${os.platform()} ${os.release()}`,
    tmpdir: os.tmpdir(),
    uvThreadpoolSize: process.env.UV_THREADPOOL_SIZE ?? 'default (4)',
    params: {
      lines: count,
      runs,
      batchLines: BATCH_LINES,
      warmupLines: WARMUP_LINES,
      seed: CORPUS_SEED,
      ...(suite === 'file' ? { sonicMaxWrite: SONIC_MAX_WRITE } : { extraPatterns: EXTRA_PATTERNS.map(String) }),
    },
    notes: [
      'writeNs runs from just before the first write until all bytes are in the file (fstat-checked).',
      "closeMs is timed apart: sonic-boom's end() fsyncs before close, the direct writers only close.",
      `ratioToBaseline = median ns/line / median ns/line of ${SUITES[suite].baseline}; above 1 is slower.`,
      ...(suite === 'redaction'
        ? [
            'builder-* contenders: ring records (encoded before timing) -> LineBuilder -> one fs.writeSync per batch, as the writer thread does; buildNsPerLine is the building part alone.',
            "The corpus holds no secret, no '=' after ?/&/; and no '@' after '://': the default policy's byte prefilter never sends a string to the slow path, and every contender writes the same bytes (sha-checked). With extra patterns every string is decoded and tried.",
          ]
        : []),
    ],
    corpora: summaries,
  };
  const file = path.join(RESULTS_DIR, SUITES[suite].results);
  fs.mkdirSync(RESULTS_DIR, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(report, null, 2) + '\n');
  return file;
}

function runParent(count: number, runs: number, suite: SuiteName): void {
  const CONTENDERS = SUITES[suite].contenders;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-writer-path-'));
  const results: ChildResult[] = [];
  try {
    for (let run = 0; run < runs; run++) {
      for (const corpus of CORPORA) {
        for (const name of rotated(CONTENDERS, run)) {
          const r = spawnChild(name, corpus, run, count, dir);
          process.stderr.write(`run ${run + 1}/${runs} ${corpus.padEnd(5)} ${name.padEnd(25)} ${r.nsPerLine.toFixed(0)} ns/line\n`);
          results.push(r);
        }
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const summaries = { large: summarise(results, 'large', suite), small: summarise(results, 'small', suite) };
  for (const corpus of CORPORA) console.log('\n' + formatTable(corpus, summaries[corpus], suite));
  const file = writeResults(count, runs, suite, summaries);
  console.log(`\nresults: ${file}`);
}

// ---------------------------------------------------------------------------------------------
// Entry

function positiveInt(raw: string | undefined, fallback: number, flag: string): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${raw}`);
  return n;
}

function oneOf<T extends string>(raw: string | undefined, allowed: readonly T[], flag: string): T {
  const hit = allowed.find((a) => a === raw);
  if (!hit) throw new Error(`${flag} must be one of ${allowed.join(', ')}, got ${raw}`);
  return hit;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    strict: true,
    options: {
      lines: { type: 'string' },
      runs: { type: 'string' },
      suite: { type: 'string' },
      // Internal: set by the parent when it spawns a child.
      child: { type: 'string' },
      corpus: { type: 'string' },
      run: { type: 'string' },
      dir: { type: 'string' },
    },
  });
  const count = positiveInt(values.lines, DEFAULT_LINES, '--lines');
  if (values.child === undefined) {
    runParent(count, positiveInt(values.runs, DEFAULT_RUNS, '--runs'), oneOf(values.suite ?? 'file', SUITE_NAMES, '--suite'));
    return;
  }
  if (!values.dir) throw new Error('--child needs --dir');
  const run = Number(values.run ?? 0);
  if (!Number.isInteger(run) || run < 0) throw new Error(`--run must be a non-negative integer, got ${values.run}`);
  await runChild(oneOf(values.child, CONTENDERS, '--child'), oneOf(values.corpus, CORPORA, '--corpus'), run, count, values.dir);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
