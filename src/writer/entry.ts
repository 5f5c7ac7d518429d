// The writer thread: one per process (per resource-limit setting), serving every sink attached to
// it. Each sink has its own ring, files, key table, rotation and fault state; this thread visits
// every ring with a backlog, holding that ring's LOCK only while it drains a batch (so the sink's
// own thread can take over at exit or in flushSync() between batches), and sleeps when every ring
// is idle.

import * as fs from 'node:fs';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { faultInfo } from '../errors.js';
import { KeyTable } from '../ring/keys.js';
import { reached, ringViews, type RingViews } from '../ring/memory.js';
import { CLOSED_FD, Ctl, LockOwner, Svc, WorkerState, WRITER_GONE } from '../ring/slots.js';
import { waitAsync } from '../ring/wait.js';
import { descriptorsUntracked, mayClose } from '../threads/descriptors.js';
import { currentOsThreadId } from '../threads/os-thread.js';
import { SharedProducer, settleClaims } from '../ring/claim.js';
import { RingConsumer, type ConsumerHooks } from './consumer.js';
import { heldBatch, release, tryHold } from './hold.js';
import { faultyIo, readInjection } from './inject.js';
import { sourceOf, type Source } from './line-builder.js';
import { WriterProjection } from './record-projection.js';
import type { Attach, FromWriter, ToWriter, WriterFatal, WriterInit } from './messages.js';
import { compileRedaction } from './redact.js';
import { realIo } from './segment-writer.js';

/** While events keep coming, poll every millisecond: a line is readable within about 1 ms and the
 *  caller never pays for a notify. */
const NAP_MS = 1;
/** After 50 empty polls (~50 ms idle) sleep until notified, so an idle process costs no CPU. */
const NAPS_BEFORE_SLEEP = 50;
/**
 * Segments this thread keeps open at once: a quarter of the process's descriptor limit (the
 * application needs the rest), at most 256. At Linux's default soft limit of 1,024 that is 256:
 * the busiest sessions' files stay open, the rest are opened again at their next batch (one
 * open(2), microseconds), so 10,000 sinks fit.
 */
const MAX_OPEN_SEGMENTS = Math.max(8, Math.min(256, Math.floor(openFileLimit() / 4)));

/** The soft limit on open files (/proc/self/limits, Linux); 1,024, the usual default, elsewhere. */
function openFileLimit(): number {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (m && m[1] !== 'unlimited') return Number(m[1]);
    if (m) return Infinity;
  } catch {
    // Not Linux: the default below.
  }
  return 1024;
}

const port = parentPort!;
const init = workerData as WriterInit;
const svc = new Int32Array(init.svc);
if (init.untracked) descriptorsUntracked();

/** One attached sink: its ring and everything this thread keeps for it. */
interface Attached {
  readonly id: number;
  readonly ring: RingViews;
  readonly consumer: RingConsumer;
  readonly externals: Map<number, Source>;
  /** Its final drain (after close() set STOP) is done: it is detached at the end of the pass. */
  finalDone: boolean;
  /** WRITE_POS as last seen, for the sleep decision. */
  seen: number;
  /** Once producers in other threads share the ring: to settle what a dead one left. */
  claims: SharedProducer | undefined;
  /** Batches run so far when this sink last had one: the least recent lose their fd first. */
  lastBatch: number;
}

const sinks = new Map<number, Attached>();
/** The owner has no sinks left for this thread: it ends once the last one is detached. */
let stopWhenEmpty = false;

/**
 * However this thread ends by its own doing (an exception, process.exit() from a redaction module),
 * the owner sees it at once in shared memory, without waiting for its 'exit' event. A swap, not a
 * store: once the owner has started a successor the slot holds another id, which this must not touch.
 */
function announceExit(): void {
  Atomics.compareExchange(svc, Svc.WRITER_ID, threadId, WRITER_GONE);
}
process.on('exit', announceExit);
// First thing, before anything that can fail: who this thread is.
Atomics.store(svc, Svc.WRITER_TID, currentOsThreadId());
Atomics.store(svc, Svc.WRITER_ID, threadId);

function post(msg: FromWriter): void {
  port.postMessage(msg);
}

/** Tells the owner why this thread is ending, where it can read it at once, then ends it. */
function die(err: unknown): never {
  init.fatal.postMessage(fatalOf(err));
  announceExit();
  throw err;
}

function fatalOf(err: unknown): WriterFatal {
  const e = err as Error;
  return { message: String(e?.message ?? err), ...(e?.stack ? { stack: e.stack } : {}) };
}

const injection = readInjection();
const io = injection ? faultyIo(realIo, injection) : realIo;
let batches = 0;

