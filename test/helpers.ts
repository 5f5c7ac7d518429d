// Shared test helpers: temp dirs, reading a rotated event-log set, expected lines, child processes.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import { SinkError, type AgentEvent } from '../dist/src/index.js';

/** The compiled library, located from this file (test/ → ../dist/src/index.js), never hard-coded. */
export const RINGLOG_URL = new URL('../dist/src/index.js', import.meta.url);
/** The project's seeded corpus generator (compiled). */
export const CORPUS_URL = new URL('../dist/demo/corpus.js', import.meta.url);

export const BASE_NAME = 'event_log.jsonl';

/** An event as the tests' own sinks read it: the tests only emit plain records. */
export type EventFields = { readonly type?: string; readonly [key: string]: unknown };

/** AgentEvent is any object, so a sink that reads fields narrows it first. */
export const fields = (event: AgentEvent): EventFields => event as EventFields;

/** A fresh, unique directory under os.tmpdir(). The test file removes it (removeDir) when done. */
export function tempDir(label: string): string {
  const safe = label.replace(/[^A-Za-z0-9_-]+/g, '-').slice(0, 40);
  return fs.mkdtempSync(path.join(os.tmpdir(), `ringlog-test-${safe}-`));
}

export function removeDir(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}

/**
 * Per-file temp dir bookkeeping: `make(label)` creates a dir, `cleanup()` (call it from afterEach)
 * removes every dir made since the last cleanup.
 */
export function tempDirs(): { make(label: string): string; cleanup(): void } {
  const made: string[] = [];
  return {
    make(label: string): string {
      const d = tempDir(label);
      made.push(d);
      return d;
    },
    cleanup(): void {
      while (made.length > 0) removeDir(made.pop()!);
    },
  };
}

/** One parsed line of the log: the envelope, then the event's own fields. */
export interface Line {
  index: number;
  emitted_at_ms: number;
  frame_depth: number | null;
  execution_id?: string;
  type?: string;
  [key: string]: unknown;
}

export interface SegmentFile {
  /** File name inside the directory. */
  readonly name: string;
  readonly path: string;
  /** Segment number: 0 for the base file. */
  readonly n: number;
  readonly bytes: number;
  /** The file's lines, without their newlines. */
  readonly raw: string[];
}

export interface LogSet {
  /** The base file, then the numbered segments in order (only files that exist). */
  readonly files: SegmentFile[];
  /** Every line of the set, in file order, without newlines. */
  readonly raw: string[];
  /** The same lines, parsed. */
  readonly lines: Line[];
}

function splitBase(base: string): { stem: string; ext: string } {
  const parsed = path.parse(base);
  return { stem: parsed.name, ext: parsed.ext ? parsed.ext.slice(1) : 'jsonl' };
}

/** Numbered segment file name, as the reference lays them out: `<stem>-000001.<ext>`. */
export function segmentName(n: number, base = BASE_NAME): string {
  if (n === 0) return base;
  const { stem, ext } = splitBase(base);
  return `${stem}-${String(n).padStart(6, '0')}.${ext}`;
}

/** The files of a rotated set, in order: the base file (n 0), then `<stem>-000001.<ext>`, … */
export function segmentFiles(dir: string, base = BASE_NAME): { name: string; n: number }[] {
  const { stem, ext } = splitBase(base);
  const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const re = new RegExp(`^${escape(stem)}-(\\d{6,})\\.${escape(ext)}$`);
  const found: { name: string; n: number }[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (name === base) found.push({ name, n: 0 });
    else {
      const m = re.exec(name);
      if (m) found.push({ name, n: Number(m[1]) });
    }
  }
  found.sort((a, b) => a.n - b.n);
  return found;
}

/**
 * Reads a rotated set in order: the base file, then `<stem>-000001.<ext>`, `-000002`, … (sorted
 * numerically). Throws if a non-empty file does not end with a newline (a torn last line).
 */
