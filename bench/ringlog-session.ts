// The ringlog side of the two ringlog contender rows: default options, and the same ending with
// flush({ fsync: true }), so the rows differ only in that.

import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type * as Ringlog from '../src/index.js';
import type { Session } from './harness.js';

// RINGLOG_LIB names another build's index.js (bench/versus-previous.ts measures the previous commit
// beside this one, each in its own process).
const { JsonlEventSink }: typeof Ringlog =
  process.env.RINGLOG_LIB === undefined ? await import('../src/index.js') : await import(pathToFileURL(process.env.RINGLOG_LIB).href);

export function ringlogSession(dir: string, fsyncAtEnd: boolean): Session {
  const sink = JsonlEventSink.open(join(dir, 'events.jsonl'));
  return {
    log(event) {
      sink.handleEvent(event);
    },
    // Resolves once the writer has written every event handed over so far; the sink stays open.
    // The paced phase is the same in both rows: no fsync between the phases.
    drain: () => sink.flush(),
    // flush() alone would already put every line in the file; close() is included because the
    // pino contender's end also includes shutting its worker down.
    async finish() {
      await sink.flush({ fsync: fsyncAtEnd });
      await sink.close();
      // A drop leaves a marker line in the file, so the line count alone could come out right by
      // accident; a benchmark that lost events must not report a throughput.
      const { dropped } = sink.stats();
      if (dropped !== 0) throw new Error(`ringlog dropped ${dropped} events`);
    },
    // Kept in the results: 'dropped' and 'ringHighWater' explain a failed line count or a slow run.
    detail: () => ({ ...sink.stats() }),
  };
}
