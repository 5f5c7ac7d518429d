// The event log's public shapes (types only): a general append-only log of topics, from which
// replay engines, live subscribers and consumers with cursors read. Four backends implement
// EventLog: memory, file (JSONL per topic), SQLite and Redis Streams.

import type { Topic } from './topic.js';

export type BackendName = 'memory' | 'file' | 'sqlite' | 'redis';

/** A topic given as a validated Topic or as a string (validated on use). */
export type TopicLike = Topic | string;

/** What append() takes. Missing fields get defaults: payload null, headers {}, occurred_at_ms Date.now(). */
export interface NewLogEvent {
  readonly kind: string;
  /** Any JSON value (snapshotted at the call: later mutation of the object does not matter). */
  readonly payload?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly occurred_at_ms?: number;
}

/** A record as stored and read back. */
export interface LogEvent {
  /** Per topic, from 1, gap-free; never reused, even after compaction or a restart. */
  readonly id: number;
  readonly kind: string;
  readonly payload: unknown;
  readonly headers: Record<string, string>;
  readonly occurred_at_ms: number;
}

export interface CompactResult {
  /** Events removed by this call. */
  readonly removed: number;
  /** Events left in the topic. */
  readonly remaining: number;
  /** The topic's latest id (unchanged by compaction), null when nothing was ever appended. */
  readonly latest: number | null;
}

export interface EventLogDescription {
  readonly backend: BackendName;
  /** Directory (file), database path (SQLite), server URL without its password (Redis), null (memory). */
  readonly location: string | null;
  /** Bytes on disk (file: topic and cursor files; SQLite: database, WAL and shared-memory files); memory: bytes of stored JSON; Redis: server memory of the topics this instance appended to (MEMORY USAGE). */
  readonly sizeBytes: number;
  readonly queueDepth: number;
  readonly readOnly: boolean;
  /** Redis: the server (version, standalone or cluster, its persistence settings). */
  readonly server?: { readonly version: string; readonly mode: 'standalone' | 'cluster'; readonly appendonly: boolean; readonly appendfsync: string };
  /** Redis: what a resolved flush() guarantees on this server, in words. */
  readonly durability?: string;
}

/** What appendIdempotent did: the id of the event that holds the value, and whether this call appended it. */
export interface IdempotentAppend {
  readonly id: number;
  readonly inserted: boolean;
}

export interface SubscribeOptions {
  /** Ends the iteration (the pending next() resolves done). */
  readonly signal?: AbortSignal;
}

export interface EventLog {
  readonly backend: BackendName;
  /** Appends; resolves with the new id once the event is readable through this log. */
  append(topic: TopicLike, event: NewLogEvent): Promise<number>;
  /**
   * Appends `event` with `headers[header] = value` unless an event of the topic already holds that
   * value under that header (appended by any process, by append or appendIdempotent): then nothing
   * is appended and that event's id comes back with `inserted: false`. An agent host retries an
   * append after a crash this way without duplicating it. Events removed by compaction no longer
   * count. `header`: 1 to 128 of [A-Za-z0-9_.:-].
   */
  appendIdempotent(topic: TopicLike, header: string, value: string, event: NewLogEvent): Promise<IdempotentAppend>;
  /** Resolves when every earlier append is stored durably (file: fdatasync; SQLite: committed, then checkpointed or the WAL fsynced; Redis: acknowledged, durable as the server's appendfsync says: see describe().durability). */
  flush(): Promise<void>;
  /** Up to `limit` events with id strictly greater than `from` (0 or null: from the start), in id order. */
  readRange(topic: TopicLike, from: number | null | undefined, limit: number): Promise<LogEvent[]>;
  /**
   * History after `from`, then live events as this log instance appends them, with no gap and no
   * duplicate at the seam. A subscriber that falls more than `queueDepth` live events behind fails
   * with EventLogError code ERR_RINGLOG_EVENT_LOG_LAGGED carrying `lastSeenId`.
   */
  subscribe(topic: TopicLike, from?: number | null, options?: SubscribeOptions): AsyncIterableIterator<LogEvent>;
  /** Moves `consumer`'s cursor forward to `upTo` (a lower value leaves it where it is). */
  ack(topic: TopicLike, consumer: string, upTo: number): Promise<void>;
  /** The consumer's acknowledged id, null when it never acked. */
  consumerCursor(topic: TopicLike, consumer: string): Promise<number | null>;
  /** The last id ever appended to the topic, null when none. */
  latest(topic: TopicLike): Promise<number | null>;
  /** The topics anything was ever appended to (also those compacted empty), sorted by name. */
  topics(): Promise<string[]>;
  /** Removes events with id ≤ before, as the reference runtime does. */
  compact(topic: TopicLike, before: number): Promise<CompactResult>;
  describe(): Promise<EventLogDescription>;
  /** Flushes, then releases files and threads. Later calls reject with ERR_RINGLOG_EVENT_LOG_CLOSED. */
  close(): Promise<void>;
}
