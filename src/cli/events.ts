// `ringlog events <topic>`: the events of an event-log topic, from any backend (a file directory, a
// SQLite database, a Redis server or cluster), one JSON object per line; with -f, then the live
// events as they are appended (by any process, on a Redis log by any host) until interrupted.
// The backend comes from the options, else from the RINGLOG_EVENT_LOG_* variables, as in
// openEventLog.

import { EventLogError } from '../event-log/errors.js';
import { openEventLog, type EventLogOptions } from '../event-log/open.js';
import { Topic } from '../event-log/topic.js';
import type { BackendName, EventLog } from '../event-log/types.js';
import { stopOnSignals, type Run } from './context.js';
import { CliError, EXIT_FAILURE, EXIT_USAGE } from './output.js';

export interface EventsOptions {
  from?: number;
  limit?: number;
  follow?: boolean;
  backend?: string;
  dir?: string;
  sqlitePath?: string;
  url?: string;
  cluster?: boolean;
  keyPrefix?: string;
}

/** Events per readRange call: a page, as subscriptions read history. */
const PAGE = 1000;

export async function events(run: Run, topicArg: string, opts: EventsOptions): Promise<void> {
  let topic: Topic;
  try {
    topic = new Topic(topicArg);
  } catch (err) {
    throw new CliError((err as Error).message.replace(/^ringlog: /, ''), EXIT_USAGE);
  }
  const options: { -readonly [K in keyof EventLogOptions]: EventLogOptions[K] } = {
    ...(opts.backend !== undefined ? { backend: opts.backend as BackendName } : {}),
    ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
    ...(opts.sqlitePath !== undefined ? { sqlitePath: opts.sqlitePath } : {}),
    ...(opts.url !== undefined ? { url: opts.url } : {}),
    ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}),
    ...(opts.keyPrefix !== undefined ? { keyPrefix: opts.keyPrefix } : {}),
  };
  // Reading only: a file or SQLite log is opened read-only, so this command can never change it.
  const backend = opts.backend ?? process.env.RINGLOG_EVENT_LOG_BACKEND?.trim();
  if (backend === 'file' || backend === 'sqlite') options.readOnly = true;
  let opening: Promise<EventLog>;
  try {
    opening = openEventLog(options);
  } catch (err) {
    // Bad options and bad environment values: usage, named by openEventLog's message.
    throw new CliError((err as Error).message.replace(/^ringlog: /, ''), EXIT_USAGE);
  }
  let log: EventLog;
  try {
    log = await opening;
  } catch (err) {
    throw failure(err);
  }
  const { out } = run;
  let printed = 0;
  const limit = opts.limit ?? Infinity;
  try {
    let from = opts.from ?? 0;
    if (!opts.follow) {
      while (printed < limit && !run.signal.aborted) {
        const page = await log.readRange(topic, from, Math.min(PAGE, limit - printed));
        if (page.length === 0) break;
        for (const e of page) out.line(JSON.stringify(e));
        printed += page.length;
        from = page[page.length - 1]!.id;
        if (out.full) await out.flush();
      }
      await out.flush();
      return;
    }
    const unhook = stopOnSignals(run);
    try {
      for await (const e of log.subscribe(topic, from, { signal: run.signal })) {
        out.line(JSON.stringify(e));
        if (++printed >= limit) break;
        // Someone is watching: each burst goes out as it arrives.
        if (out.full) await out.flush();
        else out.flushSoon();
      }
      await out.flush();
    } finally {
      unhook();
    }
  } catch (err) {
    throw failure(err);
  } finally {
    await log.close().catch(() => undefined);
  }
}

function failure(err: unknown): unknown {
  if (err instanceof EventLogError) return new CliError(err.message.replace(/^ringlog: /, ''), EXIT_FAILURE);
  return err;
}
