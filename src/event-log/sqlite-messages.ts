// Messages between the SQLite event log (src/event-log/sqlite.ts, the caller's thread) and its
// worker (sqlite-entry.ts), which owns the better-sqlite3 connection. Types only: nothing here
// exists at run time, so importing it never loads better-sqlite3.
//
// Errors cannot cross threads as classes, so the worker sends a plain { code, message }; the caller
// turns it into an EventLogError.

import type { CompactResult } from './types.js';

/** workerData of the worker. */
export interface SqliteWorkerInit {
  readonly path: string;
  readonly readOnly: boolean;
  readonly busyTimeoutMs: number;
  /** Chain records (provenance.ts): prev_hash and record_hash computed here, in the append's transaction. */
  readonly provenance: boolean;
  /** Absolute path of better-sqlite3's entry, resolved by the owner (the thread has no location of its own). */
  readonly betterSqlite3: string;
}

/** One event of an append batch, as validated and snapshotted by prepareEvent(). */
export interface AppendItem {
  readonly topic: string;
  readonly kind: string;
  readonly payloadJson: string;
  readonly headersJson: string;
  readonly occurredAtMs: number;
}

/** One stored row; the JSON columns stay text until the caller parses them. */
export interface StoredRow {
  readonly id: number;
  readonly kind: string;
  readonly payload: string;
  readonly headers: string;
  readonly occurredAtMs: number;
}

/** A failure inside the worker: `code` is SQLite's (e.g. SQLITE_BUSY) or Node's (e.g. ENOENT). */
export interface WorkerFailure {
  readonly code: string;
  readonly message: string;
}

/** Caller → worker. Handled strictly in the order sent; every request gets exactly one reply. */
export type SqliteRequest =
  | { readonly type: 'append'; readonly reqId: number; readonly events: readonly AppendItem[] }
  | { readonly type: 'read'; readonly reqId: number; readonly topic: string; readonly after: number; readonly limit: number }
  | { readonly type: 'ack'; readonly reqId: number; readonly topic: string; readonly consumer: string; readonly upTo: number }
  | { readonly type: 'cursor'; readonly reqId: number; readonly topic: string; readonly consumer: string }
  | { readonly type: 'latest'; readonly reqId: number; readonly topic: string }
  | { readonly type: 'topics'; readonly reqId: number }
  /** One event, unless one of its topic already holds `value` under `header`. */
  | { readonly type: 'idempotent'; readonly reqId: number; readonly header: string; readonly value: string; readonly event: AppendItem }
  | { readonly type: 'compact'; readonly reqId: number; readonly topic: string; readonly before: number }
  | { readonly type: 'flush'; readonly reqId: number }
  /** Closes the database; the worker then lets its thread end. */
  | { readonly type: 'close'; readonly reqId: number };

export type SqliteOp = SqliteRequest['type'];

/** What a successful request produces, by operation. */
export type SqliteResult =
  /** `headers`: with provenance, each event's headers as stored (its chain headers added). */
  | { readonly type: 'append'; readonly ids: number[]; readonly headers?: string[] }
  | { readonly type: 'read'; readonly rows: StoredRow[] }
  | { readonly type: 'ack' }
  | { readonly type: 'cursor'; readonly id: number | null }
  | { readonly type: 'latest'; readonly latest: number | null }
  | { readonly type: 'topics'; readonly topics: string[] }
  | { readonly type: 'idempotent'; readonly id: number; readonly inserted: boolean; readonly headers?: string }
  | { readonly type: 'compact'; readonly result: CompactResult }
  | { readonly type: 'flush' }
  | { readonly type: 'close' };

/** Worker → caller. */
export type SqliteReply =
  /** The database is open and its schema is usable. */
  | { readonly type: 'ready' }
  /** Opening failed; `unavailable` when better-sqlite3 itself could not be loaded. The worker ends. */
  | { readonly type: 'openFailed'; readonly unavailable: boolean; readonly error: WorkerFailure }
  | { readonly type: 'ok'; readonly reqId: number; readonly result: SqliteResult }
  | { readonly type: 'failed'; readonly reqId: number; readonly error: WorkerFailure; readonly corrupt?: boolean };
