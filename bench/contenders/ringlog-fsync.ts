// ringlog with default options, but the saturated phase ends with flush({ fsync: true }): what it
// costs to have every line on the disk, not only in the page cache, before the run counts as done.

import { runContender } from '../harness.js';
import { ringlogSession } from '../ringlog-session.js';

await runContender({
  name: 'ringlog-fsync',
  writesFiles: true,
  open: async (dir) => ringlogSession(dir, true),
});
