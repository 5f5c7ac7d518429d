// The janitor's compression thread: one worker, started on the first job, ended after an idle
// spell, running one gzip job at a time (compress-entry.ts). A tiny pool of our own rather than a
// pool library: a pool library starts its threads from its own worker file found on disk, which a
// bundled application does not have; this thread starts from embedded source like every other.

import type { Worker } from 'node:worker_threads';
import { faultInfo, type FaultInfo } from '../errors.js';
import type { CompressResult, CompressTask, ToCompressor } from './compress-messages.js';
import { startThread } from '../threads/start.js';

/** Keep an idle compression thread this long: a busy sink rotates every second or so (100 MiB at
 *  100+ MB/s), so consecutive jobs reuse one thread, and a quiet sink holds none. */
const IDLE_TIMEOUT_MS = 5000;

interface Job {
  /** The thread running it: a late 'exit' of an earlier thread must not answer for it. */
  readonly worker: Worker;
  resolve(result: CompressResult): void;
}

export class Compressor {
  #worker: Worker | undefined;
  #job: Job | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #workerError: unknown;
  /** Set once a thread could not be started: it will not be, here, ever. */
  #unavailable: FaultInfo | undefined;

  /**
   * Runs one job (the janitor never overlaps them). Never rejects: a thread that dies mid-job
   * yields 'failed', one that cannot start 'unavailable', each with the cause; the segment stays
   * plain.
   */
  run(task: CompressTask): Promise<CompressResult> {
    if (this.#job) throw new Error('ringlog: internal: compression jobs overlap');
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#unavailable) return Promise.resolve({ type: 'unavailable', fault: this.#unavailable });
    let worker: Worker;
    try {
      worker = this.#worker ?? this.#start();
    } catch (err) {
      this.#unavailable = faultInfo(err);
      return Promise.resolve({ type: 'unavailable', fault: this.#unavailable });
    }
    return new Promise<CompressResult>((resolve) => {
      this.#job = { worker, resolve };
      // A job in flight holds the process, so a program that ends its loop still gets its last
      // compression finished; an idle thread never does.
      worker.ref();
      worker.postMessage({ type: 'compress', task } satisfies ToCompressor);
    });
  }

  /** Asks the job on `source`, if it is the one running, to stop (it answers 'cancelled' or 'done'). */
  cancel(source: string): void {
    if (this.#job) this.#worker?.postMessage({ type: 'cancel', source } satisfies ToCompressor);
  }

  /** Ends the thread (a job in flight is answered 'failed'). */
  async destroy(): Promise<void> {
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    const worker = this.#worker;
    // Forgotten now, not at its 'exit': a job arriving meanwhile starts a new thread instead of
    // being posted to this dying one.
    this.#worker = undefined;
    if (worker) await worker.terminate();
  }

  #start(): Worker {
    const worker = startThread('compress', { workerData: null });
    this.#worker = worker;
    this.#workerError = undefined;
    worker.on('message', (result: CompressResult) => {
      this.#finish(worker, result);
      worker.unref();
      this.#idleTimer = setTimeout(() => void this.destroy(), IDLE_TIMEOUT_MS);
      this.#idleTimer.unref();
    });
    worker.on('error', (err) => {
      this.#workerError = err;
    });
    worker.once('exit', (code) => {
      if (this.#worker === worker) this.#worker = undefined;
      const cause = this.#workerError ?? new Error(`the compression thread exited with code ${code}`);
      this.#finish(worker, { type: 'failed', fault: faultInfo(cause) });
    });
    return worker;
  }

  #finish(worker: Worker, result: CompressResult): void {
    const job = this.#job;
    if (job?.worker !== worker) return;
    this.#job = undefined;
    job.resolve(result);
  }
}
