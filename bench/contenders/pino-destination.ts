// pino writing through pino.destination: sonic-boom on the caller's thread, asynchronous writes
// (sync: false), pino's documented way to log to a file without a worker thread.

import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { runContender } from '../harness.js';

// How often drain() checks whether sonic-boom has written everything: 1 ms is the timer's finest
// period and short against the ~1 ms one write of a burst takes.
const DRAIN_POLL_MS = 1;

/** The sonic-boom 4 fields drain() reads; they are internal, so the cast is confined to here. */
interface SonicBoomState {
  _len: number;
  _writing: boolean;
}

await runContender({
  name: 'pino-destination',
  writesFiles: true,
  async open(dir) {
    const dest = pino.destination({ dest: join(dir, 'events.jsonl'), sync: false });
    // Opening the file is setup: the other contenders also open before the clock starts.
    await once(dest, 'ready');
    const logger = pino(dest);
    const state = dest as unknown as SonicBoomState;
    return {
      log(event) {
        logger.info(event);
      },
      // sonic-boom's flush(cb) calls back at once when minLength is 0 (the default), even with a
      // write in flight, and flushSync() cannot run while one is in flight; so this waits for
      // its queue to be empty and no write outstanding. The harness counts the lines afterwards.
      async drain() {
        while (state._len > 0 || state._writing) await sleep(DRAIN_POLL_MS);
      },
      // end() writes what is queued and closes the file; 'close' is emitted once fs.close is done.
      async finish() {
        const closed = once(dest, 'close');
        dest.end();
        await closed;
      },
    };
  },
});
