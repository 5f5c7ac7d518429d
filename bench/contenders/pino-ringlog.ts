// pino writing through ringlog's pino destination (`ringlog/pino`): pino serialises on the caller's
// thread as always, the line goes into ringlog's ring as text, ringlog's writer thread splices the
// envelope in and writes. The row to read beside pino-destination and pino-transport.

import { join } from 'node:path';
import { pino } from 'pino';
import { ringlogDestination } from '../../src/bridges/pino.js';
import { runContender } from '../harness.js';

await runContender({
  name: 'pino-ringlog',
  writesFiles: true,
  async open(dir) {
    const dest = ringlogDestination({ path: join(dir, 'events.jsonl'), mode: 'truncate' });
    const logger = pino(dest);
    return {
      log(event) {
        logger.info(event);
      },
      // Calls back once the writer has written every line handed over so far.
      drain: () => new Promise<void>((resolve, reject) => dest.flush((err) => (err ? reject(err) : resolve()))),
      async finish() {
        await new Promise<void>((resolve) => dest.end().once('close', () => resolve()));
        // As the ringlog row: a run that lost events must not report a throughput.
        const { dropped } = dest.sink.stats();
        if (dropped !== 0) throw new Error(`ringlog dropped ${dropped} events`);
      },
      detail: () => ({ ...dest.sink.stats() }),
    };
  },
});
