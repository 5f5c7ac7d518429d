// Sinks opened in worker threads, as the main thread sees them (its exit: src/caller/adopt.ts).
// The main thread must see rings it was never sent, synchronously, at its exit: a small table of
// mirrors in one SharedArrayBuffer, made by the main thread's ringlog when it loads and handed to
// every worker started after that through worker_threads environment data (a SharedArrayBuffer
// clones as shared memory). A sink opened off the main thread takes an entry; whoever moves its
// ring's write or read position stores the new value in the entry too.

import { getEnvironmentData, isMainThread, setEnvironmentData } from 'node:worker_threads';
import { currentOsThreadId, osThreadExists } from '../threads/os-thread.js';
import { Ctl } from './slots.js';

const ENV_KEY = 'ringlog.worker-rings';
/** Sinks open at once in worker threads that the main thread's exit waits for; a sink beyond this
 *  works as before and is not waited for. 4,096 entries are 64 KiB. */
const ENTRIES = 4096;
/** Int32 slots per entry. */
const Entry = {
  /** FREE, TAKING or OPEN. */
  STATE: 0,
  /** Mirror of the ring's WRITE_POS. */
  WRITE_POS: 1,
  /** Mirror of the ring's READ_POS. */
  READ_POS: 2,
  /** 1 while the owner holds events outside the ring (its overflow queue, drops not yet marked). */
  HELD: 3,
  /** Kernel task id of the owner's thread (0: unknown), to tell a terminated one. */
  OWNER_TID: 4,
  /** Bumped each time the entry is taken, so an announcement of an earlier sink is told apart. */
  GENERATION: 5,
} as const;
const ENTRY_SLOTS = 6;
const FREE = 0;
const OPEN = 1;
/** Being filled in by its new owner: the main thread skips it (nothing is in its ring yet). */
const TAKING = 2;

function table(): Int32Array | undefined {
  const shared = getEnvironmentData(ENV_KEY);
  return shared instanceof SharedArrayBuffer ? new Int32Array(shared) : undefined;
}

let mirrors: Int32Array | undefined = table();
if (isMainThread && mirrors === undefined) {
  mirrors = new Int32Array(new SharedArrayBuffer(ENTRIES * ENTRY_SLOTS * 4));
  setEnvironmentData(ENV_KEY, mirrors.buffer as SharedArrayBuffer);
}

/** A worker-opened sink's entry: the slot numbers its mirrors live at. */
export interface Mirror {
  readonly table: Int32Array;
  readonly base: number;
  readonly entry: number;
  readonly generation: number;
}

/**
 * Takes an entry for a sink opened on this thread and records it in the ring (Ctl.MIRROR), unless
 * this is the main thread (its own exit writes its sinks), or no table reached this thread
 * (ringlog was not loaded on the main thread before this worker started), or the table is full.
 */
export function takeMirror(ctl: Int32Array): Mirror | undefined {
  if (isMainThread || mirrors === undefined) return undefined;
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < ENTRIES; i++) {
      const base = i * ENTRY_SLOTS;
      if (Atomics.compareExchange(mirrors, base + Entry.STATE, FREE, TAKING) !== FREE) continue;
      Atomics.store(mirrors, base + Entry.WRITE_POS, Atomics.load(ctl, Ctl.WRITE_POS));
      Atomics.store(mirrors, base + Entry.READ_POS, Atomics.load(ctl, Ctl.READ_POS));
      Atomics.store(mirrors, base + Entry.HELD, 0);
      Atomics.store(mirrors, base + Entry.OWNER_TID, currentOsThreadId());
      const generation = Atomics.add(mirrors, base + Entry.GENERATION, 1) + 1;
      Atomics.store(mirrors, base + Entry.STATE, OPEN);
      Atomics.store(ctl, Ctl.MIRROR, i + 1);
      return { table: mirrors, base, entry: i, generation };
    }
    // Full: entries of threads that ended with nothing left to write (terminated with an empty
    // ring) are freed, then one more look.
    if (pass === 0) reclaimDead(mirrors);
  }
  return undefined;
}

