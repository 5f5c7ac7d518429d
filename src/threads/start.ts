// Starts ringlog's own threads (the writer, the compression thread, the SQLite thread) the same way
// wherever the library runs: from source text embedded at build time, with nothing inherited that
// belongs to the application's start-up.
//
// Why from text: a worker started from a file path needs that file next to the code that starts it,
// which a bundler (one output file, run from anywhere) does not keep, and a CommonJS bundle has no
// import.meta.url to find it by. The text is one self-contained script (scripts/embed-workers.mjs).
//
// Why an empty execArgv and no NODE_OPTIONS: by default a worker inherits the process's execArgv and
// re-reads NODE_OPTIONS from its env, so `-r`/`--import` preloads (and those in NODE_OPTIONS) run
// again inside the thread — a preload that opens a sink would reopen, and truncate, its own log —
// and `--input-type`, `--eval`, `--watch` or `--test` make the thread refuse to start or behave as
// an entry point. What a writer could usefully inherit is process-wide anyway (V8 flags, the
// permission model), so it inherits nothing.

import { Worker, type ResourceLimits, type TransferListItem } from 'node:worker_threads';
import { COMPRESS_SOURCE, SQLITE_SOURCE, WRITER_SOURCE } from './sources.generated.js';

const SOURCES = { writer: WRITER_SOURCE, compress: COMPRESS_SOURCE, sqlite: SQLITE_SOURCE } as const;
export type ThreadName = keyof typeof SOURCES;

export interface ThreadOptions {
  readonly workerData: unknown;
  readonly transferList?: readonly TransferListItem[];
  readonly resourceLimits?: ResourceLimits | undefined;
  /** Off for the writer: segment fds it opens must outlive it (a successor keeps writing to them). */
  readonly trackUnmanagedFds?: boolean;
}

/** The environment a ringlog thread sees: the process's, without the preloads of NODE_OPTIONS. */
function threadEnv(): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...process.env };
  delete env.NODE_OPTIONS;
  return env;
}

/**
 * Starts thread `name`. Throws what `new Worker` throws (ERR_ACCESS_DENIED under the permission
 * model without --allow-worker, ERR_WORKER_INIT_FAILED when the process is out of threads): each
 * caller decides how it degrades.
 */
export function startThread(name: ThreadName, opts: ThreadOptions): Worker {
  return new Worker(SOURCES[name], {
    eval: true,
    execArgv: [],
    env: threadEnv(),
    workerData: opts.workerData,
    ...(opts.transferList ? { transferList: [...opts.transferList] } : {}),
    ...(opts.resourceLimits ? { resourceLimits: opts.resourceLimits } : {}),
    ...(opts.trackUnmanagedFds === undefined ? {} : { trackUnmanagedFds: opts.trackUnmanagedFds }),
  });
}
