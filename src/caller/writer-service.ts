// The writer service: one writer thread per process (per writerResourceLimits setting) serving
// every sink of the process, started with the first sink and ended with the last, never keeping
// the process alive. This is its owner's side: starting the thread, attaching sinks to it,
// noticing that it died, replacing it (re-attaching every sink), and giving up on it. A writer that
// cannot run (no thread can be started here, or every one dies before writing anything) is not an
// outage: the sinks then write on their own thread (see JsonlEventSink, "inline"), so giving up is
// reported once per sink and never loses an event.
//
// Deaths are noticed two ways. The 'exit' event, when the owner's loop turns. And, for an owner that
// is blocked (a full ring, an exit drain) and so cannot turn its loop, poll(): the writer swaps its
// id for WRITER_GONE on its own way out, and on Linux a thread killed from outside (terminate(),
// the heap limit) is seen gone from /proc — either way the replacement starts at once.

import { isMainThread, MessageChannel, receiveMessageOnPort, type MessagePort, type Worker } from 'node:worker_threads';
import { createSvc, wakeWriter, writerGone, type RingViews } from '../ring/memory.js';
import { CLOSED_FD, Ctl, LockOwner, Svc, WorkerState } from '../ring/slots.js';
import { startThread } from '../threads/start.js';
import type { Attach, FromWriter, ToWriter, WriterFatal, WriterInit } from '../writer/messages.js';
import type { WriterResourceLimits } from './options.js';

/** A writer that dies this many times in a row before writing anything is not restarted again:
 *  a bug or a missing capability, not bad luck (a crash that recurs every time, e.g. at load). */
const MAX_FAILED_STARTS = 3;

export interface WriterLinkHooks {
  message(msg: FromWriter): void;
  /** The writer died (not on request); a replacement starts unless gaveUp follows. */
  died(cause: unknown): void;
  /** The first messages a new writer needs after the attachment (external records still held). */
  started(post: (msg: ToWriter) => void): void;
  /** No writer thread will serve this sink again; `cause` is what the last attempt failed with. */
  gaveUp(cause: unknown, attempts: number): void;
}

let nextSinkId = 1;

/** One writer thread and the sinks it serves. */
class WriterService {
  static readonly #byLimits = new Map<string, WriterService>();

  /**
   * The service for sinks with these resource limits (one thread per distinct setting), or with
   * `own`, a thread for this sink alone: a FIFO or a device can block write(2) for as long as its
   * reader likes, and a shared thread stuck there would stall every sink of the process.
   */
  static for(limits: WriterResourceLimits | undefined, own: boolean): WriterService {
    if (own) return new WriterService(limits);
    const key = limits === undefined ? '' : JSON.stringify(limits);
    let s = WriterService.#byLimits.get(key);
    if (s === undefined) {
      s = new WriterService(limits);
      WriterService.#byLimits.set(key, s);
    }
    return s;
  }

  readonly #limits: WriterResourceLimits | undefined;
  readonly #links = new Map<number, WriterLink>();
  /** The current thread's slots. A thread started after a retired one gets new ones, so the
   *  retiring thread never writes into its successor's; a replacement for a dead thread keeps
   *  them, so producers in other threads that hold them (handles) still wake the writer. */
  svc = createSvc();
  #retired = false;
  #worker: Worker | undefined;
  /** The current thread's threadId (what it stores as a descriptor's opener when Node tracks it). */
  #threadId = -1;
  #alive = false;
  #gaveUp = false;
  /** The process is exiting: no thread may start any more. */
  #abandoned = false;
  /** Threads in a row that died without any of their sinks' READ_POS moving. */
  #failedStarts = 0;
  readonly #readPosAtStart = new Map<WriterLink, number>();
  /** What the current thread failed with, from its 'error' event (or what `new Worker` threw). */
  #error: unknown;
  #lastDeath: unknown;
  /** Our end of the current thread's WriterInit.fatal port. */
  #fatal: MessagePort | undefined;
  /** Sinks waiting for their final drain: the thread is ref'd meanwhile. */
  #stopping = 0;

  private constructor(limits: WriterResourceLimits | undefined) {
    this.#limits = limits;
  }

  get alive(): boolean {
    return this.#alive;
  }

  get lastDeath(): unknown {
    return this.#lastDeath;
  }

  get thread(): Worker | undefined {
    return this.#alive ? this.#worker : undefined;
  }

