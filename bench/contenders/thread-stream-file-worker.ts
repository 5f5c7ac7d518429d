// The worker side of the thread-stream contender: thread-stream loads this file in its worker and
// writes everything it receives into the returned stream. A plain fs write stream, so the worker
// does no more than pino's own file transport would.

import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';

export interface FileWorkerData {
  dest: string;
}

// thread-stream calls the module's default export with workerData and waits for the stream.
export default async function open(opts: FileWorkerData): Promise<WriteStream> {
  const stream = createWriteStream(opts.dest);
  await once(stream, 'open');
  return stream;
}
