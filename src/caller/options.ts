// Option validation for JsonlEventSink.open(): every option is checked up front, and a bad one
// fails with a TypeError (wrong type) or RangeError (right type, bad value) naming the option.

import type { SinkError } from '../errors.js';
import { resolveRedactSpec, type RedactOption, type RedactSpec } from '../writer/redact.js';
import { DEFAULT_DURABLE_PROJECTION } from '../writer/projector.js';

export type OverloadPolicy = 'buffer' | 'block' | 'drop';

export interface JsonlEventSinkOptions {
  /** Rotate before a line would make the running file larger than this (default 100 MiB). */
  rotateBytes?: number;
  /** 'truncate' (default) starts a fresh session at index 0; 'append' resumes an existing set. */
  mode?: 'truncate' | 'append';
  /** Size of the shared ring's data region, a power of two (default 4 MiB). */
  ringBytes?: number;
  /**
   * What handleEvent does when the writer cannot keep up and the ring is full:
   * 'buffer' (default) queues in a capped overflow, then blocks up to blockTimeoutMs, then drops;
   * 'block' waits for ring space at once (up to blockTimeoutMs, then drops);
   * 'drop' drops at once. Dropped events are counted and leave a marker line.
   */
  overload?: OverloadPolicy;
  /** Cap of the 'buffer' policy's overflow queue, in bytes of encoded events (default 64 MiB). */
  maxBufferBytes?: number;
  /** Longest handleEvent may block under 'buffer' (when the cap is hit) or 'block' (default 5000). */
  blockTimeoutMs?: number;
  /** Nesting depth past which a value is written as "[MaxDepth]" (default 1000). */
  maxDepth?: number;
  /** Deadline of the automatic flush at process exit, in milliseconds (default 10000). */
  exitTimeoutMs?: number;
  /** Hears each asynchronous failure once (also delivered by the next flush()). */
  onError?: (err: SinkError) => void;
  /** Heap and stack limits of the writer thread (worker_threads resourceLimits); a writer that
   *  exceeds them dies and is replaced like any other dead writer. */
  writerResourceLimits?: WriterResourceLimits;
  /**
   * Redaction applied by the writer thread before a line is written (README, "Redaction"): true or
   * absent, the default policy; false, none; or a RedactConfig. `custom` must be a module (absolute
   * path or file: URL) default-exporting `(event) => event`: the writer thread cannot run a closure.
   */
  redact?: RedactOption;
  /**
   * Retention: the set keeps at most this many segments, the current one included; the oldest
   * closed segments beyond it are removed (plain or compressed). Absent: no limit.
   */
  maxFiles?: number;
  /** 'gzip': closed segments are compressed to `<segment>.gz` in a background thread. Default false. */
  compress?: false | 'gzip';
  /** zlib level of `compress: 'gzip'`, 1 (fastest, the default) to 9 (smallest). */
  compressLevel?: number;
  /**
   * Durable projection (README, "Durable projection"): the writer thread leaves out streaming
   * tool-call snapshots that a later line repeats, keeping the first and one per doubling of the
   * arguments' size; an `events_projected` marker stands for the indexes left out. Default true.
   */
  durableProjection?: boolean;
}

export interface WriterResourceLimits {
  maxOldGenerationSizeMb?: number;
  maxYoungGenerationSizeMb?: number;
  stackSizeMb?: number;
}

export interface ResolvedOptions {
  readonly rotateBytes: number;
  readonly mode: 'truncate' | 'append';
  readonly ringBytes: number;
  readonly overload: OverloadPolicy;
  readonly maxBufferBytes: number;
  readonly blockTimeoutMs: number;
  readonly maxDepth: number;
  readonly exitTimeoutMs: number;
  readonly onError: ((err: SinkError) => void) | undefined;
  readonly writerResourceLimits: WriterResourceLimits | undefined;
  /** The redaction policy as plain data for the writer thread; null: off. */
  readonly redact: RedactSpec | null;
  /** Infinity when unlimited. */
  readonly maxFiles: number;
  readonly compress: false | 'gzip';
  readonly compressLevel: number;
  readonly durableProjection: boolean;
}

/** The reference's ROTATE_BYTES: 100 MiB. */
export const ROTATE_BYTES = 100 * 1024 * 1024;
/** 4 MiB holds ~3,000 events of the reference corpus: several milliseconds of a saturated writer,
 *  which is what the ring must absorb while a write is in flight. */
export const DEFAULT_RING_BYTES = 4 * 1024 * 1024;
/** 64 KiB floor: below it most tool results would take the slower external-record path. */
export const MIN_RING_BYTES = 64 * 1024;
/** 1 GiB ceiling: free-running u32 positions need the ring to be under 2^31 bytes. */
export const MAX_RING_BYTES = 1024 * 1024 * 1024;
export const DEFAULT_MAX_BUFFER_BYTES = 64 * 1024 * 1024;
/** Five seconds: long enough to ride out a slow disk, short enough to notice a dead one. */
export const DEFAULT_BLOCK_TIMEOUT_MS = 5000;
/** Deep enough for any real event, shallow enough to stay far from the JS stack limit. */
export const DEFAULT_MAX_DEPTH = 1000;
export const DEFAULT_EXIT_TIMEOUT_MS = 10_000;
/**
 * Level 1, not zlib's 6: compression runs alongside the writer for as long as the sink writes, so
 * its CPU cost is what matters. On the large corpus (bench/results/compress.json, "levels") level 1
 * compresses ~6x faster than level 6 (~200 MB/s against ~32 MB/s on the 2-core VM) to 25% of the
 * input against 18.5%; level 9 is slower still for no gain over 6. At 6 a sink writing 26 MB/s (20,000
 * events/s) would keep most of a core busy compressing; at 1, an eighth of one.
 */
