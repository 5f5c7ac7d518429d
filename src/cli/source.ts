// Where a command reads from: a rotated set on disk (`<base>`, or a directory holding
// `event_log.jsonl`), one NDJSON stream on stdin (`-`, or no argument when stdin is not a
// terminal), or a topic of an event log (`--topic`, see topic-source.ts).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { listSegments, readRecords, readStream } from '../reader/index.js';
import type { RawRecord, ReadOptions, SegmentInfo } from '../reader/index.js';
import type { EventLog } from '../event-log/types.js';
import { CliError, EXIT_USAGE } from './output.js';
import { hasLogOptions, openLogForReading, readTopic, topicArg, type LogLocation } from './topic-source.js';

/** The base file name a sink writes by default (README, Quick start), looked for inside a directory argument. */
export const DEFAULT_BASE_NAME = 'event_log.jsonl';

export interface SetSource {
  readonly kind: 'set';
  readonly base: string;
  readonly segments: SegmentInfo[];
}

export interface StdinSource {
  readonly kind: 'stdin';
  readonly stream: NodeJS.ReadableStream;
}

export interface TopicSource {
  readonly kind: 'topic';
  readonly topic: string;
  readonly log: EventLog;
}

export type Source = SetSource | StdinSource | TopicSource;

export function sourceLabel(src: Source): string {
  return src.kind === 'set' ? src.base : src.kind === 'topic' ? `topic ${src.topic}` : '-';
}

/** What a command was given to read: a `[base]` argument, or `--topic` and the log's location. */
export interface SourceArgs extends LogLocation {
  topic?: string;
}

/**
 * The source of a command that reads a set, stdin or a topic. Run `use` on it, then close
 * what was opened (a topic's log), however `use` ends.
 */
export async function withSource<T>(arg: string | undefined, o: SourceArgs, use: (src: Source) => Promise<T>): Promise<T> {
  if (o.topic === undefined) {
    if (hasLogOptions(o)) throw new CliError('--backend, --dir, --sqlite-path, --url, --cluster and --key-prefix locate an event log: give --topic too', EXIT_USAGE);
    return use(await openSource(arg));
  }
  if (arg !== undefined) throw new CliError(`give either <base> (${arg}) or --topic, not both`, EXIT_USAGE);
  const topic = topicArg(o.topic);
  const log = await openLogForReading(o);
  try {
    return await use({ kind: 'topic', topic, log });
  } finally {
    await log.close().catch(() => undefined);
  }
}

/**
 * Resolves the `<base>` argument. `-` is stdin; so is no argument when stdin is not a terminal
 * (`producer | ringlog stats`). A directory stands for the default base file inside it.
 */
export async function openSource(arg: string | undefined, opts: { stdin: boolean } = { stdin: true }): Promise<Source> {
  if (arg === undefined || arg === '-') {
    if (!opts.stdin) throw new CliError('missing <base>: this command reads a set on disk, not stdin', EXIT_USAGE);
    if (arg === undefined && process.stdin.isTTY) throw new CliError('missing <base> (the base file of a set, or - for stdin)', EXIT_USAGE);
    return { kind: 'stdin', stream: process.stdin };
  }
  const base = await resolveBase(arg);
  const segments = await listSegments(base);
  if (segments.length === 0) throw new CliError(`${arg}: no such event log`);
  return { kind: 'set', base, segments };
}

/** `<base>`, or `<dir>/event_log.jsonl` when the argument is a directory. */
export async function resolveBase(arg: string): Promise<string> {
  try {
    if ((await fs.promises.stat(arg)).isDirectory()) return path.join(arg, DEFAULT_BASE_NAME);
  } catch {
    // Not there as such: the base file may be gone while numbered segments remain.
  }
  return arg;
}

export function readSource(src: Source, options: ReadOptions): AsyncIterableIterator<RawRecord> {
  switch (src.kind) {
    case 'set':
      return readRecords(src.base, options);
    case 'stdin':
      return readStream(src.stream, options);
    case 'topic':
      return readTopic(src.log, src.topic, options);
  }
}
