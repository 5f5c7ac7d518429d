// openEventLog: picks a backend from options, falling back to RINGLOG_EVENT_LOG_* environment
// variables. Bad options throw synchronously; failures of the storage itself reject.

import path from 'node:path';
import { MemoryEventLog } from './memory.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_RETRY_TIMEOUT_MS, type RedisEventLogOptions } from './redis-options.js';
import type { BackendName, EventLog } from './types.js';

export interface EventLogOptions {
  /** Default: RINGLOG_EVENT_LOG_BACKEND, else 'memory'. */
  readonly backend?: BackendName;
  /** File backend directory (default: RINGLOG_EVENT_LOG_DIR). Also the SQLite default: <dir>/events.sqlite. */
  readonly dir?: string;
  /** SQLite database path (default: RINGLOG_EVENT_LOG_SQLITE_PATH, else <dir>/events.sqlite). */
  readonly sqlitePath?: string;
  /** Live events a subscriber may fall behind before it fails as lagged (default: RINGLOG_EVENT_LOG_QUEUE_DEPTH, else 1024). */
  readonly queueDepth?: number;
  /** Open for reading only: appends, acks and compaction reject with ERR_RINGLOG_EVENT_LOG_READ_ONLY (file and SQLite). */
  readonly readOnly?: boolean;
  /** SQLite: how long a statement waits for another connection's lock (default 5000 ms). */
  readonly busyTimeoutMs?: number;
  /** Redis: the server (or any node of the cluster), `redis://[user:password@]host:port[/db]` or `rediss://…` (default: RINGLOG_EVENT_LOG_REDIS_URL). */
  readonly url?: string;
  /** Redis: `url` is a node of a Redis Cluster (default: RINGLOG_EVENT_LOG_REDIS_CLUSTER, else false). */
  readonly cluster?: boolean;
  /** Redis: prefix of every key the log uses (default: RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX, else 'ringlog:'); no braces. */
  readonly keyPrefix?: string;
  /** Redis: how long opening waits for the server (default 5000 ms). */
  readonly connectTimeoutMs?: number;
  /** Redis: how long an append is retried over a lost connection before it fails (default 10000 ms). */
  readonly retryTimeoutMs?: number;
  /**
   * Tamper-evident topics: every record gets `prev_hash` and `record_hash` headers chaining it to
   * the one before (default: RINGLOG_EVENT_LOG_PROVENANCE, else false). Memory, file and SQLite.
   */
  readonly provenance?: boolean;
}

/**
 * 1024 live events per subscriber: enough to ride out a burst of an agent loop (hundreds of
 * events per turn) while bounding a stuck subscriber's memory to about a megabyte of small events.
 */
export const DEFAULT_QUEUE_DEPTH = 1024;
/** Queue depths above this are a typo rather than a plan: 16M events held per subscriber. */
const MAX_QUEUE_DEPTH = 1 << 24;
/** The busy timeout the SQLite documentation's examples use; WAL readers rarely wait at all. */
export const DEFAULT_BUSY_TIMEOUT_MS = 5000;

const BACKENDS: readonly BackendName[] = ['memory', 'file', 'sqlite', 'redis'];
/** The key prefix when none is given: the log's keys are then easy to tell apart from an application's. */
export const DEFAULT_KEY_PREFIX = 'ringlog:';

export interface ResolvedEventLogOptions {
  readonly backend: BackendName;
  readonly dir: string | undefined;
  readonly sqlitePath: string | undefined;
  readonly queueDepth: number;
  readonly readOnly: boolean;
  readonly busyTimeoutMs: number;
  readonly provenance: boolean;
  readonly redis: RedisEventLogOptions | undefined;
}