function reclaimDead(t: Int32Array): void {
  for (let i = 0; i < ENTRIES; i++) {
    const base = i * ENTRY_SLOTS;
    if (Atomics.load(t, base + Entry.STATE) !== OPEN) continue;
    const tid = Atomics.load(t, base + Entry.OWNER_TID);
    const drained = Atomics.load(t, base + Entry.READ_POS) === Atomics.load(t, base + Entry.WRITE_POS) && Atomics.load(t, base + Entry.HELD) === 0;
    if (tid !== 0 && drained && !osThreadExists(tid)) Atomics.compareExchange(t, base + Entry.STATE, OPEN, FREE);
  }
}

/** The entry of a ring whose sink took one, as seen from this thread (its writer, a producer). */
export function ringMirror(ctl: Int32Array): Mirror | undefined {
  const entry = Atomics.load(ctl, Ctl.MIRROR);
  if (entry === 0 || mirrors === undefined) return undefined;
  const base = (entry - 1) * ENTRY_SLOTS;
  return { table: mirrors, base, entry: entry - 1, generation: Atomics.load(mirrors, base + Entry.GENERATION) };
}

export function mirrorWritePos(m: Mirror, pos: number): void {
  Atomics.store(m.table, m.base + Entry.WRITE_POS, pos);
}

export function mirrorReadPos(m: Mirror, pos: number): void {
  Atomics.store(m.table, m.base + Entry.READ_POS, pos);
}

export function mirrorHeld(m: Mirror, held: boolean): void {
  Atomics.store(m.table, m.base + Entry.HELD, held ? 1 : 0);
}

export function releaseMirror(m: Mirror, ctl: Int32Array): void {
  Atomics.store(ctl, Ctl.MIRROR, 0);
  Atomics.store(m.table, m.base + Entry.STATE, FREE);
}

/** What the main thread reads of an open entry. */
export interface MirroredRing {
  readonly entry: number;
  readonly writePos: number;
  readonly readPos: number;
  readonly held: boolean;
  readonly ownerTid: number;
  readonly generation: number;
}

/** The entries open now (main thread). */
export function openEntries(): number[] {
  const open: number[] = [];
  if (mirrors === undefined) return open;
  for (let i = 0; i < ENTRIES; i++) if (Atomics.load(mirrors, i * ENTRY_SLOTS + Entry.STATE) === OPEN) open.push(i);
  return open;
}

/** What the mirrors of `entry` say now, or undefined once it is free. */
export function readMirror(entry: number): MirroredRing | undefined {
  const t = mirrors;
  const base = entry * ENTRY_SLOTS;
  if (t === undefined || Atomics.load(t, base + Entry.STATE) !== OPEN) return undefined;
  return {
    entry,
    writePos: Atomics.load(t, base + Entry.WRITE_POS),
    readPos: Atomics.load(t, base + Entry.READ_POS),
    held: Atomics.load(t, base + Entry.HELD) === 1,
    ownerTid: Atomics.load(t, base + Entry.OWNER_TID),
    generation: Atomics.load(t, base + Entry.GENERATION),
  };
}

/** Waits (blocking) until entry's READ_POS mirror moves from `readPos`, or `ms` passes. */
export function awaitReadPos(entry: number, readPos: number, ms: number): void {
  if (mirrors !== undefined && ms > 0) Atomics.wait(mirrors, entry * ENTRY_SLOTS + Entry.READ_POS, readPos, ms);
}

/** Frees the entry of a sink the main thread wrote itself (its owner is gone), if it is still
 *  that sink's. */
export function freeEntry(entry: number, generation: number): void {
  const base = entry * ENTRY_SLOTS;
  if (mirrors !== undefined && Atomics.load(mirrors, base + Entry.GENERATION) === generation) Atomics.compareExchange(mirrors, base + Entry.STATE, OPEN, FREE);
}
