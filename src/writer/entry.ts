// The writer worker: consumes the ring, writes lines, rotates. It holds the ring's LOCK only while
// it drains a batch, so the caller's thread can take over at exit or in flushSync() between
// batches, and it sleeps when there is nothing to do.

import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { RingConsumer, type ConsumerHooks } from './consumer.js';
import { faultInfo } from '../errors.js';
import { KeyTable } from '../ring/keys.js';
import { ringViews } from '../ring/memory.js';
import { Ctl, LockOwner, WorkerState, WRITER_GONE } from '../ring/slots.js';
import type { Source } from './line-builder.js';
import { heldBatch, release, tryHold } from './hold.js';
import type { FromWriter, ToWriter, WriterFatal, WriterInit } from './messages.js';
import { compileRedaction } from './redact.js';
import { fast } from '../node-buffer.js';
import { faultyIo, readInjection } from './inject.js';
import { realIo } from './segment-writer.js';
import { currentOsThreadId } from '../threads/os-thread.js';
import { waitAsync } from '../ring/wait.js';

/** While events keep coming, poll every millisecond: a line is readable within about 1 ms and the
 *  caller never pays for a notify. */
const NAP_MS = 1;
/** After 50 empty polls (~50 ms idle) sleep until notified, so an idle process costs no CPU. */
const NAPS_BEFORE_SLEEP = 50;

const port = parentPort!;
const init = workerData as WriterInit;
const ring = ringViews(init.sab);
const { ctl } = ring;
const externals = new Map<number, Source>();

/**
 * However this thread ends by its own doing (an exception, process.exit() from a redaction module),
 * the owner sees it at once in shared memory, without waiting for its 'exit' event. A swap, not a
 * store: once the owner has started a successor the slot holds another id, which this must not touch.
 */
function announceExit(): void {
  Atomics.compareExchange(ctl, Ctl.WRITER_ID, threadId, WRITER_GONE);
}
process.on('exit', announceExit);
// First thing, before anything that can fail (loading a redaction module): who this thread is.
Atomics.store(ctl, Ctl.WRITER_TID, currentOsThreadId());
Atomics.store(ctl, Ctl.WRITER_ID, threadId);

function post(msg: FromWriter): void {
  port.postMessage(msg);
}

/** Tells the owner why this thread is ending, where it can read it at once, then ends it. */
function die(err: unknown): never {
  const e = err as Error;
  init.fatal.postMessage({ message: String(e?.message ?? err), ...(e?.stack ? { stack: e.stack } : {}) } satisfies WriterFatal);
  announceExit();
  throw err;
}

const hooks: ConsumerHooks = {
  external: (id) => externals.get(id),
  externalDone: (id) => externals.delete(id),
  fault: (err, lost) => {
    // Counted in shared memory first, so a flush() can tell a fault message is still on its way.
    Atomics.add(ctl, Ctl.ERRORS, 1);
    post({ type: 'fault', fault: faultInfo(err), lost });
  },
  recovered: () => post({ type: 'recovered' }),
  // The caller's janitor compresses and retires closed segments; it learns of them here.
  rotated: (segment) => post({ type: 'rotated', segment }),
};

port.on('message', (msg: ToWriter) => {
  if (msg.type === 'external') {
    const buf = fast(Buffer.from(msg.sab));
    externals.set(msg.id, { u8: buf, dv: new DataView(msg.sab), buf });
  }
});

const injection = readInjection();
const io = injection ? faultyIo(realIo, injection) : realIo;
let batches = 0;
// Redaction runs here, off the caller's thread (a custom module is loaded into this thread too).
let consumer: RingConsumer;
try {
  consumer = new RingConsumer(ring, new KeyTable(init.keys), init.basePath, init.rotateBytes, hooks, compileRedaction(init.redact), io);
} catch (err) {
  // A redaction module that cannot load (or anything else at start-up): the owner hears why.
  die(err);
}

/** Fault injection: fills the heap until V8 ends this thread (ERR_WORKER_OUT_OF_MEMORY). */
function exhaustHeap(): never {
  const hog: number[][] = [];
  for (;;) hog.push(new Array<number>(1 << 16).fill(hog.length));
}

/** Drains one batch under the lock; false when the caller holds the lock. */
function batch(final: boolean): boolean | 'waiting-external' {
  if (!tryHold(ctl, LockOwner.WORKER)) return false;
  try {
    const result = heldBatch(ctl, consumer, () => {
      batches++;
      if (injection?.crashAfterBatches !== undefined && batches > injection.crashAfterBatches) {
        throw new Error('injected writer crash');
      }
      if (injection?.oomAfterBatches !== undefined && batches > injection.oomAfterBatches) exhaustHeap();
      return consumer.drain(final);
    });
    return result === 'waiting-external' ? 'waiting-external' : true;
  } finally {
    release(ctl);
  }
}

/** Whether anything asks for the writer since it read WRITE_POS as `w`. */
function requested(w: number): boolean {
  return (
    Atomics.load(ctl, Ctl.WRITE_POS) !== w ||
    Atomics.load(ctl, Ctl.STOP) === 1 ||
    Atomics.load(ctl, Ctl.FSYNC_REQUEST) !== Atomics.load(ctl, Ctl.FSYNC_DONE)
  );
}

async function run(): Promise<void> {
  Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.RUNNING);
  post({ type: 'ready' });
  let naps = 0;
  let finalDone = false;
  for (;;) {
    const w = Atomics.load(ctl, Ctl.WRITE_POS);
    const stopping = Atomics.load(ctl, Ctl.STOP) === 1;
    if (consumer.backlog() > 0 || (stopping && !finalDone)) {
      const done = batch(stopping);
      if (stopping && done === true) finalDone = true;
      naps = 0;
      // Yield after every batch so messages (external records) get in; a lost lock race or a
      // missing external record also waits a moment.
      if (done === true) await yieldToLoop();
      else await waitAsync(ctl, Ctl.LOCK, Atomics.load(ctl, Ctl.LOCK), NAP_MS);
      continue;
    }
    if (stopping) break;
    if (Atomics.load(ctl, Ctl.FSYNC_REQUEST) !== Atomics.load(ctl, Ctl.FSYNC_DONE) && tryHold(ctl, LockOwner.WORKER)) {
      try {
        consumer.serveFsync();
      } finally {
        release(ctl);
      }
    }
    if (naps < NAPS_BEFORE_SLEEP) {
      Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.NAPPING);
      naps++;
      await waitAsync(ctl, Ctl.WRITE_POS, w, NAP_MS);
    } else {
      Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.SLEEPING);
      // Re-checked after the announcement: see wakeWriter (src/ring/memory.ts) for why none is lost.
      if (!requested(w)) await waitAsync(ctl, Ctl.WORKER_STATE, WorkerState.SLEEPING, Infinity);
    }
    Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.RUNNING);
  }
  Atomics.store(ctl, Ctl.WORKER_STATE, WorkerState.EXITED);
  port.close();
}


run().catch(die);
