// Shared test helpers: temp dirs, reading a rotated event-log set, expected lines, child processes.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The compiled library, located from this file (test/ → ../dist/src/index.js), never hard-coded. */
export const RINGLOG_URL = new URL('../dist/src/index.js', import.meta.url);
/** The project's seeded corpus generator (compiled). */
export const CORPUS_URL = new URL('../dist/bench/corpus.js', import.meta.url);

export const BASE_NAME = 'event_log.jsonl';

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

/**
 * Reads a rotated set in order: the base file, then `<stem>-000001.<ext>`, `-000002`, … (sorted
 * numerically). Throws if a non-empty file does not end with a newline (a torn last line).
 */
export function readLines(dir: string, base = BASE_NAME): LogSet {
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
 * that of dist/bench/corpus.js. `args` arrive as process.argv.slice(2).
 */
export async function runChild(scriptSource: string, args: readonly string[] = [], opts: ChildOptions = {}): Promise<ChildResult> {
  const dir = tempDir('child');
  // Readable by an unprivileged child (mkdtemp makes 0700 dirs).
  fs.chmodSync(dir, 0o755);
  const file = path.join(dir, 'child.mjs');
  const source = scriptSource.replaceAll('%RINGLOG%', RINGLOG_URL.href).replaceAll('%CORPUS%', CORPUS_URL.href);
  fs.writeFileSync(file, source, { mode: 0o644 });
  try {
    return await new Promise<ChildResult>((resolve, reject) => {
      const child = spawn(process.execPath, [file, ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
        ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
        ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
        cwd: opts.cwd ?? dir,
      });
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, opts.timeoutMs ?? 60_000);
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, timedOut });
      });
    });
  } finally {
    removeDir(dir);
  }
}