export function readLines(dir: string, base = BASE_NAME): LogSet {
  const found = segmentFiles(dir, base);
  const files: SegmentFile[] = [];
  const raw: string[] = [];
  const lines: Line[] = [];
  for (const { name, n } of found) {
    const p = path.join(dir, name);
    const text = fs.readFileSync(p, 'utf8');
    if (text.length > 0 && !text.endsWith('\n')) throw new Error(`readLines: ${name} ends with a torn line`);
    const fileRaw = text.length === 0 ? [] : text.slice(0, -1).split('\n');
    files.push({ name, path: p, n, bytes: Buffer.byteLength(text, 'utf8'), raw: fileRaw });
    for (const r of fileRaw) {
      raw.push(r);
      lines.push(JSON.parse(r) as Line);
    }
  }
  return { files, raw, lines };
}

export interface Context {
  frameDepth?: number;
  executionId?: string;
}

/**
 * The line the contract promises for a JSON-compatible event:
 * JSON.stringify({ index, emitted_at_ms, frame_depth, [execution_id], ...event }).
 */
export function expectedLine(index: number, emittedAtMs: number, event: object, ctx?: Context): string {
  const envelope: Record<string, unknown> = { index, emitted_at_ms: emittedAtMs, frame_depth: ctx?.frameDepth ?? null };
  if (ctx?.executionId !== undefined) envelope.execution_id = ctx.executionId;
  return JSON.stringify({ ...envelope, ...event });
}

/** Compares two (possibly huge) strings without handing megabytes to the diff printer. */
export function firstDifference(actual: string, expected: string): string | undefined {
  if (actual === expected) return undefined;
  const n = Math.min(actual.length, expected.length);
  let i = 0;
  while (i < n && actual.charCodeAt(i) === expected.charCodeAt(i)) i++;
  const clip = (s: string): string => JSON.stringify(s.slice(Math.max(0, i - 40), i + 40));
  return `lengths ${actual.length} vs ${expected.length}, first difference at ${i}: actual ${clip(actual)} expected ${clip(expected)}`;
}

export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the helper killed the child at its deadline. */
  timedOut: boolean;
}

export interface ChildOptions {
  /** Kill the child (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  uid?: number;
  gid?: number;
  cwd?: string;
}

/**
 * Writes `scriptSource` as an ESM module to a temp file and runs it with process.execPath.
 * In the source, `%RINGLOG%` is replaced by the file URL of dist/src/index.js and `%CORPUS%` by
 * that of dist/demo/corpus.js. `args` arrive as process.argv.slice(2).
 */
export function runChild(scriptSource: string, args: readonly string[] = [], opts: ChildOptions = {}): Promise<ChildResult> {
  return spawnScript(scriptSource, args, opts).result;
}

let publicDist: string | undefined;

/**
 * A copy of dist/ that any user can read: a child running as another uid cannot read the checkout
 * itself when it lives under a private directory (mktemp -d makes 0700 ones). Made once per
 * test process.
 */
function worldReadableDist(): string {
  if (publicDist !== undefined) return publicDist;
  removeOrphanedDists();
  const root = tempDir(`dist-${process.pid}`);
  const dist = new URL('../dist/', import.meta.url);
  for (const sub of ['src', 'bench', 'demo']) {
    fs.cpSync(new URL(sub, dist), path.join(root, sub), { recursive: true });
  }
  // The copies must still resolve as ES modules.
  fs.writeFileSync(path.join(root, 'package.json'), '{"type":"module"}');
  const open = (p: string): void => {
    const st = fs.statSync(p);
    fs.chmodSync(p, st.isDirectory() ? 0o755 : 0o644);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) open(path.join(p, e));
  };
  open(root);
  publicDist = root;
  process.once('exit', () => removeDir(root));
  return root;
}

/**
 * Removes the dist copies of test processes that are gone: vitest ends its workers without an
 * 'exit' event, so a copy's own cleanup does not always run.
 */
function removeOrphanedDists(): void {
  for (const name of fs.readdirSync(os.tmpdir())) {
    const m = /^ringlog-test-dist-(\d+)-/.exec(name);
    if (!m) continue;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') removeDir(path.join(os.tmpdir(), name));
    }
  }
}

