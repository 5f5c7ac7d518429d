// Floor baseline: what it costs just to move an event's bytes into shared memory, with nothing to
// serialise. Every pool event is encoded once, up front; a call only copies its bytes into a
// SharedArrayBuffer ring (no reader, no stamping). No logger that serialises can go below this.

import { referenceLine, runContender } from '../harness.js';

// The size of ringlog's default ring, so the copy touches as much memory as ringlog's does.
const RING_BYTES = 4 * 1024 * 1024;

await runContender({
  name: 'copy-floor',
  writesFiles: false,
  async open(_dir, pool) {
    const encoded = pool.map((event, i) => Buffer.from(referenceLine(i, event) + '\n'));
    const ring = new Uint8Array(new SharedArrayBuffer(RING_BYTES));
    let off = 0;
    let copied = 0;
    return {
      log(_event, poolIndex) {
        const bytes = encoded[poolIndex]!;
        // An event never straddles the end: the next copy starts over at 0, as a ring writer that
        // keeps lines whole would.
        if (off + bytes.length > RING_BYTES) off = 0;
        ring.set(bytes, off);
        off += bytes.length;
        copied += bytes.length;
      },
      // Nothing is written, so there is never anything to wait for.
      async drain() {},
      async finish() {},
      detail: () => ({ bytesCopied: copied }),
    };
  },
});
