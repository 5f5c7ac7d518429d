// The exit phase (`--phase exit`, its own child): log EXIT_EVENTS as fast as possible, then call
// process.exit() at once, with most of them still queued. The parent times the exit and counts
// what reached the file (runExitChild in lib.ts).

import type { AgentEventLike } from '../demo/corpus.js';
import { EXIT_MARK } from './lib.js';

// The brief's figure: enough events that every asynchronous logger still holds a backlog at the
// exit call (~130 MB of the large corpus, ~18 MB of the small one).
export const EXIT_EVENTS = 100_000;

export function exitPhase(log: (event: AgentEventLike, poolIndex: number) => void, pool: readonly AgentEventLike[]): never {
  for (let i = 0, j = 0; i < EXIT_EVENTS; i++) {
    log(pool[j]!, j);
    if (++j === pool.length) j = 0;
  }
  // Writes to a pipe are synchronous on Linux, so the stamp is out before exit hooks run.
  process.stderr.write(`${EXIT_MARK}${performance.timeOrigin + performance.now()}\n`);
  process.exit(0);
}
