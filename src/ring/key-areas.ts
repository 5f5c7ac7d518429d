// Interned keys of producers that are not the ring's owner (a handle's producer thread, a sink
// opened in a worker thread). The owner defines its keys inside its records (KEY_DEF), and
// whoever consumes them keeps the definitions; that works for one producer, whose table can be
// handed to a new writer. A producer thread's table could not be: so each such thread takes a key
// area in the ring's own memory (slots.ts), writes a key's name there once, and sends only its id. Any consumer — the writer, a writer that replaces a dead one, the owner draining at exit,
// the main thread adopting a worker's ring — reads the name from the ring it consumes.
//
// One thread writes an area (the one that took it); a name and its entry are written before
// the record that uses the id is published, and publishing is an atomic store that the consumer
// reads atomically, so a consumer that meets the id sees the name.

import { MAX_INTERNED_KEY_LENGTH } from './keys.js';
import { threadId } from 'node:worker_threads';
import type { RingViews } from './memory.js';
import { Ctl, KEY_AREA_BYTES, KEY_AREA_ENTRIES_OFFSET, KEY_AREA_KEYS, KEY_AREA_NAME_BYTES, KEY_AREA_NAMES_OFFSET, KEY_AREAS, KEY_AREAS_OFFSET } from './slots.js';

/** Header slots of an area (u32). */
const COUNT = 0;
const USED = 1;
/** threadId + 1 of the thread that took it (threadIds are never reused within a process). */
const OWNER = 2;

function areaBase(area: number): number {
  return KEY_AREAS_OFFSET + (area - 1) * KEY_AREA_BYTES;
}

/** The area's header slots (COUNT, USED, OWNER, padding). */
function areaHeader(sab: SharedArrayBuffer, area: number): Uint32Array {
  return new Uint32Array(sab, areaBase(area), 4);
}

/**
 * This thread's key area in one ring: the area is taken at the first key that needs it (a handle
 * connected but never logging takes none), and a thread has one per ring for good — every producer
 * it makes for that ring (a registry's route that comes back, a handle connected again, whichever
 * copy of the ring's memory object it received) shares it and its ids, so areas are not used up
 * by producers that come and go.
 */
export class KeyArea {
  /** Ids by key name, for every encoder of this thread writing into the ring. */
  readonly ids = new Map<string, number>();
  readonly #ring: RingViews;
  /** threadId + 1 of the thread it writes for. */
  readonly #owner: number;
  /** 0 until taken. */
  #area = 0;
  #firstId = 0;
  #header: Uint32Array | undefined;
  #entries: Uint32Array | undefined;
  #names: Buffer | undefined;
  #full = false;

  private constructor(ring: RingViews, owner: number) {
    this.#ring = ring;
    this.#owner = owner;
  }

  /** This thread's key area of `ring`. `thread` is for tests, which play several threads in one. */
  static of(ring: RingViews, thread = threadId): KeyArea {
    let mine = byRing.get(ring.sab);
    if (mine === undefined) byRing.set(ring.sab, (mine = new Map()));
    let area = mine.get(thread);
    if (area === undefined) mine.set(thread, (area = new KeyArea(ring, thread + 1)));
    return area;
  }

  /** The area's number in the ring (1..KEY_AREAS), 0 while none is taken or none was free. */
  get area(): number {
    return this.#area;
  }

