// The main thread's exit, for sinks opened in worker threads. Worker threads get no exit event of
// their own when the main thread ends the process: Node ends them after the main thread's 'exit'
// listeners. A worker still running then keeps writing (its writer thread too), so this waits,
// bounded, until each such sink's ring is written (src/ring/worker-rings.ts holds the mirrors it
// reads). A worker already terminated took its writer thread with it: its ring is adopted here,
// drained by the main thread with the same lock, repair and drain as any holder, into a segment
// opened again by path (the worker's descriptors went with it). The main thread learns such a
// ring from the announcement the worker's sink sent at open (a BroadcastChannel message, handled
// whenever the main thread's loop turned since); a worker's sink interns its keys in a key area
// of the ring (ring/key-areas.ts), which the consumer reads from the ring itself, so no key table
// needs handing over.

import * as fs from 'node:fs';
import { BroadcastChannel, isMainThread } from 'node:worker_threads';
import { segmentPath } from '../files/format.js';
import { readHolderSync } from '../files/lock-protocol.js';
import { KeyTable } from '../ring/keys.js';
import { ringViews, writerGone } from '../ring/memory.js';
import { CLOSED_FD, Ctl, Svc } from '../ring/slots.js';
import { awaitReadPos, freeEntry, openEntries, readMirror } from '../ring/worker-rings.js';
import { osThreadExists } from '../threads/os-thread.js';
import { RingConsumer, type ConsumerHooks } from '../writer/consumer.js';
import { heldBatch, holdFromOutside } from '../writer/hold.js';
import { compileRedaction } from '../writer/redact.js';
import type { ToMain } from './adopt-messages.js';

const CHANNEL = 'ringlog.worker-rings';
/** How long the main thread's exit waits for, or writes, worker-opened sinks, in total: the
 *  worker's writer normally needs milliseconds; this bounds a stuck disk. */
const EXIT_WAIT_MS = 2000;
/** Between looks at a ring that is still being written. */
const WAIT_SLICE_MS = 1;

type Opened = Extract<ToMain, { type: 'opened' }>;
const announced = new Map<number, Opened>();
let announcer: BroadcastChannel | undefined;

if (isMainThread) {
  const channel = new BroadcastChannel(CHANNEL);
  channel.onmessage = (e: unknown) => {
    const msg = (e as { data: ToMain }).data;
    if (msg.type === 'opened') announced.set(msg.entry, msg);
    else if (announced.get(msg.entry)?.generation === msg.generation) announced.delete(msg.entry);
  };
  // Listening must not keep the process alive.
  channel.unref();
  process.on('exit', endWorkerRings);
}

/** From a worker thread: tells the main thread where this sink's ring is. */
export function announce(msg: ToMain): void {
  if (isMainThread) return;
  if (announcer === undefined) {
    announcer = new BroadcastChannel(CHANNEL);
    announcer.unref();
  }
  announcer.postMessage(msg);
}

function say(text: string): void {
  process.stderr.write(`ringlog: ${text}\n`);
}

/** Main thread, 'exit': every worker-opened sink's ring written, by its writer or here. */
function endWorkerRings(): void {
  const deadline = Date.now() + EXIT_WAIT_MS;
  for (const entry of openEntries()) {
    for (;;) {
      const m = readMirror(entry);
      if (m === undefined || (m.readPos === m.writePos && !m.held)) break;
      if (!osThreadExists(m.ownerTid)) {
        adopt(entry, m.generation, deadline);
        break;
      }
      if (Date.now() >= deadline) {
        say(`a sink opened in a worker thread (${announced.get(entry)?.basePath ?? 'unknown path'}) was still writing when the main thread ended the process; what it had not written is lost`);
        break;
      }
      awaitReadPos(entry, m.readPos, WAIT_SLICE_MS);
    }
  }
}

/** Writes what a terminated worker's sink left in its ring, on this thread. */
function adopt(entry: number, generation: number, deadline: number): void {
  const a = announced.get(entry);
  if (a === undefined || a.generation !== generation) {
    say('a sink opened in a worker thread that was terminated left events unwritten, and its announcement had not reached the main thread');
    return;
  }
  // Only while the path is still this sink's: a later sink on it must not get these lines.
  let holder: string | undefined;
  try {
    holder = readHolderSync(a.lockPath)?.token;
  } catch {
    holder = undefined;
  }
  if (holder !== a.lockToken) {
    say(`"${a.basePath}": a sink of a terminated worker thread left events unwritten, and its path is no longer its own; they are lost`);
    return;
  }
  const ring = ringViews(a.sab);
  const { ctl } = ring;
  // A FIFO or a device could block this exit forever with no reader left: regular files only.
  try {
    if (!fs.statSync(segmentPath(a.basePath, Atomics.load(ctl, Ctl.SEGMENT))).isFile()) {
      say(`"${a.basePath}": a sink of a terminated worker thread left events unwritten in a file that is not a regular file; they are lost`);
      return;
    }
  } catch {
    // Gone: the drain makes it again, as the writer does.
  }
  const svc = new Int32Array(a.svc);
  // A writer that never started (no id yet) is not coming either: its thread went with the worker.
  const writerAlive = (): boolean => Atomics.load(svc, Svc.WRITER_ID) !== 0 && !writerGone(svc);
  if (!holdFromOutside(ctl, writerAlive, deadline)) {
    say(`the writer of "${a.basePath}" (a sink of a terminated worker thread) held its file past the exit's deadline; what it had not written is lost`);
    return;
  }
  // The worker's descriptors may have gone with it: the segment is opened again by path.
  Atomics.store(ctl, Ctl.FD, CLOSED_FD);
  let missing = false;
  const hooks: ConsumerHooks = {
    // Events too big for the ring were held in the worker's memory, gone with it.
    external: () => {
      missing = true;
      return undefined;
    },
    externalDone: () => {},
    fault: (err, lost) => say(`writing "${a.basePath}" for a terminated worker thread failed (${String((err as Error)?.message ?? err)}); ${lost} event(s) lost`),
    recovered: () => {},
  };
  try {
    const consumer = new RingConsumer(ring, new KeyTable(), a.basePath, a.rotateBytes, hooks, compileRedaction(a.redact));
    heldBatch(ctl, consumer, () => consumer.drain(true));
    consumer.writer.closeFd();
    if (missing) say(`"${a.basePath}": a big event of a terminated worker thread was held in its memory and is lost, with the events after it`);
  } catch (err) {
    say(`writing "${a.basePath}" for a terminated worker thread failed: ${String((err as Error)?.message ?? err)}`);
  }
  // Its owner is gone: the path is free again.
  try {
    if (readHolderSync(a.lockPath)?.token === a.lockToken) fs.unlinkSync(a.lockPath);
  } catch {
    // Left: stale, taken over by the next open.
  }
  freeEntry(entry, generation);
}
