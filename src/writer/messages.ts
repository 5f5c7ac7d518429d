// Messages between the caller's thread and the writer worker. Types only: the ring carries the
// events; these carry the rare things that do not fit in it.
import type { MessagePort } from 'node:worker_threads';
import type { FaultInfo } from '../errors.js';
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
