// The SQLite backend, caller's side. Every better-sqlite3 call runs in a dedicated worker thread
// (sqlite-entry.ts): this side validates and snapshots arguments synchronously, queues appends
// into batches, posts requests in call order and settles promises from the replies. Nothing here
// loads better-sqlite3; open.ts imports this module only when the sqlite backend is chosen.

import { promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import type { Worker } from 'node:worker_threads';
import { moduleBase } from '../threads/module-base.js';
import { startThread } from '../threads/start.js';
import { closedError, EventLogError, EventLogErrorCode } from './errors.js';
import { LiveHub } from './live.js';
import { checkUnchained } from './provenance.js';
import { APPEND_PREPARED, checkConsumer, checkFrom, checkId, checkLimit, prepareEvent, prepareIdempotent, toLogEvent, type PreparedAppender, type PreparedEvent } from './record.js';
import type { AppendItem, SqliteOp, SqliteReply, SqliteRequest, SqliteResult, SqliteWorkerInit, StoredRow, WorkerFailure } from './sqlite-messages.js';
import { topicName } from './topic.js';
import type { CompactResult, EventLog, EventLogDescription, IdempotentAppend, LogEvent, NewLogEvent, SubscribeOptions, TopicLike } from './types.js';

/**
 * An append batch is sent early once it holds this many events, even while the previous batch is
 * still in the worker: it bounds one transaction's write-lock hold (other processes wait on it) and
 * the size of one message, while 1024 small events still commit in a few milliseconds (measured:
 * about 3 µs per event, caller's side included).
 */
const MAX_BATCH_EVENTS = 1024;
/**
 * ... or this much JSON text (UTF-16 code units): a few large payloads should not turn one batch
 * into a copy of hundreds of megabytes between threads. 4 Mi units is a few milliseconds of copying
 * and inserting, and still batches thousands of typical (sub-kilobyte) events.
 */
const MAX_BATCH_CHARS = 4 * 1024 * 1024;

const INSTALL_HINT = 'npm install better-sqlite3';

export interface SqliteEventLogOptions {
  readonly queueDepth: number;
  readonly readOnly: boolean;
  readonly busyTimeoutMs: number;
  /** Chain every record to the one before (provenance.ts); the worker does it, in the append's transaction. */
  readonly provenance?: boolean;
}

/**
 * Opens (creating it unless read-only) the database at `dbPath`. Rejects with
 * ERR_RINGLOG_EVENT_LOG_UNAVAILABLE when better-sqlite3 is not installed or does not load, and with
 * ERR_RINGLOG_EVENT_LOG_IO when the database cannot be opened.
 */
export async function openSqliteEventLog(dbPath: string, opts: SqliteEventLogOptions): Promise<EventLog> {
  // Resolved here, from where ringlog (or the bundle holding it) lives, and handed to the thread: it
  // only looks up a path; the native module is loaded in the thread alone.
  let entry: string;
  try {
    entry = createRequire(moduleBase()).resolve('better-sqlite3');
  } catch (err) {
    throw new EventLogError(EventLogErrorCode.UNAVAILABLE, `ringlog: the sqlite backend needs the optional dependency better-sqlite3: ${INSTALL_HINT}`, { cause: err });
  }
  let log: SqliteEventLog;
  try {
    log = new SqliteEventLog(dbPath, opts, entry);
  } catch (err) {
    // No thread can be started here (the permission model without --allow-worker): the backend
    // cannot run, and nothing was touched.
    throw new EventLogError(EventLogErrorCode.UNAVAILABLE, `ringlog: the sqlite backend cannot start its thread: ${(err as Error).message}`, { cause: err });
  }
  await log.opened;
  return log;
}

interface Pending {
  readonly type: SqliteOp;
  readonly topic: string | undefined;
  resolve(result: SqliteResult): void;
  reject(err: EventLogError): void;
}

interface QueuedAppend {
  readonly topic: string;
  readonly event: PreparedEvent;
  resolve(id: number): void;
  reject(err: EventLogError): void;
}

/** A request before it gets its id (Omit applied to each member of the union). */
type RequestBody = SqliteRequest extends infer R ? (R extends SqliteRequest ? Omit<R, 'reqId'> : never) : never;
type ResultOf<B extends RequestBody> = Extract<SqliteResult, { type: B['type'] }>;

export class SqliteEventLog implements EventLog, PreparedAppender {
  readonly backend = 'sqlite' as const;
  /** Settles once the worker has opened the database (or failed to). */
  readonly opened: Promise<void>;
  private readonly hub: LiveHub;
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private readonly pending = new Map<number, Pending>();
  private nextReqId = 1;
  private queue: QueuedAppend[] = [];
  private queuedChars = 0;
  private appendsInFlight = 0;
  private sendScheduled = false;
  private referenced = true;
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Set when the worker is gone for good: every later call rejects with it. */
  private dead: EventLogError | undefined;
  private workerError: unknown;

  constructor(
    private readonly dbPath: string,
    private readonly opts: SqliteEventLogOptions,
    betterSqlite3: string,
  ) {
    this.hub = new LiveHub(opts.queueDepth);
    const init: SqliteWorkerInit = { path: dbPath, readOnly: opts.readOnly, busyTimeoutMs: opts.busyTimeoutMs, provenance: opts.provenance ?? false, betterSqlite3 };
    this.worker = startThread('sqlite', { workerData: init });
    let openSettled = false;
    let openResolve!: () => void;
    let openReject!: (err: EventLogError) => void;
    this.opened = new Promise<void>((resolve, reject) => {
      openResolve = resolve;
      openReject = reject;
    });
    this.worker.on('message', (msg: SqliteReply) => {
      if (msg.type === 'ready') {
        openSettled = true;
        openResolve();
        this.updateRef();
      } else if (msg.type === 'openFailed') {
        openSettled = true;
        this.closed = true;
        openReject(this.openError(msg.unavailable, msg.error));
      } else this.onReply(msg);
    });
    this.worker.on('error', (err) => {
      // Reported through 'exit'; kept for its message, and so it is not an uncaught error.
      this.workerError = err;
    });
    this.exited = new Promise<void>((resolve) => {
      this.worker.once('exit', (code) => {
        const why = this.workerError !== undefined ? `: ${(this.workerError as Error).message ?? String(this.workerError)}` : ` with exit code ${code}`;
        const err = new EventLogError(EventLogErrorCode.IO, `ringlog: the sqlite worker of ${dbPath} stopped${why}`, { cause: this.workerError });
        if (!openSettled) {
          openSettled = true;
          openReject(err);
        }
        this.dead ??= err;
        this.failEverything(err);
        resolve();
      });
    });
    // Referenced until the open settles, so an `await openEventLog()` always gets its answer.
    this.worker.ref();
  }

  append(topic: TopicLike, event: NewLogEvent): Promise<number> {
    const name = topicName(topic);
    return this[APPEND_PREPARED](name, prepareEvent(event));
  }

  [APPEND_PREPARED](topic: TopicLike, prepared: PreparedEvent): Promise<number> {
    const name = topicName(topic);
    const refused = this.refuseWrite('append', name);
    if (refused !== undefined) return Promise.reject(refused);
    if (this.opts.provenance === true) checkUnchained(prepared);
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ topic: name, event: prepared, resolve, reject });
      this.queuedChars += prepared.payloadJson.length + prepared.headersJson.length + prepared.kind.length;
      this.updateRef();
      if (this.queue.length >= MAX_BATCH_EVENTS || this.queuedChars >= MAX_BATCH_CHARS) this.sendQueuedAppends();
      else if (this.appendsInFlight === 0 && !this.sendScheduled) {
        // Appends made in the same turn of the event loop share one batch (one transaction).
        this.sendScheduled = true;
        queueMicrotask(() => {
          this.sendScheduled = false;
          if (this.appendsInFlight === 0) this.sendQueuedAppends();
        });
      }
      // Otherwise the batch in the worker sends this one when it completes (group commit).
    });
  }

  // Misuse throws synchronously (like every backend); everything after the argument checks,
  // including "closed" and "read-only", is a rejection.

  flush(): Promise<void> {
    const refused = this.unusable();
    if (refused !== undefined) return Promise.reject(refused);
    if (this.opts.readOnly) return Promise.resolve();
    return this.request({ type: 'flush' }, undefined).then(() => undefined);
  }

  readRange(topic: TopicLike, from: number | null | undefined, limit: number): Promise<LogEvent[]> {
    const name = topicName(topic);
    const after = checkFrom(from);
    checkLimit(limit);
    return this.read(name, after, limit);
  }

  subscribe(topic: TopicLike, from?: number | null, options: SubscribeOptions = {}): AsyncIterableIterator<LogEvent> {
    const name = topicName(topic);
    const after = checkFrom(from);
    return this.hub.subscribe(name, after, (t, f, l) => this.read(t, f, l), options.signal);
  }

  ack(topic: TopicLike, consumer: string, upTo: number): Promise<void> {
    const name = topicName(topic);
    checkConsumer(consumer);
    checkId('upTo', upTo);
    const refused = this.refuseWrite('ack', name);
    if (refused !== undefined) return Promise.reject(refused);
    return this.request({ type: 'ack', topic: name, consumer, upTo }, name).then(() => undefined);
  }

  consumerCursor(topic: TopicLike, consumer: string): Promise<number | null> {
    const name = topicName(topic);
    checkConsumer(consumer);
    const refused = this.unusable();
    if (refused !== undefined) return Promise.reject(refused);
    return this.request({ type: 'cursor', topic: name, consumer }, name).then((r) => r.id);
  }

  latest(topic: TopicLike): Promise<number | null> {
    const name = topicName(topic);
    const refused = this.unusable();
    if (refused !== undefined) return Promise.reject(refused);
    return this.request({ type: 'latest', topic: name }, name).then((r) => r.latest);
  }

  appendIdempotent(topic: TopicLike, header: string, value: string, event: NewLogEvent): Promise<IdempotentAppend> {
    const name = topicName(topic);
    const prepared = prepareIdempotent(header, value, event);
    const refused = this.refuseWrite('append to', name);
    if (refused !== undefined) return Promise.reject(refused);
    if (this.opts.provenance === true) checkUnchained(prepared);
    const item = { topic: name, kind: prepared.kind, payloadJson: prepared.payloadJson, headersJson: prepared.headersJson, occurredAtMs: prepared.occurredAtMs };
    // After the appends queued before it, as every request: ids stay in call order.
    return this.request({ type: 'idempotent', header, value, event: item }, name).then(({ id, inserted, headers }) => {
      if (inserted && this.hub.wants(name)) this.hub.publish(name, [toLogEvent(id, headers === undefined ? prepared : { ...prepared, headersJson: headers })]);
      return { id, inserted };
    });
  }

  topics(): Promise<string[]> {
    const refused = this.unusable();
    if (refused !== undefined) return Promise.reject(refused);
    return this.request({ type: 'topics' }, undefined).then((r) => r.topics);
  }

  compact(topic: TopicLike, before: number): Promise<CompactResult> {
    const name = topicName(topic);
    checkId('before', before);
    const refused = this.refuseWrite('compact', name);
    if (refused !== undefined) return Promise.reject(refused);
    return this.request({ type: 'compact', topic: name, before }, name).then((r) => r.result);
  }

  async describe(): Promise<EventLogDescription> {
    // Stat calls go to libuv's thread pool, not the worker: describe() works even after close().
    let sizeBytes = 0;
    for (const suffix of ['', '-wal', '-shm']) {
      try {
        sizeBytes += (await fsp.stat(this.dbPath + suffix)).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new EventLogError(EventLogErrorCode.IO, `ringlog: cannot stat ${this.dbPath + suffix}: ${(err as Error).message}`, { cause: err });
        }
      }
    }
    return { backend: this.backend, location: this.dbPath, sizeBytes, queueDepth: this.opts.queueDepth, readOnly: this.opts.readOnly };
  }

  /**
   * Flushes, closes the database in the worker and waits for the thread to end. Rejects (after
   * releasing everything) when that final flush failed, since earlier appends may then not be durable.
   */
  close(): Promise<void> {
    this.closing ??= this.shutDown();
    return this.closing;
  }

  private async shutDown(): Promise<void> {
    this.closed = true;
    let failure: unknown;
    if (this.dead === undefined) {
      if (!this.opts.readOnly) {
        try {
          await this.request({ type: 'flush' }, undefined);
        } catch (err) {
          failure = err;
        }
      }
      try {
        await this.request({ type: 'close' }, undefined);
      } catch (err) {
        failure ??= err;
      }
    }
    await this.exited;
    this.hub.endAll();
    if (failure !== undefined) throw failure;
  }

  private read(topic: string, after: number, limit: number): Promise<LogEvent[]> {
    const refused = this.unusable();
    if (refused !== undefined) return Promise.reject(refused);
    return this.request({ type: 'read', topic, after, limit }, topic).then(({ rows }) => rows.map((r) => this.toEvent(topic, r)));
  }

  private toEvent(topic: string, r: StoredRow): LogEvent {
    let payload: unknown;
    let headers: Record<string, string>;
    try {
      payload = JSON.parse(r.payload);
      headers = JSON.parse(r.headers) as Record<string, string>;
    } catch (err) {
      throw new EventLogError(EventLogErrorCode.CORRUPT, `ringlog: event ${r.id} of topic ${topic} in ${this.dbPath} holds invalid JSON: ${(err as Error).message}`, { topic, cause: err });
    }
    return { id: r.id, kind: r.kind, payload, headers, occurred_at_ms: r.occurredAtMs };
  }

  /** Why the log can take no request at all, if it cannot. */
  private unusable(): EventLogError | undefined {
    if (this.closed) return closedError(this.backend);
    return this.dead;
  }

  private refuseWrite(what: string, topic: string): EventLogError | undefined {
    const refused = this.unusable();
    if (refused !== undefined) return refused;
    if (this.opts.readOnly) {
      return new EventLogError(EventLogErrorCode.READ_ONLY, `ringlog: cannot ${what} (topic ${topic}): the sqlite event log ${this.dbPath} was opened read-only (readOnly: true)`, { topic });
    }
    return undefined;
  }

  /** Posts a request after any queued appends, so the worker sees operations in call order. */
  private request<B extends RequestBody>(body: B, topic: string | undefined): Promise<ResultOf<B>> {
    this.sendQueuedAppends();
    return this.post(body, topic);
  }

  private post<B extends RequestBody>(body: B, topic: string | undefined): Promise<ResultOf<B>> {
    if (this.dead !== undefined) return Promise.reject(this.dead);
    const reqId = this.nextReqId++;
    const promise = new Promise<ResultOf<B>>((resolve, reject) => {
      this.pending.set(reqId, { type: body.type, topic, resolve: resolve as (r: SqliteResult) => void, reject });
    });
    this.updateRef();
    this.worker.postMessage({ ...body, reqId } as SqliteRequest);
    return promise;
  }

  private sendQueuedAppends(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    this.queue = [];
    this.queuedChars = 0;
    const events: AppendItem[] = batch.map(({ topic, event }) => ({ topic, kind: event.kind, payloadJson: event.payloadJson, headersJson: event.headersJson, occurredAtMs: event.occurredAtMs }));
    this.appendsInFlight++;
    this.post({ type: 'append', events }, batch.length === 1 ? batch[0]!.topic : undefined).then(
      ({ ids, headers }) => {
        this.appendsInFlight--;
        const live = new Map<string, LogEvent[]>();
        for (let i = 0; i < batch.length; i++) {
          const q = batch[i]!;
          const id = ids[i]!;
          q.resolve(id);
          // Parsing the event back is only worth it for a live subscriber.
          if (!this.hub.wants(q.topic)) continue;
          let list = live.get(q.topic);
          if (list === undefined) live.set(q.topic, (list = []));
          list.push(toLogEvent(id, headers === undefined ? q.event : { ...q.event, headersJson: headers[i]! }));
        }
        // Only now: the transaction has committed, so readRange() sees these events.
        for (const [topic, events] of live) this.hub.publish(topic, events);
        this.afterBatch();
      },
      (err: EventLogError) => {
        this.appendsInFlight--;
        for (const q of batch) q.reject(err);
        this.afterBatch();
      },
    );
    this.updateRef();
  }

  private afterBatch(): void {
    if (this.appendsInFlight === 0) this.sendQueuedAppends();
    this.updateRef();
  }

  private onReply(msg: Extract<SqliteReply, { type: 'ok' | 'failed' }>): void {
    const p = this.pending.get(msg.reqId);
    if (p === undefined) return;
    this.pending.delete(msg.reqId);
    if (msg.type === 'ok') p.resolve(msg.result);
    else {
      const where = p.topic === undefined ? this.dbPath : `topic ${p.topic} of ${this.dbPath}`;
      p.reject(new EventLogError(EventLogErrorCode.IO, `ringlog: sqlite ${p.type} failed on ${where}: ${msg.error.code}: ${msg.error.message}`, { ...(p.topic === undefined ? {} : { topic: p.topic }), cause: workerCause(msg.error) }));
    }
    this.updateRef();
  }

  private failEverything(err: EventLogError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    const queued = this.queue;
    this.queue = [];
    this.queuedChars = 0;
    for (const p of pending) p.reject(err);
    for (const q of queued) q.reject(err);
  }

  /**
   * The worker is referenced only while requests are outstanding: a process that forgets close()
   * can still exit, yet no promise it awaits is left unsettled by that (an unreferenced worker
   * would let the process exit under a pending append). While closing it stays referenced until
   * it has ended.
   */
  private updateRef(): void {
    const busy = this.pending.size > 0 || this.queue.length > 0 || (this.closing !== undefined && this.dead === undefined);
    if (busy === this.referenced) return;
    this.referenced = busy;
    if (busy) this.worker.ref();
    else this.worker.unref();
  }

  private openError(unavailable: boolean, error: WorkerFailure): EventLogError {
    if (unavailable) {
      return new EventLogError(
        EventLogErrorCode.UNAVAILABLE,
        `ringlog: the sqlite backend needs the optional dependency better-sqlite3, which did not load (${error.code}: ${error.message}): ${INSTALL_HINT} (after a Node upgrade: npm rebuild better-sqlite3)`,
        { cause: workerCause(error) },
      );
    }
    return new EventLogError(EventLogErrorCode.IO, `ringlog: cannot open the sqlite event log ${this.dbPath}: ${error.code}: ${error.message}`, { cause: workerCause(error) });
  }
}

function workerCause(error: WorkerFailure): Error {
  return Object.assign(new Error(error.message), { code: error.code });
}
