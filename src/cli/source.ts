// Where a command reads from: a rotated set on disk (`<base>`, or a directory holding
// `event_log.jsonl`), or one NDJSON stream on stdin (`-`, or no argument when stdin is not a
// terminal).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { listSegments, readRecords, readStream } from '../reader/index.js';
import type { RawRecord, ReadOptions, SegmentInfo } from '../reader/index.js';
import { CliError, EXIT_USAGE } from './output.js';

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

export type Source = SetSource | StdinSource;

export function sourceLabel(src: Source): string {
  return src.kind === 'set' ? src.base : '-';
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
  return src.kind === 'set' ? readRecords(src.base, options) : readStream(src.stream, options);
}