function attach(msg: Attach): void {
  const ring = ringViews(msg.sab);
  const externals = new Map<number, Source>();
  const sink = msg.sink;
  const hooks: ConsumerHooks = {
    external: (id) => externals.get(id),
    externalDone: (id) => externals.delete(id),
    fault: (err, lost) => {
      // Counted in shared memory first, so a flush() can tell a fault message is still on its way.
      Atomics.add(ring.ctl, Ctl.ERRORS, 1);
      post({ type: 'fault', sink, fault: faultInfo(err), lost });
    },
    recovered: () => post({ type: 'recovered', sink }),
    // The sink's janitor compresses and retires closed segments; it learns of them here.
    rotated: (segment) => post({ type: 'rotated', sink, segment }),
  };
  let consumer: RingConsumer;
  try {
    // Redaction runs here, off the caller's thread (a custom module is loaded into this thread too).
    const projection = msg.durableProjection ? new WriterProjection() : null;
    consumer = new RingConsumer(ring, new KeyTable(msg.keys), msg.basePath, msg.rotateBytes, hooks, compileRedaction(msg.redact), io, projection);
  } catch (err) {
    // This sink cannot be served here (its redaction module will not load in this thread): it
    // writes on its own thread; the other sinks are not affected.
    post({ type: 'attachFailed', sink, error: fatalOf(err) });
    return;
  }
  sinks.set(sink, { id: sink, ring, consumer, externals, finalDone: false, seen: Atomics.load(ring.ctl, Ctl.WRITE_POS), claims: undefined, lastBatch: 0 });
  wake();
}

port.on('message', (msg: ToWriter) => {
  switch (msg.type) {
    case 'attach':
      return attach(msg);
    case 'external': {
      sinks.get(msg.sink)?.externals.set(msg.id, sourceOf(msg.sab));
      return wake();
    }
    case 'stop':
      stopWhenEmpty = true;
      return wake();
  }
});

/** Ends a sleep from inside this thread (a message changed what there is to do). */
function wake(): void {
  if (Atomics.compareExchange(svc, Svc.WORKER_STATE, WorkerState.SLEEPING, WorkerState.RUNNING) === WorkerState.SLEEPING) {
    Atomics.notify(svc, Svc.WORKER_STATE);
  }
}

/** Fault injection: fills the heap until V8 ends this thread (ERR_WORKER_OUT_OF_MEMORY). */
function exhaustHeap(): never {
  const hog: number[][] = [];
  for (;;) hog.push(new Array<number>(1 << 16).fill(hog.length));
}

/** Drains one batch of `s` under its lock; false when the sink's own thread holds the lock. */
function batch(s: Attached, final: boolean): boolean | 'waiting-external' {
  const { ctl } = s.ring;
  if (!tryHold(ctl, LockOwner.WORKER)) return false;
  try {
    const result = heldBatch(ctl, s.consumer, () => {
      batches++;
      s.lastBatch = batches;
      if (injection?.crashAfterBatches !== undefined && batches > injection.crashAfterBatches) {
        throw new Error('injected writer crash');
      }
      if (injection?.oomAfterBatches !== undefined && batches > injection.oomAfterBatches) exhaustHeap();
      return s.consumer.drain(final);
    });
    return result === 'waiting-external' ? 'waiting-external' : true;
  } finally {
    release(ctl);
  }
}

/**
 * Keeps at most MAX_OPEN_SEGMENTS segments open: the least recently written sinks let go of
 * theirs (their next batch opens it again). Only regular files, and only under the sink's LOCK;
 * a sink whose own thread holds the lock keeps its fd this time.
 */
function capOpenSegments(): number {
  if (sinks.size <= MAX_OPEN_SEGMENTS) return 0;
  const open: Attached[] = [];
  for (const s of sinks.values()) if (closable(s)) open.push(s);
  if (open.length <= MAX_OPEN_SEGMENTS) return open.length;
  open.sort((a, b) => a.lastBatch - b.lastBatch);
  // Down to three quarters of the cap, so the next few new sessions do not each trigger a sort.
  const excess = open.length - Math.floor((MAX_OPEN_SEGMENTS * 3) / 4);
  let closed = 0;
  for (let i = 0; i < excess; i++) if (letGoOfSegment(open[i]!)) closed++;
  return open.length - closed;
}

/** Its segment is a regular file, open now, by a thread whose descriptors this one may close. */
function closable(s: Attached): boolean {
  const { ctl } = s.ring;
  return Atomics.load(ctl, Ctl.CLOSABLE) === 1 && Atomics.load(ctl, Ctl.FD) !== CLOSED_FD && mayClose(Atomics.load(ctl, Ctl.FD_OPENER));
}

function letGoOfSegment(s: Attached): boolean {
  if (!tryHold(s.ring.ctl, LockOwner.WORKER)) return false;
  try {
    s.consumer.writer.closeFd();
  } finally {
    release(s.ring.ctl);
  }
  return true;
}

/** A flush({ fsync: true }) waits: the last fsync (DONE: the WRITTEN value it covered) is short of it. */
function fsyncWanted(ctl: Int32Array): boolean {
  return !reached(Atomics.load(ctl, Ctl.FSYNC_DONE), Atomics.load(ctl, Ctl.FSYNC_REQUEST));
}

