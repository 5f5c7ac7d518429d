// The compression thread's protocol (owner: compressor.ts; thread: compress-entry.ts). Types only.

import type { FaultInfo } from '../errors.js';

/** A job of the janitor's compression thread (compress-entry.ts): gzip one closed segment. */
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
      readonly type: 'done';
      readonly bytesIn: number;
      readonly bytesOut: number;
      /** Wall-clock span of the job (Date.now()), to show it against the writer's progress. */
      readonly startedAt: number;
      readonly endedAt: number;
    }
  /** The plain segment was gone already (compressed or removed by someone else): nothing to do. */
  | { readonly type: 'missing' }
  /** The plain segment is untouched; whatever temporary file the job made is removed. */
  | { readonly type: 'failed'; readonly fault: FaultInfo }
  /** Stopped by a 'cancel' before the rename: as 'failed', but asked for. */
  | { readonly type: 'cancelled' }
  /** Owner side only: no compression thread can be started here (the permission model). */
  | { readonly type: 'unavailable'; readonly fault: FaultInfo };
