// Baseline: build the reference envelope and serialise it, with no I/O at all. Its caller cost is
// the yardstick the project's targets are expressed against.

import { referenceLine, runContender } from '../harness.js';

await runContender({
  name: 'stringify',
  writesFiles: false,
  async open() {
    let index = 0;
    // Summing the lengths keeps every string observably used, so no engine can skip the work.
    let chars = 0;
    return {
      log(event) {
        chars += referenceLine(index++, event).length;
      },
      // Nothing is written, so there is never anything to wait for.
      async drain() {},
      async finish() {},
      detail: () => ({ utf16Units: chars }),
    };
  },
});