export function resolveEventLogOptions(options: EventLogOptions = {}, env: NodeJS.ProcessEnv = process.env): ResolvedEventLogOptions {
  if (options === null || typeof options !== 'object') throw new TypeError('ringlog: openEventLog options must be an object');
  const known = new Set(['backend', 'dir', 'sqlitePath', 'queueDepth', 'readOnly', 'busyTimeoutMs', 'url', 'cluster', 'keyPrefix', 'connectTimeoutMs', 'retryTimeoutMs', 'provenance']);
  for (const k of Object.keys(options)) if (!known.has(k)) throw new TypeError(`ringlog: unknown openEventLog option '${k}'`);

  const backendRaw = options.backend ?? nonEmpty(env.RINGLOG_EVENT_LOG_BACKEND) ?? 'memory';
  const from = options.backend !== undefined ? 'option backend' : 'RINGLOG_EVENT_LOG_BACKEND';
  if (!BACKENDS.includes(backendRaw as BackendName)) throw new RangeError(`ringlog: ${from} must be one of ${BACKENDS.join(', ')}, got ${JSON.stringify(backendRaw)}`);
  const backend = backendRaw as BackendName;

  const dir = pathOption('dir', options.dir, env.RINGLOG_EVENT_LOG_DIR);
  let sqlitePath = pathOption('sqlitePath', options.sqlitePath, env.RINGLOG_EVENT_LOG_SQLITE_PATH);
  if (sqlitePath === undefined && dir !== undefined) sqlitePath = path.join(dir, 'events.sqlite');

  let queueDepth = DEFAULT_QUEUE_DEPTH;
  if (options.queueDepth !== undefined) queueDepth = depth(options.queueDepth, 'option queueDepth');
  else {
    const raw = nonEmpty(env.RINGLOG_EVENT_LOG_QUEUE_DEPTH);
    if (raw !== undefined) {
      if (!/^\d+$/.test(raw.trim())) throw new RangeError(`ringlog: RINGLOG_EVENT_LOG_QUEUE_DEPTH must be a positive integer, got ${JSON.stringify(raw)}`);
      queueDepth = depth(Number(raw), 'RINGLOG_EVENT_LOG_QUEUE_DEPTH');
    }
  }

  if (options.readOnly !== undefined && typeof options.readOnly !== 'boolean') throw new TypeError('ringlog: option readOnly must be a boolean');
  const readOnly = options.readOnly ?? false;
  if (readOnly && (backend === 'memory' || backend === 'redis')) throw new RangeError(`ringlog: readOnly needs a file or sqlite backend (not ${backend})`);

  const busyTimeoutMs = millis('busyTimeoutMs', options.busyTimeoutMs, DEFAULT_BUSY_TIMEOUT_MS);
  const provenance = flag('provenance', options.provenance, env.RINGLOG_EVENT_LOG_PROVENANCE, 'RINGLOG_EVENT_LOG_PROVENANCE');
  const redisBase = redisOptions(options, env, backend === 'redis', queueDepth);
  const redis = redisBase === undefined ? undefined : { ...redisBase, provenance };

  if (backend === 'file' && dir === undefined) throw new TypeError("ringlog: the file backend needs a directory: pass the option 'dir' or set RINGLOG_EVENT_LOG_DIR");
  if (backend === 'sqlite' && sqlitePath === undefined) throw new TypeError("ringlog: the sqlite backend needs a database path: pass 'sqlitePath' (or 'dir') or set RINGLOG_EVENT_LOG_SQLITE_PATH (or RINGLOG_EVENT_LOG_DIR)");
  return { backend, dir, sqlitePath, queueDepth, readOnly, busyTimeoutMs, provenance, redis };
}

/** A boolean option, else its variable (true, false, 1 or 0), else false. */
function flag(name: string, value: unknown, envValue: string | undefined, envName: string): boolean {
  if (value !== undefined) {
    if (typeof value !== 'boolean') throw new TypeError(`ringlog: option ${name} must be a boolean, got ${typeof value}`);
    return value;
  }
  const raw = nonEmpty(envValue);
  if (raw === undefined) return false;
  const v = raw.trim().toLowerCase();
  if (!['1', '0', 'true', 'false'].includes(v)) throw new RangeError(`ringlog: ${envName} must be true, false, 1 or 0, got ${JSON.stringify(raw)}`);
  return v === '1' || v === 'true';
}