function serveFsync(s: Attached): void {
  const { ctl } = s.ring;
  if (!fsyncWanted(ctl) || !tryHold(ctl, LockOwner.WORKER)) return;
  try {
    s.consumer.serveFsync();
  } finally {
    release(ctl);
  }
}

/** One pass over every sink. 'busy': a batch was written; 'blocked': a sink waits on its own
 *  thread's lock or on an external record's bytes; 'idle': nothing to do anywhere. */
function pass(): 'busy' | 'blocked' | 'idle' {
  let outcome: 'busy' | 'blocked' | 'idle' = 'idle';
  // Before the pass, and during it: every batch may open its sink's segment again.
  let openSegments = capOpenSegments();
  for (const s of sinks.values()) {
    const { ctl } = s.ring;
    claimsOwed(s);
    const stopping = Atomics.load(ctl, Ctl.STOP) === 1;
    s.seen = Atomics.load(ctl, Ctl.WRITE_POS);
    if (s.consumer.backlog() > 0 || (stopping && !s.finalDone)) {
      const wasOpen = closable(s);
      const done = batch(s, stopping);
      if (!wasOpen && closable(s) && ++openSegments > MAX_OPEN_SEGMENTS && letGoOfSegment(s)) openSegments--;
      if (done === true) {
        outcome = 'busy';
        if (stopping) s.finalDone = true;
      } else if (outcome === 'idle') {
        outcome = 'blocked';
      }
    } else {
      serveFsync(s);
    }
    if (s.finalDone) {
      // Its segments are closed here, where they were opened: a worker thread that owns the sink
      // must not close a descriptor it never opened (src/threads/descriptors.ts).
      if (tryHold(ctl, LockOwner.WORKER)) {
        try {
          s.consumer.writer.closeStale();
          if (closable(s)) s.consumer.writer.closeFd();
        } finally {
          release(ctl);
        }
      }
      sinks.delete(s.id);
      post({ type: 'detached', sink: s.id });
    }
  }
  return outcome;
}

/**
 * A shared ring (producers in several threads): a claim a dead producer left, or dropped indexes
 * no producer came back to publish, are put in the ring here, so no flush waits on them forever.
 * True while something is owed, so this thread keeps looking instead of sleeping.
 */
function claimsOwed(s: Attached): boolean {
  if (Atomics.load(s.ring.ctl, Ctl.SHARED) === 0) return false;
  s.claims ??= new SharedProducer(s.ring, { svc });
  return settleClaims(s.claims);
}

/** Whether any sink published records since the last pass looked. */
function published(): boolean {
  for (const s of sinks.values()) if (Atomics.load(s.ring.ctl, Ctl.WRITE_POS) !== s.seen) return true;
  return false;
}

async function nap(): Promise<void> {
  Atomics.store(svc, Svc.WORKER_STATE, WorkerState.NAPPING);
  await waitAsync(svc, Svc.WORKER_STATE, WorkerState.NAPPING, NAP_MS);
}

/** Whether any sink asks for this thread since the last pass looked. */
function requested(): boolean {
  // Claims first: settling one publishes a marker, which published() then sees.
  let owed = false;
  for (const s of sinks.values()) if (claimsOwed(s)) owed = true;
  if (owed || published()) return true;
  for (const s of sinks.values()) if (Atomics.load(s.ring.ctl, Ctl.STOP) === 1 || fsyncWanted(s.ring.ctl)) return true;
  return stopWhenEmpty && sinks.size === 0;
}

async function run(): Promise<void> {
  Atomics.store(svc, Svc.WORKER_STATE, WorkerState.RUNNING);
  let naps = 0;
  for (;;) {
    const outcome = pass();
    if (stopWhenEmpty && sinks.size === 0) break;
    if (outcome === 'busy') {
      naps = 0;
      // Yield after every pass so messages (attachments, external records) get in.
      await yieldToLoop();
      continue;
    }
    // Records published while the pass ran: no nap (a napper is not woken by them).
    if (outcome === 'idle' && published()) continue;
    if (outcome === 'blocked' || naps < NAPS_BEFORE_SLEEP) {
      // A lost lock race or a missing external record waits a moment, as an idle nap does.
      if (outcome === 'idle') naps++;
      await nap();
    } else {
      Atomics.store(svc, Svc.WORKER_STATE, WorkerState.SLEEPING);
      // Re-checked after the announcement: see wakeWriter (src/ring/memory.ts) for why none is lost.
      // A request this thread cannot serve yet (an fsync while a sink's own thread holds its lock)
      // is looked at again after a nap, not in a spin.
      if (!requested()) await waitAsync(svc, Svc.WORKER_STATE, WorkerState.SLEEPING, Infinity);
      else await nap();
    }
    Atomics.store(svc, Svc.WORKER_STATE, WorkerState.RUNNING);
  }
  Atomics.store(svc, Svc.WORKER_STATE, WorkerState.EXITED);
  port.close();
}

run().catch(die);
