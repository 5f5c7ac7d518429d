// The owner's side of a sink's writer thread: starting it, noticing that it died, replacing it,
// and giving up on it. A writer that cannot run (no thread can be started here, or every one dies
// before writing anything) is not an outage: the sink then writes on its own thread (see
// JsonlEventSink, "inline"), so giving up is reported once and never loses an event.
//
// Deaths are noticed two ways. The 'exit' event, when the owner's loop turns. And, for an owner that
// is blocked (a full ring, an exit drain) and so cannot turn its loop, poll(): the writer swaps its
// id for WRITER_GONE on its own way out, and on Linux a thread killed from outside (terminate(),
// the heap limit) is seen gone from /proc — either way the replacement starts at once.

import { MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { wakeWriter, type RingViews } from '../ring/memory.js';
import { Ctl, LockOwner, WorkerState, WRITER_GONE } from '../ring/slots.js';
import type { WriterResourceLimits } from './options.js';
import type { FromWriter, ToWriter, WriterFatal, WriterInit } from '../writer/messages.js';
import { osThreadExists } from '../threads/os-thread.js';
import { startThread } from '../threads/start.js';

/** A writer that dies this many times in a row before writing anything is not restarted again:
 *  a bug or a missing capability, not bad luck (a crash that recurs every time, e.g. at load). */
const MAX_FAILED_STARTS = 3;

export interface WriterThreadHooks {
  message(msg: FromWriter): void;
  /** A writer died (not on request); a replacement starts unless gaveUp follows. */
  died(cause: unknown): void;
  /** The first message a new writer needs (external records still held by the owner). */
  started(post: (msg: ToWriter) => void): void;
  /** No writer thread will run again; `cause` is what the last attempt failed with. */
  gaveUp(cause: unknown, attempts: number): void;
}

export class WriterThread {
  readonly #ring: RingViews;
  readonly #init: () => Omit<WriterInit, 'fatal'>;
  readonly #limits: WriterResourceLimits | undefined;
  readonly #hooks: WriterThreadHooks;
  #worker: Worker | undefined;
  #alive = false;
  #gaveUp = false;
  #stopping = false;
  /** Writers in a row that died without moving READ_POS. */
  #failedStarts = 0;
  #readPosAtStart = 0;
  /** What the current writer failed with, from its 'error' event (or what `new Worker` threw). */
  #error: unknown;
  /** Why the last writer ended, kept for the reports of whatever was lost meanwhile. */
  #lastDeath: unknown;
  #restarts = 0;
  /** Our end of the current writer's WriterInit.fatal port. */
  #fatal: MessagePort | undefined;

  constructor(ring: RingViews, init: () => Omit<WriterInit, 'fatal'>, limits: WriterResourceLimits | undefined, hooks: WriterThreadHooks) {
    this.#ring = ring;
    this.#init = init;
    this.#limits = limits;
    this.#hooks = hooks;
  }

  /** A writer thread is running (or starting). */
  get alive(): boolean {
    return this.#alive;
  }

  /** No writer thread will run: the owner writes on its own thread. */
  get gaveUp(): boolean {
    return this.#gaveUp;
  }

  /** Replacements started after a writer died. */
  get restarts(): number {
    return this.#restarts;
  }

  /** Why the last writer died (undefined if none has). */
  get lastDeath(): unknown {
    return this.#lastDeath;
  }

  /** The running thread, for tests of crash recovery. */
  get thread(): Worker | undefined {
    return this.#alive ? this.#worker : undefined;
  }

  start(): void {
    const { ctl } = this.#ring;
    this.#readPosAtStart = Atomics.load(ctl, Ctl.READ_POS);
    this.#error = undefined;
    // Cleared before the thread exists, so nothing a predecessor left in them can be read as news
    // about this one.
    Atomics.store(ctl, Ctl.WRITER_ID, 0);
    Atomics.store(ctl, Ctl.WRITER_TID, 0);
    Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.STARTING);
    let worker: Worker;
    const { port1, port2 } = new MessageChannel();
    try {
      worker = startThread('writer', {
        workerData: { ...this.#init(), fatal: port2 } satisfies WriterInit,
        transferList: [port2],
        resourceLimits: this.#limits,
        // Segment fds opened by a writer must outlive it: its successor, or the owner's exit
        // drain, keeps writing to them.
        trackUnmanagedFds: false,
      });
    } catch (err) {
      // No thread can be started here (the permission model without --allow-worker, the process
      // out of threads): trying again will not help.
      this.#error = err;
      this.#lastDeath = err;
      port1.close();
      Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.EXITED);
      this.#giveUp(1);
      return;
    }
    this.#worker = worker;
    this.#fatal = port1;
    this.#alive = true;
    this.#hooks.started((msg) => worker.postMessage(msg));
    worker.on('message', (msg: FromWriter) => this.#hooks.message(msg));
    worker.on('error', (err) => {
      // The real cause of the death that 'exit' reports next.
      if (worker === this.#worker) this.#error = err;
    });
    worker.once('exit', (code) => this.#died(worker, code));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    worker.unref();
  }

  /** For an owner that cannot turn its loop: handles a death the 'exit' event has not told yet. */
  poll(): void {
    if (!this.#alive) return;
    const { ctl } = this.#ring;
    if (Atomics.load(ctl, Ctl.WRITER_ID) === WRITER_GONE || !osThreadExists(Atomics.load(ctl, Ctl.WRITER_TID))) {
      this.#died(this.#worker!, undefined);
    }
  }

  post(msg: ToWriter): void {
    if (this.#alive) this.#worker!.postMessage(msg);
  }

  /** Tells the writer to drain what is left and end; resolves when it has (or was not running). */
  async stop(): Promise<void> {
    this.#stopping = true;
    const { ctl } = this.#ring;
    Atomics.store(ctl, Ctl.STOP, 1);
    wakeWriter(ctl);
    const worker = this.#worker;
    if (!worker || !this.#alive) return;
    await new Promise<void>((resolve) => {
      worker.once('exit', () => resolve());
      worker.ref();
    });
  }

  /** At process exit: no replacement may start any more. */
  abandon(): void {
    this.#stopping = true;
  }

  #died(worker: Worker, code: number | undefined): void {
    if (worker !== this.#worker || !this.#alive) return;
    this.#alive = false;
    const { ctl } = this.#ring;
    Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.EXITED);
    // Its own account first: it is there even when its 'error' event has not been delivered yet
    // (a death seen by poll()).
    const told = this.#fatal && receiveMessageOnPort(this.#fatal)?.message as WriterFatal | undefined;
    this.#fatal?.close();
    this.#fatal = undefined;
    this.#lastDeath = this.#error ?? (told ? fatalError(told) : new Error(code === undefined ? 'the writer thread ended' : `the writer thread exited with code ${code}`));
    if (this.#stopping) return;
    this.#hooks.died(this.#lastDeath);
    // Its lock is free now; DIRTY stays set, so the next holder repairs the file's tail.
    Atomics.compareExchange(ctl, Ctl.LOCK, LockOwner.WORKER, LockOwner.FREE);
    const progressed = Atomics.load(ctl, Ctl.READ_POS) !== this.#readPosAtStart;
    this.#failedStarts = progressed ? 0 : this.#failedStarts + 1;
    if (this.#failedStarts >= MAX_FAILED_STARTS) return this.#giveUp(this.#failedStarts);
    this.#restarts++;
    this.start();
  }

  #giveUp(attempts: number): void {
    this.#gaveUp = true;
    this.#hooks.gaveUp(this.#lastDeath, attempts);
  }
}

function fatalError(f: WriterFatal): Error {
  const err = new Error(f.message);
  if (f.stack !== undefined) err.stack = f.stack;
  return err;
}