  attach(link: WriterLink): void {
    this.#links.set(link.id, link);
    if (this.#gaveUp) {
      link.giveUp(this.#lastDeath, this.#failedStarts || 1);
      return;
    }
    if (!this.#alive) {
      if (!this.#abandoned) this.#start();
      return;
    }
    this.#attachTo(this.#worker!, link);
  }

  /** The sink no longer needs the thread (closed, or writing on its own thread now). */
  detach(link: WriterLink): void {
    if (!this.#links.delete(link.id)) return;
    this.#readPosAtStart.delete(link);
    if (this.#links.size > 0 || !this.#alive) return;
    // The last one: the thread ends once it has let go of every sink. It is not waited for, and
    // nothing it does from here on (its exit included) concerns a sink any more.
    this.#worker!.postMessage({ type: 'stop' } satisfies ToWriter);
    this.#retire();
  }

  post(link: WriterLink, msg: ToWriter): void {
    if (this.#alive && this.#links.has(link.id)) this.#worker!.postMessage(msg);
  }

  /** For an owner that cannot turn its loop: handles a death the 'exit' event has not told yet. */
  poll(): void {
    if (!this.#alive) return;
    const svc = this.svc;
    if (writerGone(svc)) this.#died(this.#worker!, undefined);
  }

  /** A sink waits for its final drain: the thread must run until it is done. */
  holdOpen(delta: 1 | -1): void {
    this.#stopping += delta;
    if (!this.#alive) return;
    if (this.#stopping > 0) this.#worker!.ref();
    else this.#worker!.unref();
  }

  /** At process exit: no replacement may start any more. */
  abandon(): void {
    this.#abandoned = true;
  }

  #attachTo(worker: Worker, link: WriterLink): void {
    this.#readPosAtStart.set(link, Atomics.load(link.ring.ctl, Ctl.READ_POS));
    worker.postMessage(link.attachment());
    link.hooks.started((msg) => worker.postMessage(msg));
  }

  #start(): void {
    if (this.#retired) {
      this.svc = createSvc();
      this.#retired = false;
    }
    const svc = this.svc;
    Atomics.store(svc, Svc.WRITER_ID, 0);
    Atomics.store(svc, Svc.WRITER_TID, 0);
    this.#error = undefined;
    Atomics.store(svc, Svc.WORKER_STATE, WorkerState.STARTING);
    let worker: Worker;
    const { port1, port2 } = new MessageChannel();
    try {
      worker = startThread('writer', {
        workerData: { svc: svc.buffer as SharedArrayBuffer, fatal: port2, untracked: isMainThread } satisfies WriterInit,
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
      Atomics.store(svc, Svc.WORKER_STATE, WorkerState.EXITED);
      this.#giveUp(1);
      return;
    }
    this.#worker = worker;
    // Read now: once the thread has ended, worker.threadId is -1.
    this.#threadId = worker.threadId;
    this.#fatal = port1;
    this.#alive = true;
    for (const link of this.#links.values()) this.#attachTo(worker, link);
    worker.on('message', (msg: FromWriter) => {
      if (worker === this.#worker) this.#links.get(msg.sink)?.onMessage(msg);
    });
    worker.on('error', (err) => {
      // The real cause of the death that 'exit' reports next.
      if (worker === this.#worker) this.#error = err;
    });
    worker.once('exit', (code) => this.#died(worker, code));
    // After the listeners: adding a 'message' listener refs the worker's port again.
    if (this.#stopping > 0) worker.ref();
    else worker.unref();
  }

  /** The current thread is no longer ours: it ends by itself; a new sink starts a new one. */
  #retire(): void {
    this.#alive = false;
    this.#retired = true;
    this.#worker = undefined;
    this.#fatal?.close();
    this.#fatal = undefined;
    this.#failedStarts = 0;
  }

  #died(worker: Worker, code: number | undefined): void {
    if (worker !== this.#worker || !this.#alive) return;
    this.#alive = false;
    Atomics.store(this.svc, Svc.WORKER_STATE, WorkerState.EXITED);
    // Its own account first: it is there even when its 'error' event has not been delivered yet
    // (a death seen by poll()).
    const told = this.#fatal && (receiveMessageOnPort(this.#fatal)?.message as WriterFatal | undefined);
    this.#fatal?.close();
    this.#fatal = undefined;
    this.#lastDeath = this.#error ?? (told ? fatalError(told) : new Error(code === undefined ? 'the writer thread ended' : `the writer thread exited with code ${code}`));
    // A writer started from a worker thread is tracked: Node closed the segments it had open when
    // it ended, and their numbers may be anyone's by now. The next holder opens them again.
    for (const link of this.#links.values()) {
      const { ctl } = link.ring;
      if (Atomics.load(ctl, Ctl.FD_OPENER) === this.#threadId) Atomics.store(ctl, Ctl.FD, CLOSED_FD);
      if (Atomics.load(ctl, Ctl.STALE_OPENER) === this.#threadId) Atomics.store(ctl, Ctl.STALE_FD, CLOSED_FD);
    }
    if (this.#abandoned) return;
    let progressed = false;
    for (const link of [...this.#links.values()]) {
      const { ctl } = link.ring;
      // Its lock is free now; DIRTY stays set, so the next holder repairs the file's tail.
      Atomics.compareExchange(ctl, Ctl.LOCK, LockOwner.WORKER, LockOwner.FREE);
      if (Atomics.load(ctl, Ctl.READ_POS) !== this.#readPosAtStart.get(link)) progressed = true;
      link.died(this.#lastDeath);
    }
    if (this.#links.size === 0) return;
    this.#failedStarts = progressed ? 0 : this.#failedStarts + 1;
    if (this.#failedStarts >= MAX_FAILED_STARTS) return this.#giveUp(this.#failedStarts);
    for (const link of this.#links.values()) link.restarts++;
    this.#start();
  }

  #giveUp(attempts: number): void {
    this.#gaveUp = true;
    for (const link of [...this.#links.values()]) link.giveUp(this.#lastDeath, attempts);
  }
}

/** A sink's place in the writer service: what JsonlEventSink sees of its writer thread. */
export class WriterLink {
  readonly id = nextSinkId++;
  readonly ring: RingViews;
  readonly hooks: WriterLinkHooks;
  readonly #init: () => Omit<Attach, 'type' | 'sink'>;
  readonly #service: WriterService;
  #gaveUp = false;
  #stopping = false;
  #onDetached: (() => void) | undefined;
  #lastDeath: unknown;
  /** Replacement threads started while this sink was attached. */
  restarts = 0;

  constructor(ring: RingViews, init: () => Omit<Attach, 'type' | 'sink'>, limits: WriterResourceLimits | undefined, ownThread: boolean, hooks: WriterLinkHooks) {
    this.ring = ring;
    this.#init = init;
    this.hooks = hooks;
    this.#service = WriterService.for(limits, ownThread);
  }

  /** The writer thread's slots, for waking it (they change when a replacement starts). */
  get svc(): Int32Array {
    return this.#service.svc;
  }

  /** A writer thread is running (or starting) for this sink. */
  get alive(): boolean {
    return !this.#gaveUp && this.#service.alive;
  }

  /** No writer thread will serve this sink: it writes on its own thread. */
  get gaveUp(): boolean {
    return this.#gaveUp;
  }

  /** Its writer thread is starting and has not run yet. */
  get starting(): boolean {
    return this.alive && Atomics.load(this.svc, Svc.WORKER_STATE) === WorkerState.STARTING;
  }

  /** Why the last writer died while serving this sink (undefined if none has). */
  get lastDeath(): unknown {
    return this.#lastDeath;
  }

  /** The running thread, for tests of crash recovery. */
  get thread(): Worker | undefined {
    return this.alive ? this.#service.thread : undefined;
  }

  start(): void {
    this.#service.attach(this);
  }

  attachment(): Attach {
    return { type: 'attach', sink: this.id, ...this.#init() };
  }

  poll(): void {
    if (this.alive) this.#service.poll();
  }

  /** The bytes of an EXTERNAL record. */
  postExternal(id: number, sab: SharedArrayBuffer): void {
    if (this.alive) this.#service.post(this, { type: 'external', sink: this.id, id, sab });
  }

  /** Tells the writer to drain what is left of this sink and let go of it; resolves when it has
   *  (or when no thread serves the sink any more: the sink then writes what is left itself). */
  async stop(): Promise<void> {
    this.#stopping = true;
    Atomics.store(this.ring.ctl, Ctl.STOP, 1);
    if (!this.alive) {
      this.#service.detach(this);
      return;
    }
    const detached = new Promise<void>((resolve) => (this.#onDetached = resolve));
    this.#service.holdOpen(1);
    wakeWriter(this.svc);
    try {
      await detached;
    } finally {
      this.#service.holdOpen(-1);
      this.#service.detach(this);
    }
  }

  /** At process exit: no replacement may start any more. */
  abandon(): void {
    this.#service.abandon();
  }

  onMessage(msg: FromWriter): void {
    if (msg.type === 'detached') return this.#detached();
    if (msg.type === 'attachFailed') {
      this.#lastDeath = fatalError(msg.error);
      this.#service.detach(this);
      return this.giveUp(this.#lastDeath, 1);
    }
    this.hooks.message(msg);
  }

  /** The thread serving this sink died; the service starts a replacement unless it gives up. */
  died(cause: unknown): void {
    this.#lastDeath = cause;
    if (this.#stopping) {
      // Closing: no replacement for this sink; close() writes what is left on its own thread.
      this.#service.detach(this);
      this.#detached();
      return;
    }
    this.hooks.died(cause);
  }

  giveUp(cause: unknown, attempts: number): void {
    if (this.#gaveUp) return;
    this.#gaveUp = true;
    this.#lastDeath = cause;
    this.#service.detach(this);
    this.#detached();
    if (!this.#stopping) this.hooks.gaveUp(cause, attempts);
  }

  #detached(): void {
    const done = this.#onDetached;
    this.#onDetached = undefined;
    done?.();
  }
}

function fatalError(f: WriterFatal): Error {
  const err = new Error(f.message);
  if (f.stack !== undefined) err.stack = f.stack;
  return err;
}
