// The announcement a sink opened in a worker thread sends the main thread (types only), so that the
// main thread can write its ring if the worker is terminated before it could (src/caller/adopt.ts).

import type { RedactSpec } from '../writer/redact.js';

export type ToMain =
  | {
  readonly type: 'opened';
  /** Its entry in the table of worker-opened sinks (src/ring/worker-rings.ts). */
  readonly entry: number;
  /** The entry's generation: an entry freed and taken again has a new one. */
  readonly generation: number;
  readonly sab: SharedArrayBuffer;
  /** The slots of the worker's writer thread, to tell whether it is still there. */
  readonly svc: SharedArrayBuffer;
  readonly basePath: string;
  readonly rotateBytes: number;
  readonly redact: RedactSpec | null;
  /** The path's lock and its token: the main thread writes the ring only while the lock is still
   *  this sink's (a later sink on the path must not get an earlier session's lines). */
  readonly lockPath: string;
  readonly lockToken: string;
}
  /** The sink was written by its own thread (closed, or its thread exited): forget it. */
  | { readonly type: 'closed'; readonly entry: number; readonly generation: number };
