// A line-for-line synchronous port of the Rust reference: stamp, serialise, write(2) per event.
// The caller pays for the system call every time; this is what ringlog is meant to beat.

import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { referenceLine, runContender } from '../harness.js';

await runContender({
  name: 'sync-port',
  writesFiles: true,
  async open(dir) {
    const fd = openSync(join(dir, 'events.jsonl'), 'w');
    let index = 0;
    return {
      log(event) {
        writeSync(fd, referenceLine(index++, event) + '\n');
      },
      // Every write returned before log() did: the lines are already in the file.
      async drain() {},
      // Every write already returned, so the lines are in the file; closing is all that is left.
      async finish() {
        closeSync(fd);
      },
    };
  },
});