/** The script file for a child, with %RINGLOG% and %CORPUS% resolved for that child's uid. */
function writeScript(scriptSource: string, opts: ChildOptions): { dir: string; file: string } {
  const dir = tempDir('child');
  // Readable by an unprivileged child (mkdtemp makes 0700 dirs).
  fs.chmodSync(dir, 0o755);
  const dist = opts.uid === undefined ? undefined : worldReadableDist();
  const ringlog = dist ? pathToFileURL(path.join(dist, 'src', 'index.js')).href : RINGLOG_URL.href;
  const corpus = dist ? pathToFileURL(path.join(dist, 'bench', 'corpus.js')).href : CORPUS_URL.href;
  const file = path.join(dir, 'child.mjs');
  fs.writeFileSync(file, scriptSource.replaceAll('%RINGLOG%', ringlog).replaceAll('%CORPUS%', corpus), { mode: 0o644 });
  return { dir, file };
}

// ---------------------------------------------------------------------------------------------
// Helpers for the overload, fault, crash, process-death and hostile-value tests.

export interface SpawnOptions extends ChildOptions {
  /** Extra environment variables for the child (merged over process.env). */
  env?: Record<string, string>;
  /** Called with each chunk of the child's stdout as it arrives. */
  onStdout?: (chunk: string) => void;
}

export interface SpawnedChild {
  readonly child: ReturnType<typeof spawn>;
  readonly result: Promise<ChildResult>;
}

/**
 * Like runChild, but hands back the running child (to kill it at a moment of the test's choosing)
 * and takes environment variables (e.g. RINGLOG_TEST_INJECT, inherited by the writer thread).
 */
export function spawnScript(scriptSource: string, args: readonly string[] = [], opts: SpawnOptions = {}): SpawnedChild {
  const { dir, file } = writeScript(scriptSource, opts);
  return spawnNode([file, ...args], { ...opts, cwd: opts.cwd ?? dir, env: { ...process.env, ...(opts.env ?? {}) } }, () => removeDir(dir));
}

export interface NodeSpawnOptions {
  /** The child's whole environment. */
  env: NodeJS.ProcessEnv;
  cwd: string;
  uid?: number;
  gid?: number;
  /** Kill the child (SIGKILL) after this long; default 60 s. */
  timeoutMs?: number;
  onStdout?: (chunk: string) => void;
}

/** Runs `node <args>` (this process's node), collecting its output; `done` runs once it has ended. */
export function spawnNode(args: readonly string[], opts: NodeSpawnOptions, done?: () => void): SpawnedChild {
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env,
    ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
    ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
    cwd: opts.cwd,
  });
  const result = new Promise<ChildResult>((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      opts.onStdout?.(d);
    });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 60_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      done?.();
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done?.();
      resolve({ code, signal, stdout, stderr, timedOut });
    });
  });
  return { child, result };
}

/** runChild with extra environment variables. */
export function runChildWithEnv(scriptSource: string, args: readonly string[], opts: SpawnOptions): Promise<ChildResult> {
  return spawnScript(scriptSource, args, opts).result;
}

/** The last line of a child's stdout, parsed as JSON (children report results that way). */
export function lastJson<T>(r: ChildResult): T {
  const lines = r.stdout.trim().split('\n');
  const last = lines[lines.length - 1];
  if (!last) throw new Error(`child printed nothing (code ${r.code}, signal ${r.signal}); stderr:\n${r.stderr}`);
  try {
    return JSON.parse(last) as T;
  } catch {
    throw new Error(`child's last stdout line is not JSON: ${last.slice(0, 500)}\nstderr:\n${r.stderr}`);
  }
}

/** Creates a named pipe (mkfifo(1)). */
export async function makeFifo(fifoPath: string): Promise<void> {
  const r = await new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
    const p = spawn('mkfifo', ['-m', '0666', fifoPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code, stderr }));
  });
  if (r.code !== 0) throw new Error(`mkfifo ${fifoPath} failed: ${r.stderr}`);
}

