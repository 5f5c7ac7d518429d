// `ringlog topics`: the topics of an event log (any backend: a file directory, a SQLite database, a
// Redis server or cluster), one name per line; with --json, each with its latest id.

import type { Run } from './context.js';
import { logFailure, openLogForReading, type LogLocation } from './topic-source.js';

export interface TopicsOptions extends LogLocation {
  json?: boolean;
}

export async function topics(run: Run, opts: TopicsOptions): Promise<void> {
  const log = await openLogForReading(opts);
  try {
    const names = await log.topics();
    if (opts.json) {
      const listed: { topic: string; latest: number | null }[] = [];
      for (const topic of names) listed.push({ topic, latest: await log.latest(topic) });
      run.out.line(JSON.stringify(listed, null, 2));
    } else for (const name of names) run.out.line(name);
    await run.out.flush();
  } catch (err) {
    throw logFailure(err);
  } finally {
    await log.close().catch(() => undefined);
  }
}
