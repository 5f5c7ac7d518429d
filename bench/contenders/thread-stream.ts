// thread-stream used directly: the SharedArrayBuffer hand-off pino's transports are built on,
// without pino. The caller serialises the reference envelope and writes the line to the stream;
// a worker (thread-stream-file-worker.ts) writes it to the file with an fs write stream.

import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ThreadStream from 'thread-stream';
import { referenceLine, runContender } from '../harness.js';
import type { FileWorkerData } from './thread-stream-file-worker.js';

await runContender({
  name: 'thread-stream',
  writesFiles: true,
  async open(dir) {
    const workerData: FileWorkerData = { dest: join(dir, 'events.jsonl') };
    const stream = new ThreadStream({
      filename: fileURLToPath(new URL('./thread-stream-file-worker.js', import.meta.url)),
      workerData,
      // The default: writes are handed to the worker from a setImmediate, not inline.
      sync: false,
    });
    // Worker start-up is setup, as for the other contenders.
    await once(stream, 'ready');
    let index = 0;
    return {
      log(event) {
        stream.write(referenceLine(index++, event) + '\n');
      },
      // thread-stream 4's flush(cb) waits for the worker to have taken the buffer and then for
      // the worker's destination to drain (an fs write stream has no flush, so its pending
      // 'drain'). The harness counts the lines afterwards, so an early callback fails the run.
      async drain() {
        await new Promise<void>((resolve, reject) => stream.flush((err?: Error | null) => (err ? reject(err) : resolve())));
      },
      // end() hands over the rest and ends the worker's stream; 'close' follows once the worker
      // has closed the file and exited.
      async finish() {
        const closed = once(stream, 'close');
        stream.end();
        await closed;
      },
    };
  },
});
