// winston 3 with its File transport and JSON format: the most common Node logger, as its README
// sets it up. Everything runs on the caller's thread: format, a PassThrough, an fs write stream.

import { once } from 'node:events';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import winston from 'winston';
import { runContender } from '../harness.js';

// How often drain() looks at the streams: the timer's finest period.
const DRAIN_POLL_MS = 1;

/** The File transport's internal streams drain() inspects (winston 3.19); the cast stays here. */
interface FileTransportStreams {
  _stream?: NodeJS.ReadableStream & NodeJS.WritableStream & { writableLength: number; readableLength: number };
  _dest?: { writableLength: number };
}

await runContender({
  name: 'winston',
  writesFiles: true,
  async open(dir) {
    const file = new winston.transports.File({ filename: join(dir, 'events.jsonl') });
    const logger = winston.createLogger({ level: 'info', format: winston.format.json(), transports: [file] });
    // The transport opens its file asynchronously; that is setup, not logging.
    if (!(file as unknown as FileTransportStreams)._dest) await once(file, 'open');
    const streams = file as unknown as FileTransportStreams;
    const idle = () =>
      logger.writableLength === 0 &&
      logger.readableLength === 0 &&
      file.writableLength === 0 &&
      (streams._stream?.writableLength ?? 0) === 0 &&
      (streams._stream?.readableLength ?? 0) === 0 &&
      (streams._dest?.writableLength ?? 0) === 0;
    const drain = async () => {
      while (!idle()) await sleep(DRAIN_POLL_MS);
    };
    return {
      log(event) {
        logger.info(event);
      },
      // winston has no flush. A Writable's writableLength counts a write until its callback, so
      // when every stream from the logger to the file stream reads 0, every line has been
      // written. The harness counts the lines afterwards, so a wrong guess fails the run.
      drain,
      // Ending the logger ends its transports; the File transport's 'finish' waits for its file
      // stream to finish (its _final), i.e. for every write to have completed. Ending while the
      // transport still pushes back makes winston 3.19 write to the ended transport ('write after
      // end', lines lost), so the backlog is drained first, as a careful winston user must.
      async finish() {
        await drain();
        const finished = once(file, 'finish');
        logger.end();
        await finished;
      },
    };
  },
});
