// pino with its stock worker-thread file transport: the usual way to keep log I/O off the caller.

import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { pino } from 'pino';
import { runContender } from '../harness.js';

// See drain() for why this wait exists and why 200 ms.
const DRAIN_SETTLE_MS = 200;

await runContender({
  name: 'pino-transport',
  writesFiles: true,
  async open(dir) {
    const transport = pino.transport({ target: 'pino/file', options: { destination: join(dir, 'events.jsonl') } });
    // Worker start-up is setup, not logging: the other contenders also open before the clock starts.
    await once(transport, 'ready');
    const logger = pino(transport);
    return {
      log(event) {
        logger.info(event);
      },
      // pino's flush(cb) (pino 10, thread-stream 4) waits for the worker to have read the
      // main-thread buffer, then asks the worker to flush its destination and calls back when the
      // worker answers. The destination is sonic-boom 4.2.1 with minLength 0, whose flush calls
      // back at once even while a write(2) is still in flight, so the callback alone does not mean
      // every line is in the file. The pause covers that last write: one burst is ~130 KB, which
      // pino writes in ~1.6 ms at its slowest measured rate (81 MB/s, bench/results), and 200 ms
      // is the brief's fallback wait, two orders of magnitude more. The harness counts the lines
      // afterwards, so a pause that proved too short would fail the run rather than skew it.
      async drain() {
        await new Promise<void>((resolve, reject) => logger.flush((err) => (err ? reject(err) : resolve())));
        await setTimeout(DRAIN_SETTLE_MS);
      },
      // end() hands the rest of the main-thread buffer to the worker and waits for it to drain;
      // 'close' follows once the worker's file stream has closed and the thread has exited, i.e.
      // once every line is in the file (thread-stream's end() and worker 'close' handler).
      // pino unref()s the worker once it is ready, so without ref() nothing would keep this
      // process alive until 'close'; pino's own exit hook does the same ref-then-end dance.
      async finish() {
        const closed = once(transport, 'close');
        // ref() exists at runtime (thread-stream 4) but is missing from its type declarations.
        (transport as unknown as { ref(): void }).ref();
        transport.end();
        await closed;
      },
    };
  },
});
