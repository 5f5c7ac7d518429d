// ringlog with default options: stamp and copy on the caller, write from its worker thread.

import { runContender } from '../harness.js';
import { ringlogSession } from '../ringlog-session.js';

await runContender({
  name: 'ringlog',
  writesFiles: true,
  open: async (dir) => ringlogSession(dir, false),
});