const FIFO_READER = `
import * as fs from 'node:fs';
const [fifo, out, chunk, sleepMs, fastFlag, gateFile] = process.argv.slice(2);
const nap = new Int32Array(new SharedArrayBuffer(4));
const sleep = (ms) => Atomics.wait(nap, 0, 0, ms);
const fd = fs.openSync(fifo, 'r');            // blocks until the writer opens its end
const ofd = fs.openSync(out, 'w');
const buf = Buffer.allocUnsafe(Number(chunk));
if (gateFile) while (!fs.existsSync(gateFile)) sleep(5);
let total = 0;
let fast = false;
for (;;) {
  const n = fs.readSync(fd, buf, 0, buf.length, null);
  if (n === 0) break;                          // every writer closed its end
  fs.writeSync(ofd, buf, 0, n);
  total += n;
  if (!fast) {
    fast = fastFlag !== '-' && fs.existsSync(fastFlag);
    if (!fast) sleep(Number(sleepMs));
  }
}
fs.closeSync(ofd);
console.log(JSON.stringify({ total }));
`;

export interface FifoReaderOptions {
  /** Bytes per read (default 64 KiB). */
  chunkBytes?: number;
  /** Sleep after each read while slow (default 20 ms). */
  sleepMs?: number;
  /** Once this file exists the reader stops sleeping and drains at full speed. */
  fastFlag?: string;
  /** The reader opens the pipe but reads nothing until this file exists. */
  gateFile?: string;
  timeoutMs?: number;
}

/**
 * Starts a separate node process that opens `fifo` for reading and copies what arrives to `outFile`,
 * slowly (chunkBytes, then sleepMs) until `fastFlag` exists. Resolves when the writer side closes.
 * Start it before anything opens the pipe for writing (that open blocks until a reader is there).
 */
export function startFifoReader(fifo: string, outFile: string, opts: FifoReaderOptions = {}): Promise<ChildResult> {
  return runChild(
    FIFO_READER,
    [fifo, outFile, String(opts.chunkBytes ?? 64 * 1024), String(opts.sleepMs ?? 20), opts.fastFlag ?? '-', opts.gateFile ?? ''],
    { timeoutMs: opts.timeoutMs ?? 90_000 },
  );
}

/** Parsed lines of raw JSONL text; `torn` is an unterminated last line, if any. */
export function splitLines(text: string): { raw: string[]; torn: string | undefined } {
  if (text.length === 0) return { raw: [], torn: undefined };
  const parts = text.split('\n');
  const tail = parts.pop()!;
  return { raw: parts, torn: tail.length > 0 ? tail : undefined };
}

export interface TolerantSet {
  /** Existing files of the set, base first, numbered ones in order. */
  readonly files: { name: string; path: string; n: number; bytes: number }[];
  /** Whole lines, in order. */
  readonly raw: string[];
  /** Parsed whole lines (a line that is not JSON throws). */
  readonly lines: Line[];
  /** An unterminated last line of the last file, if any. */
  readonly torn: string | undefined;
  /** Descriptions of torn lines anywhere but at the very end of the set. */
  readonly problems: string[];
}

/** Reads a rotated set like readLines, but tolerates (and reports) a torn last line. */
export function readLinesTolerant(dir: string, base = BASE_NAME): TolerantSet {
  const found = segmentFiles(dir, base);
  const files: TolerantSet['files'] = [];
  const raw: string[] = [];
  const lines: Line[] = [];
  const problems: string[] = [];
  let torn: string | undefined;
  for (const { name, n } of found) {
    const p = path.join(dir, name);
    const text = fs.readFileSync(p, 'utf8');
    files.push({ name, path: p, n, bytes: Buffer.byteLength(text, 'utf8') });
    if (torn !== undefined) problems.push(`a torn line is followed by more data (in ${name})`);
    const split = splitLines(text);
    for (const r of split.raw) {
      raw.push(r);
      lines.push(JSON.parse(r) as Line);
    }
    torn = split.torn;
  }
  return { files, raw, lines, torn, problems };
}

