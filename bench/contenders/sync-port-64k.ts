// The synchronous port with a write buffer: lines accumulate in memory and go out in one write(2)
// once 64 KiB are pending, and at the end. The obvious fix for the per-line system call, kept
// synchronous so that the only difference from sync-port is the batching.

import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { referenceLine, runContender } from '../harness.js';

// 64 KiB: the default pipe buffer and a common stdio buffer size; past it a bigger write saves
// little, since the system call's fixed cost is already spread over ~50 large-corpus lines.
const FLUSH_AT = 64 * 1024;

await runContender({
  name: 'sync-port-64k',
  writesFiles: true,
  async open(dir) {
    const fd = openSync(join(dir, 'events.jsonl'), 'w');
    let index = 0;
    let pending = '';
    // Counted in UTF-16 units, which never exceed the UTF-8 bytes they encode to, so the
    // threshold is reached no later than 64 KiB of bytes would be, with no per-line byteLength.
    const flush = () => {
      if (pending.length === 0) return;
      writeSync(fd, pending);
      pending = '';
    };
    // A buffered writer that lost its tail at exit would not be a fair port; this is the usual
    // guard such a buffer gets (the exit phase measures it).
    process.on('exit', flush);
    return {
      log(event) {
        pending += referenceLine(index++, event) + '\n';
        if (pending.length >= FLUSH_AT) flush();
      },
      async drain() {
        flush();
      },
      async finish() {
        flush();
        closeSync(fd);
        process.off('exit', flush);
      },
    };
  },
});
