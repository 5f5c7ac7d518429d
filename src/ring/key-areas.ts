// Interned keys of producers that are not the ring's owner (a handle's producer thread, a sink
// opened in a worker thread). The owner defines its keys inside its records (KEY_DEF), and
// whoever consumes them keeps the definitions; that works for one producer, whose table can be
// handed to a new writer. A producer thread's table could not be: so each such producer takes a
// key area in the ring's own memory (slots.ts), writes a key's name there once, and sends only its
// id. Any consumer — the writer, a writer that replaces a dead one, the owner draining at exit,
// the main thread adopting a worker's ring — reads the name from the ring it consumes.
//
// One thread writes an area (the producer that took it); a name and its entry are written before
// the record that uses the id is published, and publishing is an atomic store that the consumer
// reads atomically, so a consumer that meets the id sees the name.

import { MAX_INTERNED_KEY_LENGTH } from './keys.js';
import type { RingViews } from './memory.js';
import { Ctl, KEY_AREA_BYTES, KEY_AREA_ENTRIES_OFFSET, KEY_AREA_KEYS, KEY_AREA_NAME_BYTES, KEY_AREA_NAMES_OFFSET, KEY_AREAS, KEY_AREAS_OFFSET } from './slots.js';

/** Header slots of an area (u32). */
const COUNT = 0;
const USED = 1;

function areaBase(area: number): number {
  return KEY_AREAS_OFFSET + (area - 1) * KEY_AREA_BYTES;
}

/** A producer's key area: it gives each new key an id of the area's block. */
export class KeyArea {
  /** The id of the area's first key: its block of ids (block 0 is the owner's). */
  readonly firstId: number;
  readonly #header: Uint32Array;
  readonly #entries: Uint32Array;
  readonly #names: Buffer;
  #count = 0;
  #used = 0;
  #full = false;

  private constructor(ring: RingViews, area: number) {
    const base = areaBase(area);
    this.firstId = area * KEY_AREA_KEYS;
    this.#header = new Uint32Array(ring.sab, base, 2);
    this.#entries = new Uint32Array(ring.sab, base + KEY_AREA_ENTRIES_OFFSET, KEY_AREA_KEYS);
    this.#names = Buffer.from(ring.sab, base + KEY_AREA_NAMES_OFFSET, KEY_AREA_NAME_BYTES);
  }

  /** Takes the ring's next free area for this thread; undefined once all KEY_AREAS are taken. */
  static take(ring: RingViews): KeyArea | undefined {
    const area = Atomics.add(ring.ctl, Ctl.KEY_AREAS_TAKEN, 1) + 1;
    return area <= KEY_AREAS ? new KeyArea(ring, area) : undefined;
  }

  /**
   * The id of a new key, its name written; -1 when the area has no room for it (the key is then
   * sent whole). `name` is well-formed and at most MAX_INTERNED_KEY_LENGTH long (the encoder checks).
   */
  add(name: string): number {
    if (this.#full) return -1;
    const k = this.#count;
    // Three bytes per UTF-16 unit at most.
    if (k === KEY_AREA_KEYS || this.#used + name.length * 3 > KEY_AREA_NAME_BYTES) {
      // An area that cannot take a short key will not take many more: stop looking.
      if (k === KEY_AREA_KEYS || KEY_AREA_NAME_BYTES - this.#used < MAX_INTERNED_KEY_LENGTH * 3) this.#full = true;
      return -1;
    }
    const at = this.#used;
    const len = this.#names.write(name, at, 'utf8');
    this.#entries[k] = (at << 8) | len;
    this.#used = at + len;
    this.#count = k + 1;
    Atomics.store(this.#header, USED, this.#used);
    Atomics.store(this.#header, COUNT, this.#count);
    return this.firstId + k;
  }
}

/** The name of key `id` (from KEY_AREA_KEYS on) in `ring`'s key areas; undefined when no producer
 *  defined it (a corrupt record). */
export function areaKeyName(ring: RingViews, id: number): string | undefined {
  const area = Math.floor(id / KEY_AREA_KEYS);
  if (area < 1 || area > KEY_AREAS) return undefined;
  const base = areaBase(area);
  const header = new Uint32Array(ring.sab, base, 2);
  const k = id - area * KEY_AREA_KEYS;
  if (k >= Atomics.load(header, COUNT)) return undefined;
  const entry = new Uint32Array(ring.sab, base + KEY_AREA_ENTRIES_OFFSET + k * 4, 1)[0]!;
  const at = base + KEY_AREA_NAMES_OFFSET + (entry >>> 8);
  return Buffer.from(ring.sab, at, entry & 0xff).toString('utf8');
}
