// Messages between the caller's thread and the writer worker. Types only: the ring carries the
// events; these carry the rare things that do not fit in it.
import type { MessagePort } from 'node:worker_threads';
import type { FaultInfo } from './errors.js';
import type { RedactSpec } from './redact.js';

/** workerData of the writer. */
export interface WriterInit {
  readonly sab: SharedArrayBuffer;
  /** The caller's interned keys, by id: records still in the ring may use any of them. */
  readonly keys: readonly string[];
  readonly basePath: string;
  readonly rotateBytes: number;
  /** The redaction policy (null: off); the writer compiles it, loading a custom module itself. */
  readonly redact: RedactSpec | null;
  /** Where the writer tells why it is dying (a WriterFatal), on a port of its own: the owner reads
   *  it synchronously (receiveMessageOnPort), also while it is blocked and cannot turn its loop. */
  readonly fatal: MessagePort;
}

/** The exception that is ending the writer, as it can cross threads. */
export interface WriterFatal {
  readonly message: string;
  readonly stack?: string;
}

export type ToWriter =
  /** The bytes of an EXTERNAL record (an event bigger than a quarter of the ring). */
  | { readonly type: 'external'; readonly id: number; readonly sab: SharedArrayBuffer };

export type FromWriter =
  | { readonly type: 'ready' }
  /** A persistent write fault; `lost` events will never reach the file. */
  | { readonly type: 'fault'; readonly fault: FaultInfo; readonly lost: number }
  /** A write succeeded again after faults. */
  | { readonly type: 'recovered' }
  /** The writer moved on to `segment`: segment - 1 and every earlier one are closed for good. */
  | { readonly type: 'rotated'; readonly segment: number };

/** A job of the janitor's compression thread (workers/compress.ts): gzip one closed segment. */
export interface CompressTask {
  /** The plain segment; it becomes `<source>.gz`. */
  readonly source: string;
  /** zlib level, 1 to 9. */
  readonly level: number;
}

/**
 * Owner → compression thread: one job at a time; the thread answers each with a CompressResult.
 * 'cancel' asks the job on `source`, if it is still running, to stop before its `.gz` takes its
 * final name (retention wants that segment gone).
 */
export type ToCompressor =
  | { readonly type: 'compress'; readonly task: CompressTask }
  | { readonly type: 'cancel'; readonly source: string };

export type CompressResult =
  | {
      readonly status: 'done';
      readonly bytesIn: number;
      readonly bytesOut: number;
      /** Wall-clock span of the job (Date.now()), to show it against the writer's progress. */
      readonly startedAt: number;
      readonly endedAt: number;
    }
  /** The plain segment was gone already (compressed or removed by someone else): nothing to do. */
  | { readonly status: 'missing' }
  /** The plain segment is untouched; whatever temporary file the job made is removed. */
  | { readonly status: 'failed'; readonly fault: FaultInfo }
  /** Stopped by a 'cancel' before the rename: as 'failed', but asked for. */
  | { readonly status: 'cancelled' }
  /** Owner side only: no compression thread can be started here (the permission model). */
  | { readonly status: 'unavailable'; readonly fault: FaultInfo };
