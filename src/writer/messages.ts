// Messages between the caller's thread and the writer worker. Types only: the ring carries the
// events; these carry the rare things that do not fit in it.
import type { MessagePort } from 'node:worker_threads';
import type { FaultInfo } from '../errors.js';
import type { RedactSpec } from './redact.js';

/** workerData of a writer thread. */
export interface WriterInit {
  /** The thread's own slots (ring/slots.ts, Svc), shared with every sink it serves. */
  readonly svc: SharedArrayBuffer;
  /** Where the writer tells why it is dying (a WriterFatal), on a port of its own: the owner reads
   *  it synchronously (receiveMessageOnPort), also while it is blocked and cannot turn its loop. */
  readonly fatal: MessagePort;
  /** Started from the main thread, with trackUnmanagedFds: false: Node does not track what this
   *  thread opens (src/threads/descriptors.ts). From a worker thread it does, whatever the option. */
  readonly untracked: boolean;
}

/** A sink for the writer to serve (sent again to a replacement thread after a death). */
export interface Attach {
  readonly type: 'attach';
  /** The sink's id, unique in the process: every message about it carries it. */
  readonly sink: number;
  readonly sab: SharedArrayBuffer;
  /** The sink's interned keys, by id: records still in the ring may use any of them. */
  readonly keys: readonly string[];
  readonly basePath: string;
  readonly rotateBytes: number;
  /** The redaction policy (null: off); the writer compiles it, loading a custom module itself. */
  readonly redact: RedactSpec | null;
  /** Durable projection of streaming tool-call snapshots (src/writer/projector.ts). */
  readonly durableProjection: boolean;
}

/** The exception that is ending the writer, as it can cross threads. */
export interface WriterFatal {
  readonly message: string;
  readonly stack?: string;
}

export type ToWriter =
  | Attach
  /** The bytes of an EXTERNAL record of `sink` (an event bigger than a quarter of its ring). */
  | { readonly type: 'external'; readonly sink: number; readonly id: number; readonly sab: SharedArrayBuffer }
  /** No sink is left for this thread: it ends once the last one has been let go of. */
  | { readonly type: 'stop' };

export type FromWriter =
  /** A persistent write fault; `lost` events will never reach the file. */
  | { readonly type: 'fault'; readonly sink: number; readonly fault: FaultInfo; readonly lost: number }
  /** A write succeeded again after faults. */
  | { readonly type: 'recovered'; readonly sink: number }
  /** The writer moved on to `segment`: segment - 1 and every earlier one are closed for good. */
  | { readonly type: 'rotated'; readonly sink: number; readonly segment: number }
  /** The sink's final drain (close() set STOP) is done: the writer has let go of it. */
  | { readonly type: 'detached'; readonly sink: number }
  /** The writer cannot serve this sink (its redaction module will not load in the thread). */
  | { readonly type: 'attachFailed'; readonly sink: number; readonly error: WriterFatal };
