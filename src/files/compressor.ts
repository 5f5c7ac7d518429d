// The janitors' compression thread: one per process, shared by every sink that compresses, started
// on the first job and ended after an idle spell, running one gzip job at a time
// (compress-entry.ts) from a queue in arrival order. A tiny pool of our own rather than a pool
// library: a pool library starts its threads from its own worker file found on disk, which a
// bundled application does not have; this thread starts from embedded source like every other.

import type { Worker } from 'node:worker_threads';
import { faultInfo, type FaultInfo } from '../errors.js';
import { startThread } from '../threads/start.js';
import type { CompressResult, CompressTask, ToCompressor } from './compress-messages.js';

/** Keep an idle compression thread this long: a busy sink rotates every second or so (100 MiB at
 *  100+ MB/s), so consecutive jobs reuse one thread, and a quiet process holds none. */
const IDLE_TIMEOUT_MS = 5000;

interface Job {
  readonly task: CompressTask;
  resolve(result: CompressResult): void;
  /** The thread running it, once it runs: a late 'exit' of an earlier thread must not answer for it. */
  worker?: Worker;
}

/** The process's compression thread and its queue. */
class CompressionThread {
  #worker: Worker | undefined;
  readonly #queue: Job[] = [];
  #running: Job | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #workerError: unknown;
  /** Set once a thread could not be started: it will not be, here, ever. */
  #unavailable: FaultInfo | undefined;

  submit(job: Job): void {
    this.#queue.push(job);
    this.#next();
  }

  /** Stops `job`: dropped if still queued ('cancelled'), asked to stop if running. */
  cancel(job: Job): void {
    const at = this.#queue.indexOf(job);
    if (at >= 0) {
      this.#queue.splice(at, 1);
      job.resolve({ type: 'cancelled' });
    } else if (this.#running === job) {
      this.#worker?.postMessage({ type: 'cancel', source: job.task.source } satisfies ToCompressor);
    }
  }

  #next(): void {
    if (this.#running !== undefined || this.#queue.length === 0) return;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#unavailable === undefined && this.#worker === undefined) {
      try {
        this.#start();
      } catch (err) {
        this.#unavailable = faultInfo(err);
      }
    }
    if (this.#unavailable !== undefined) {
      for (const job of this.#queue.splice(0)) job.resolve({ type: 'unavailable', fault: this.#unavailable });
      return;
    }
    const worker = this.#worker!;
    const job = this.#queue.shift()!;
    job.worker = worker;
    this.#running = job;
    // A job in flight holds the process, so a program that ends its loop still gets its last
    // compression finished; an idle thread never does.
    worker.ref();
    worker.postMessage({ type: 'compress', task: job.task } satisfies ToCompressor);
  }

  #start(): void {
    const worker = startThread('compress', { workerData: null });
    this.#worker = worker;
    this.#workerError = undefined;
    worker.on('message', (result: CompressResult) => {
      this.#finish(worker, result);
      if (this.#queue.length > 0) return this.#next();
      worker.unref();
      this.#idleTimer = setTimeout(() => this.#retire(worker), IDLE_TIMEOUT_MS);
      this.#idleTimer.unref();
    });
    worker.on('error', (err) => {
      this.#workerError = err;
    });
    worker.once('exit', (code) => {
      if (this.#worker === worker) this.#worker = undefined;
      const cause = this.#workerError ?? new Error(`the compression thread exited with code ${code}`);
      this.#finish(worker, { type: 'failed', fault: faultInfo(cause) });
      // Jobs still queued get a new thread.
      this.#next();
    });
  }

  /** Ends an idle thread. Forgotten now, not at its 'exit': a job arriving meanwhile starts a new
   *  thread instead of being posted to this dying one. */
  #retire(worker: Worker): void {
    if (this.#worker !== worker || this.#running !== undefined) return;
    this.#worker = undefined;
    void worker.terminate();
  }

  #finish(worker: Worker, result: CompressResult): void {
    const job = this.#running;
    if (job?.worker !== worker) return;
    this.#running = undefined;
    job.resolve(result);
  }
}

let shared: CompressionThread | undefined;

/** One janitor's use of the process's compression thread: one job at a time (the janitor never
 *  overlaps them). */
export class Compressor {
  #job: Job | undefined;

  /**
   * Runs one job. Never rejects: a thread that dies mid-job yields 'failed', one that cannot start
   * 'unavailable', each with the cause; the segment stays plain.
   */
  run(task: CompressTask): Promise<CompressResult> {
    if (this.#job) throw new Error('ringlog: internal: compression jobs overlap');
    return new Promise<CompressResult>((resolve) => {
      const job: Job = {
        task,
        resolve: (result) => {
          if (this.#job === job) this.#job = undefined;
          resolve(result);
        },
      };
      this.#job = job;
      (shared ??= new CompressionThread()).submit(job);
    });
  }

  /** Asks the job on `source`, if it is this janitor's, to stop (it answers 'cancelled' or 'done'). */
  cancel(source: string): void {
    if (this.#job?.task.source === source) shared?.cancel(this.#job);
  }

  /** This janitor is done: a job it still has is cancelled (the thread itself ends when idle). */
  async destroy(): Promise<void> {
    const job = this.#job;
    if (job === undefined) return;
    const ended = new Promise<void>((resolve) => {
      const done = job.resolve;
      job.resolve = (result) => {
        done(result);
        resolve();
      };
    });
    shared?.cancel(job);
    await ended;
  }
}