  /**
   * The id of a new key, its name written; -1 when there is no room for it (no area was free, or
   * this one is full: the key is then sent whole). `name` is well-formed and at most
   * MAX_INTERNED_KEY_LENGTH long (the encoder checks).
   */
  add(name: string): number {
    if (this.#full) return -1;
    if (this.#area === 0 && !this.#take()) return -1;
    const header = this.#header!;
    // Read from the area, not kept here: two objects of this thread may write it (two copies of
    // the ring's memory object received by message), one after the other, never at once.
    const k = Atomics.load(header, COUNT);
    const used = Atomics.load(header, USED);
    // Three bytes per UTF-16 unit at most.
    if (k === KEY_AREA_KEYS || used + name.length * 3 > KEY_AREA_NAME_BYTES) {
      // An area that cannot take a long key will not take many more: stop looking.
      if (k === KEY_AREA_KEYS || KEY_AREA_NAME_BYTES - used < MAX_INTERNED_KEY_LENGTH * 3) this.#full = true;
      return -1;
    }
    const len = this.#names!.write(name, used, 'utf8');
    this.#entries![k] = (used << 8) | len;
    Atomics.store(header, USED, used + len);
    // Last: a consumer takes an id below COUNT for a whole name.
    Atomics.store(header, COUNT, k + 1);
    const id = this.#firstId + k;
    this.ids.set(name, id);
    return id;
  }

  #take(): boolean {
    const { ctl } = this.#ring;
    const me = this.#owner;
    // Each postMessage of a ring gives the thread another object for the same memory: the area
    // this thread took through an earlier one is found by its owner mark.
    const taken = Math.min(Atomics.load(ctl, Ctl.KEY_AREAS_TAKEN), KEY_AREAS);
    for (let area = 1; area <= taken; area++) {
      if (Atomics.load(this.#headerOf(area), OWNER) === me) return this.#use(area, true);
    }
    // Counted up by every taker, never given back; compared before adding so the count cannot run
    // past the areas (and wrap) however many threads come and go.
    for (;;) {
      const n = Atomics.load(ctl, Ctl.KEY_AREAS_TAKEN);
      if (n >= KEY_AREAS) {
        this.#full = true;
        return false;
      }
      if (Atomics.compareExchange(ctl, Ctl.KEY_AREAS_TAKEN, n, n + 1) !== n) continue;
      Atomics.store(this.#headerOf(n + 1), OWNER, me);
      return this.#use(n + 1, false);
    }
  }

  #headerOf(area: number): Uint32Array {
    return areaHeader(this.#ring.sab, area);
  }

  /** Writes into `area` from now on; `again`: this thread's own from before, its keys reloaded. */
  #use(area: number, again: boolean): boolean {
    const { sab } = this.#ring;
    const base = areaBase(area);
    this.#area = area;
    this.#firstId = area * KEY_AREA_KEYS;
    this.#header = areaHeader(sab, area);
    this.#entries = new Uint32Array(sab, base + KEY_AREA_ENTRIES_OFFSET, KEY_AREA_KEYS);
    this.#names = Buffer.from(sab, base + KEY_AREA_NAMES_OFFSET, KEY_AREA_NAME_BYTES);
    if (again) {
      const count = Atomics.load(this.#header, COUNT);
      for (let k = 0; k < count; k++) {
        const e = this.#entries[k]!;
        this.ids.set(this.#names.toString('utf8', e >>> 8, (e >>> 8) + (e & 0xff)), this.#firstId + k);
      }
    }
    return true;
  }
}

/** This thread's areas, by ring memory object: a ring let go of takes its entry with it. */
const byRing = new WeakMap<SharedArrayBuffer, Map<number, KeyArea>>();

/** The name of key `id` (from KEY_AREA_KEYS on) in `ring`'s key areas; undefined when no producer
 *  defined it (a corrupt record). */
export function areaKeyName(ring: RingViews, id: number): string | undefined {
  const area = Math.floor(id / KEY_AREA_KEYS);
  if (area < 1 || area > KEY_AREAS) return undefined;
  const base = areaBase(area);
  const k = id - area * KEY_AREA_KEYS;
  if (k >= Atomics.load(areaHeader(ring.sab, area), COUNT)) return undefined;
  const entry = new Uint32Array(ring.sab, base + KEY_AREA_ENTRIES_OFFSET + k * 4, 1)[0]!;
  const at = base + KEY_AREA_NAMES_OFFSET + (entry >>> 8);
  return Buffer.from(ring.sab, at, entry & 0xff).toString('utf8');
}
