// An event-log topic as something `cat`, `tail` and `stats` read, like a set on disk: the log is
// opened from the command's options (else the RINGLOG_EVENT_LOG_* variables, as openEventLog does),
// read-only where the backend has such a mode, and each stored event becomes one record whose text
// is the event as JSON (`{"id":..,"kind":..,"payload":..,"headers":..,"occurred_at_ms":..}`), its
// index the id, its type the kind and its time occurred_at_ms.

import type { Command } from 'commander';
import { EventLogError } from '../event-log/errors.js';
import { nonEmpty, openEventLog, type EventLogOptions } from '../event-log/open.js';
import { Topic } from '../event-log/topic.js';
import type { BackendName, EventLog, LogEvent } from '../event-log/types.js';
import type { RawRecord, ReadOptions } from '../reader/index.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE } from './output.js';

/** The options that locate an event log, shared by every command that reads one. */
export interface LogLocation {
  backend?: string;
  dir?: string;
  sqlitePath?: string;
  url?: string;
  cluster?: boolean;
  keyPrefix?: string;
}

/** Events per readRange call: a page, as subscriptions read history. */
export const PAGE = 1000;

/** Adds the event log's location options to a command. */
export function addLogOptions(cmd: Command): Command {
  return cmd
    .option('--backend <B>', 'the event log: file, sqlite or redis (default: RINGLOG_EVENT_LOG_BACKEND)')
    .option('--dir <D>', "the file backend's directory (default: RINGLOG_EVENT_LOG_DIR)")
    .option('--sqlite-path <P>', 'the SQLite database (default: RINGLOG_EVENT_LOG_SQLITE_PATH, else <dir>/events.sqlite)')
    .option('--url <U>', 'the Redis server, redis://host:port (default: RINGLOG_EVENT_LOG_REDIS_URL)')
    .option('--cluster', 'the Redis server is a node of a cluster (default: RINGLOG_EVENT_LOG_REDIS_CLUSTER)')
    .option('--key-prefix <P>', "the Redis keys' prefix (default: RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX, else ringlog:)");
}

/** Whether any location option was given (it only means something with --topic, or to `topics`). */
export function hasLogOptions(o: LogLocation): boolean {
  return [o.backend, o.dir, o.sqlitePath, o.url, o.cluster, o.keyPrefix].some((v) => v !== undefined);
}

/** A topic argument, checked: a bad name is a usage error with the Topic's own message. */
export function topicArg(name: string): string {
  try {
    return new Topic(name).name;
  } catch (err) {
    throw new CliError(stripPrefix(err), EXIT_USAGE);
  }
}

/** Opens the log for reading. Bad options are usage errors (2); a log that cannot be opened, failures (1). */
export async function openLogForReading(o: LogLocation): Promise<EventLog> {
  const options: { -readonly [K in keyof EventLogOptions]: EventLogOptions[K] } = {
    // Reading needs no chain (RINGLOG_EVENT_LOG_PROVENANCE is for the appending process).
    provenance: false,
    ...(o.backend !== undefined ? { backend: o.backend as BackendName } : {}),
    ...(o.dir !== undefined ? { dir: o.dir } : {}),
    ...(o.sqlitePath !== undefined ? { sqlitePath: o.sqlitePath } : {}),
    ...(o.url !== undefined ? { url: o.url } : {}),
    ...(o.cluster !== undefined ? { cluster: o.cluster } : {}),
    ...(o.keyPrefix !== undefined ? { keyPrefix: o.keyPrefix } : {}),
  };
  // Without a backend named, the location given says which: --url a Redis server, --sqlite-path a
  // database, --dir a directory of topic files.
  const backend = o.backend ?? nonEmpty(process.env.RINGLOG_EVENT_LOG_BACKEND) ?? (o.url !== undefined ? 'redis' : o.sqlitePath !== undefined ? 'sqlite' : o.dir !== undefined ? 'file' : undefined);
  if (backend === undefined) {
    throw new CliError('which event log? give --backend (file, sqlite or redis), a location (--dir, --sqlite-path, --url) or set RINGLOG_EVENT_LOG_BACKEND', EXIT_USAGE);
  }
  // The memory backend lives inside one process: another process can only ever find it empty.
  if (backend === 'memory') throw new CliError('the memory backend cannot be read from another process: give file, sqlite or redis', EXIT_USAGE);
  // Set only when inferred here, so a bad value is named where it came from (option or variable).
  if (options.backend === undefined && nonEmpty(process.env.RINGLOG_EVENT_LOG_BACKEND) === undefined) options.backend = backend as BackendName;
  // A file or SQLite log opened read-only: reading can never change it (no lock, no file made).
  if (backend === 'file' || backend === 'sqlite') options.readOnly = true;
  let opening: Promise<EventLog>;
  try {
    opening = openEventLog(options);
  } catch (err) {
    // Bad options and bad environment values, named by openEventLog's message.
    throw new CliError(stripPrefix(err), EXIT_USAGE);
  }
  try {
    return await opening;
  } catch (err) {
    throw logFailure(err);
  }
}

/** A failure of the log while reading, as the command reports it. */
export function logFailure(err: unknown): unknown {
  return err instanceof EventLogError ? new CliError(stripPrefix(err), EXIT_FAILURE) : err;
}

/** The record a stored event stands as. */
export function topicRecord(topic: string, e: LogEvent, line: number): RawRecord {
  const text = JSON.stringify(e);
  return { index: e.id, emittedAtMs: e.occurred_at_ms, type: e.kind, text, bytes: Buffer.byteLength(text) + 1, file: `topic ${topic}`, line, covers: 1 };
}

/**
 * The topic's events in id order, from `fromIndex` to `toIndex`, of `types` when given. Ids are
 * gap-free by the log's contract and compaction only removes a prefix, so there is nothing to
 * check on the way: no issue is ever reported.
 */
export async function* readTopic(log: EventLog, topic: string, options: ReadOptions): AsyncIterableIterator<RawRecord> {
  const types = options.types !== undefined && options.types.length > 0 ? new Set(options.types) : null;
  const to = options.toIndex ?? Infinity;
  let after = Math.max(0, (options.fromIndex ?? 0) - 1);
  let line = 0;
  while (!options.signal?.aborted) {
    let page: LogEvent[];
    try {
      page = await log.readRange(topic, after, PAGE);
    } catch (err) {
      throw logFailure(err);
    }
    for (const e of page) {
      if (e.id > to) return;
      line++;
      if (types === null || types.has(e.kind)) yield topicRecord(topic, e, line);
    }
    if (page.length < PAGE) return;
    after = page[page.length - 1]!.id;
  }
}

function stripPrefix(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/^ringlog: /, '');
}