export const DEFAULT_COMPRESS_LEVEL = 1;

const KNOWN = new Set([
  'rotateBytes', 'mode', 'ringBytes', 'overload', 'maxBufferBytes', 'blockTimeoutMs', 'maxDepth', 'exitTimeoutMs', 'onError',
  'writerResourceLimits', 'redact', 'maxFiles', 'compress', 'compressLevel', 'durableProjection',
]);
const LIMITS = ['maxOldGenerationSizeMb', 'maxYoungGenerationSizeMb', 'stackSizeMb'];

function resourceLimits(v: unknown): WriterResourceLimits {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new TypeError(`ringlog: option "writerResourceLimits" must be an object, got ${describe(v)}`);
  }
  const out: Record<string, number> = {};
  for (const [k, n] of Object.entries(v)) {
    const field = `ringlog: option "writerResourceLimits": field "${k}"`;
    if (!LIMITS.includes(k)) throw new TypeError(`${field} is unknown (known: ${LIMITS.join(', ')})`);
    if (typeof n !== 'number') throw new TypeError(`${field} must be a number, got ${describe(n)}`);
    if (!(n > 0) || !Number.isFinite(n)) throw new RangeError(`${field} must be a positive number, got ${n}`);
    out[k] = n;
  }
  return out;
}

function integer(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number') throw new TypeError(`ringlog: option "${name}" must be a number, got ${describe(v)}`);
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`ringlog: option "${name}" must be an integer from ${min} to ${max}, got ${v}`);
  }
  return v;
}

function oneOf<T extends string>(name: string, v: unknown, allowed: readonly T[]): T {
  if (typeof v !== 'string') throw new TypeError(`ringlog: option "${name}" must be a string, got ${describe(v)}`);
  if (!allowed.includes(v as T)) {
    throw new RangeError(`ringlog: option "${name}" must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got '${v}'`);
  }
  return v as T;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v;
}

export function resolveOptions(opts: unknown): ResolvedOptions {
  if (opts === undefined) opts = {};
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) {
    throw new TypeError(`ringlog: options must be an object, got ${describe(opts)}`);
  }
  const o = opts as Record<string, unknown>;
  for (const key of Object.keys(o)) {
    if (!KNOWN.has(key)) throw new TypeError(`ringlog: unknown option "${key}"`);
  }
  const ringBytes = o.ringBytes === undefined ? DEFAULT_RING_BYTES : integer('ringBytes', o.ringBytes, MIN_RING_BYTES, MAX_RING_BYTES);
  if ((ringBytes & (ringBytes - 1)) !== 0) {
    throw new RangeError(`ringlog: option "ringBytes" must be a power of two, got ${ringBytes}`);
  }
  if (o.compress !== undefined && o.compress !== false) {
    if (typeof o.compress !== 'string') {
      throw new TypeError(`ringlog: option "compress" must be false or 'gzip', got ${describe(o.compress)}`);
    }
    oneOf('compress', o.compress, ['gzip'] as const);
  }
  if (o.compressLevel !== undefined && o.compress !== 'gzip') {
    throw new TypeError(`ringlog: option "compressLevel" needs compress: 'gzip'`);
  }
  if (o.durableProjection !== undefined && typeof o.durableProjection !== 'boolean') {
    throw new TypeError(`ringlog: option "durableProjection" must be a boolean, got ${describe(o.durableProjection)}`);
  }
  if (o.onError !== undefined && typeof o.onError !== 'function') {
    throw new TypeError(`ringlog: option "onError" must be a function, got ${describe(o.onError)}`);
  }
  return {
    rotateBytes: o.rotateBytes === undefined ? ROTATE_BYTES : integer('rotateBytes', o.rotateBytes, 1, Number.MAX_SAFE_INTEGER),
    mode: o.mode === undefined ? 'truncate' : oneOf('mode', o.mode, ['truncate', 'append'] as const),
    ringBytes,
    overload: o.overload === undefined ? 'buffer' : oneOf('overload', o.overload, ['buffer', 'block', 'drop'] as const),
    maxBufferBytes:
      o.maxBufferBytes === undefined ? DEFAULT_MAX_BUFFER_BYTES : integer('maxBufferBytes', o.maxBufferBytes, 0, Number.MAX_SAFE_INTEGER),
    blockTimeoutMs:
      o.blockTimeoutMs === undefined ? DEFAULT_BLOCK_TIMEOUT_MS : integer('blockTimeoutMs', o.blockTimeoutMs, 0, 2 ** 31 - 1),
    maxDepth: o.maxDepth === undefined ? DEFAULT_MAX_DEPTH : integer('maxDepth', o.maxDepth, 1, 10_000),
    exitTimeoutMs: o.exitTimeoutMs === undefined ? DEFAULT_EXIT_TIMEOUT_MS : integer('exitTimeoutMs', o.exitTimeoutMs, 0, 2 ** 31 - 1),
    onError: o.onError as ((err: SinkError) => void) | undefined,
    writerResourceLimits: o.writerResourceLimits === undefined ? undefined : resourceLimits(o.writerResourceLimits),
    // Secure by default: absent means the default policy.
    redact: resolveRedactSpec(o.redact),
    maxFiles: o.maxFiles === undefined ? Infinity : integer('maxFiles', o.maxFiles, 1, Number.MAX_SAFE_INTEGER),
    compress: o.compress === 'gzip' ? 'gzip' : false,
    compressLevel: o.compressLevel === undefined ? DEFAULT_COMPRESS_LEVEL : integer('compressLevel', o.compressLevel, 1, 9),
    durableProjection: o.durableProjection ?? DEFAULT_DURABLE_PROJECTION,
  };
}