/** The Redis options, checked whatever the backend (a typo is a typo); required only for it. */
function redisOptions(options: EventLogOptions, env: NodeJS.ProcessEnv, needed: boolean, queueDepth: number): Omit<RedisEventLogOptions, 'provenance'> | undefined {
  let url: string | undefined;
  let from = 'option url';
  if (options.url !== undefined) {
    if (typeof options.url !== 'string') throw new TypeError(`ringlog: option url must be a string, got ${typeof options.url}`);
    url = options.url;
  } else {
    url = nonEmpty(env.RINGLOG_EVENT_LOG_REDIS_URL);
    from = 'RINGLOG_EVENT_LOG_REDIS_URL';
  }
  if (url !== undefined) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      // Reported below, with the value.
    }
    if (parsed === undefined || (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') {
      throw new RangeError(`ringlog: ${from} must be a redis:// or rediss:// URL with a host, got ${JSON.stringify(url.replace(/\/\/[^@/]*@/, '//***@'))}`);
    }
  }
  const cluster = flag('cluster', options.cluster, env.RINGLOG_EVENT_LOG_REDIS_CLUSTER, 'RINGLOG_EVENT_LOG_REDIS_CLUSTER');
  let keyPrefix = DEFAULT_KEY_PREFIX;
  let prefixFrom = 'option keyPrefix';
  if (options.keyPrefix !== undefined) {
    if (typeof options.keyPrefix !== 'string') throw new TypeError(`ringlog: option keyPrefix must be a string, got ${typeof options.keyPrefix}`);
    keyPrefix = options.keyPrefix;
  } else if (env.RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX !== undefined) {
    keyPrefix = env.RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX;
    prefixFrom = 'RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX';
  }
  // A brace in the prefix would make it the hash tag: every topic in one cluster slot.
  if (/[{}]/.test(keyPrefix)) throw new RangeError(`ringlog: ${prefixFrom} must not contain '{' or '}' (the topic is the key's hash tag), got ${JSON.stringify(keyPrefix)}`);
  const connectTimeoutMs = millis('connectTimeoutMs', options.connectTimeoutMs, DEFAULT_CONNECT_TIMEOUT_MS);
  const retryTimeoutMs = millis('retryTimeoutMs', options.retryTimeoutMs, DEFAULT_RETRY_TIMEOUT_MS);
  if (url === undefined) {
    if (needed) throw new TypeError("ringlog: the redis backend needs a server: pass the option 'url' or set RINGLOG_EVENT_LOG_REDIS_URL");
    return undefined;
  }
  return { url, cluster, keyPrefix, queueDepth, connectTimeoutMs, retryTimeoutMs };
}

function millis(name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new RangeError(`ringlog: option ${name} must be a non-negative integer, got ${String(value)}`);
  return value;
}

/**
 * Opens an event log. Options are checked synchronously (TypeError/RangeError); the promise
 * rejects with an EventLogError when the storage cannot be opened or the server reached
 * (ERR_RINGLOG_EVENT_LOG_IO), or better-sqlite3 / redis is not installed (ERR_RINGLOG_EVENT_LOG_UNAVAILABLE).
 */
export function openEventLog(options: EventLogOptions = {}): Promise<EventLog> {
  const o = resolveEventLogOptions(options);
  switch (o.backend) {
    case 'memory':
      return Promise.resolve(new MemoryEventLog(o.queueDepth, o.provenance));
    case 'file':
      return import('./file.js').then((m) => m.openFileEventLog(o.dir!, { queueDepth: o.queueDepth, readOnly: o.readOnly, provenance: o.provenance }));
    case 'sqlite':
      return import('./sqlite.js').then((m) => m.openSqliteEventLog(o.sqlitePath!, { queueDepth: o.queueDepth, readOnly: o.readOnly, busyTimeoutMs: o.busyTimeoutMs, provenance: o.provenance }));
    case 'redis':
      return import('./redis.js').then((m) => m.openRedisEventLog(o.redis!));
  }
}

/** An environment value, or undefined when unset or blank. */
export function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s.trim() === '' ? undefined : s;
}

function pathOption(name: string, value: unknown, envValue: string | undefined): string | undefined {
  if (value !== undefined) {
    if (typeof value !== 'string' || value.length === 0) throw new TypeError(`ringlog: option ${name} must be a non-empty string`);
    if (value.includes('\0')) throw new TypeError(`ringlog: option ${name} contains a NUL byte`);
    return path.resolve(value);
  }
  const e = nonEmpty(envValue);
  return e === undefined ? undefined : path.resolve(e);
}

function depth(n: number, from: string): number {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_QUEUE_DEPTH) throw new RangeError(`ringlog: ${from} must be an integer from 1 to ${MAX_QUEUE_DEPTH}, got ${String(n)}`);
  return n;
}