export interface Coverage {
  /** One past the last index covered. */
  readonly next: number;
  /** Event (and event_rejected) lines. */
  readonly events: number;
  /** events_dropped marker lines. */
  readonly markers: number;
  /** Indexes covered by markers (sum of their counts). */
  readonly markedDropped: number;
  /** events_projected marker lines, and the indexes they cover. */
  readonly projectionMarkers: number;
  readonly markedProjected: number;
  /** Where the lines fail to cover 0.. exactly once, in order (empty when they do). */
  readonly problems: string[];
}

/**
 * Checks that the lines cover indexes from `first` exactly once and in order, an `events_dropped`
 * or `events_projected` marker counting for `count` indexes.
 */
export function coverage(lines: readonly Line[], first = 0): Coverage {
  let expected = first;
  let events = 0;
  let markers = 0;
  let markedDropped = 0;
  let projectionMarkers = 0;
  let markedProjected = 0;
  const problems: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (l.index !== expected && problems.length < 10) {
      problems.push(`line ${i}: index ${l.index}, expected ${expected} (${l.index > expected ? 'gap' : 'duplicate or out of order'})`);
    }
    if (l.type === 'events_dropped' || l.type === 'events_projected') {
      const count = l.count as number;
      if (!(Number.isInteger(count) && count > 0) && problems.length < 10) problems.push(`line ${i}: bad count ${String(count)}`);
      if (l.type === 'events_dropped') {
        markers++;
        markedDropped += count;
      } else {
        projectionMarkers++;
        markedProjected += count;
      }
      expected = l.index + count;
    } else {
      events++;
      expected = l.index + 1;
    }
  }
  return { next: expected, events, markers, markedDropped, projectionMarkers, markedProjected, problems };
}

/** The counters of `sink.stats()` the loss contract is about. */
export interface LossStats {
  readonly accepted: number;
  readonly written: number;
  readonly dropped: number;
  readonly pending: number;
  /** Left out by durable projection (absent: none). */
  readonly projected?: number;
}

/**
 * The loss contract (README "Guarantees"): `accepted = written + dropped + projected + pending`, and the set's
 * lines cover every index from `from` exactly once, in order, the `events_dropped` markers adding up
 * to `dropped` and the event lines to `written`. For a sink opened in truncate mode (indexes from
 * 0). `from` is where the set starts when the test itself removed the lines before it (all of them
 * written); `lines` is null for a sink whose output cannot be read back (/dev/full), where only the
 * identity can be checked. Returns the coverage for further checks.
 */
export function expectLossAccounted(stats: LossStats, lines: readonly Line[] | null, from = 0): Coverage | undefined {
  const { accepted, written, dropped, pending } = stats;
  const projected = stats.projected ?? 0;
  expect(accepted, `accepted = written + dropped + projected + pending (${written} + ${dropped} + ${projected} + ${pending})`).toBe(written + dropped + projected + pending);
  if (lines === null) return undefined;
  const cov = coverage(lines, from);
  expect(cov.problems, 'every index exactly once, in order (a marker covers `count`)').toEqual([]);
  expect(cov.markedDropped, 'the events_dropped markers add up to stats().dropped').toBe(dropped);
  expect(cov.markedProjected, 'the events_projected markers add up to stats().projected').toBe(projected);
  if (pending === 0) {
    expect(from + cov.events, 'every written event is in the set').toBe(written);
    expect(cov.next, 'the set ends with the last accepted index').toBe(accepted);
  } else {
    // Lines can be in the file a moment before the counters say so, never the other way round.
    expect(from + cov.events).toBeGreaterThanOrEqual(written);
  }
  return cov;
}

/** What a call throws or rejects with (undefined if it succeeds). */
export async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

/** The SinkError a call rejects with; fails the test if it resolves or rejects with something else. */
export async function sinkFailure(fn: () => unknown): Promise<SinkError> {
  const err = await failure(fn);
  expect(err).toBeInstanceOf(SinkError);
  return err as SinkError;
}
