// The janitor's compression thread (compressor.ts): gzips closed segments, one job at a time,
// so gzip never runs on the caller's thread or the writer's. The order of steps is what keeps the set
// readable through a crash at any point: the plain segment goes only once a complete, fsynced
// `.gz` has its final name, and both renames are made durable by fsyncing the directory.

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parentPort } from 'node:worker_threads';
import { createGzip } from 'node:zlib';
import { faultInfo } from '../errors.js';
import type { CompressResult, CompressTask, ToCompressor } from './compress-messages.js';
import { GZ_SUFFIX, GZ_TMP_SUFFIX } from './format.js';

/** Read size: large reads keep the syscall count low; 1 MiB is 5 to 30 ms of gzip (levels 1 to 6
 *  on the 2-core VM), short enough that the thread answers a terminate() at exit promptly. */
const READ_CHUNK = 1024 * 1024;

async function fsyncDir(dir: string): Promise<void> {
  const fh = await fs.promises.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The source of the job a 'cancel' was received for (null: none). */
let cancelled: string | null = null;

class Cancelled extends Error {}

function checkCancelled(source: string): void {
  if (cancelled === source) throw new Cancelled();
}

async function compress(task: CompressTask): Promise<CompressResult> {
  cancelled = null;
  const startedAt = Date.now();
  const { source, level } = task;
  const gz = source + GZ_SUFFIX;
  const tmp = source + GZ_TMP_SUFFIX;
  const dir = path.dirname(source);
  let bytesIn: number;
  try {
    bytesIn = (await fs.promises.stat(source)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { type: 'missing' };
    return { type: 'failed', fault: faultInfo(err) };
  }
  let renamed = false;
  try {
    // 'w' truncates a temporary file left by a job a crash cut short.
    const out = await fs.promises.open(tmp, 'w');
    try {
      // Written through the handle itself (not a write stream over it) so that it stays open for
      // the fsync below.
      await pipeline(fs.createReadStream(source, { highWaterMark: READ_CHUNK }), createGzip({ level }), async (gzipped: AsyncIterable<Buffer>) => {
        for await (const chunk of gzipped) {
          checkCancelled(source);
          await out.write(chunk);
        }
      });
      await out.sync();
    } finally {
      await out.close();
    }
    const bytesOut = (await fs.promises.stat(tmp)).size;
    // The last point a cancel can take effect: once renamed, the segment exists as `.gz`, and the
    // owner, which waits for this job's answer, removes it in that form.
    checkCancelled(source);
    await fs.promises.rename(tmp, gz);
    renamed = true;
    await fsyncDir(dir);
    await fs.promises.unlink(source);
    await fsyncDir(dir);
    return { type: 'done', bytesIn, bytesOut, startedAt, endedAt: Date.now() };
  } catch (err) {
    if (!renamed) {
      await fs.promises.rm(tmp, { force: true }).catch(() => {
        // A temporary file that cannot be removed is harmless: it is never read as part of the
        // set, and the next open in append mode (or the next job) tries again.
      });
    }
    return err instanceof Cancelled ? { type: 'cancelled' } : { type: 'failed', fault: faultInfo(err) };
  }
}

/**
 * Lower priority for this thread only (Linux nice values are per thread; setpriority on "process"
 * 0 means the calling thread there): when the cores are busy the writer and the caller win, and
 * gzip gets the idle time. 10 rather than 19 so compression still progresses under sustained load
 * instead of starving until it ends.
 */
const NICE_INCREMENT = 10;
/** The weakest nice value Linux allows. */
const NICE_MAX = 19;

// Only where nice values are per thread: elsewhere (macOS, Windows) this would lower the whole
// application's priority, for good.
if (process.platform === 'linux') {
  try {
    os.setPriority(Math.min(NICE_MAX, os.getPriority() + NICE_INCREMENT));
  } catch {
    // Not permitted here: compression then competes at normal priority.
  }
}

const port = parentPort!;
port.on('message', (msg: ToCompressor) => {
  if (msg.type === 'cancel') {
    cancelled = msg.source;
    return;
  }
  void compress(msg.task).then((result) => port.postMessage(result));
});
