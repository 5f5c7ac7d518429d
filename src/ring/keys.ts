// Interned object keys. The encoder sends a key's bytes once, then a two-byte id; the reader
// keeps the key's quoted JSON form as bytes, so most keys cost neither encoding nor escaping.

/** Ids are u16 on the wire; 4096 also bounds the memory that events with ever-new keys can take.
 *  A power of two: ids come in blocks of this many, block 0 the owner's (ring/key-areas.ts). */
export const MAX_KEYS = 4096;
/** log2(MAX_KEYS): an id's block is id >>> BLOCK_SHIFT. */
const BLOCK_SHIFT = 12;
/** Long keys are rarely repeated keys (they are usually data used as keys): not worth a slot. */
export const MAX_INTERNED_KEY_LENGTH = 64;

export class KeyTable {
  /** Key text by id (the owner's ids, below MAX_KEYS). */
  readonly names: string[] = [];
  /** `"key":` as UTF-8, by id. */
  readonly quotedBytes: Buffer[] = [];
  /** Where ids from MAX_KEYS on are defined (key-areas.ts): set by the ring's consumer. */
  areas: ((id: number) => string | undefined) | undefined;
  /** Names and quoted forms of those ids, read from the areas on first use: by area (the id's
   *  block, from 1), then by the key's place in it, so each array stays dense (an array indexed in the
   *  thousands from empty would fall back to a dictionary). */
  readonly #areaNames: string[][] = [];
  readonly #areaQuoted: Buffer[][] = [];

  constructor(initial: readonly string[] = []) {
    for (let i = 0; i < initial.length; i++) this.define(i, initial[i]!);
  }

  get size(): number {
    return this.names.length;
  }

  define(id: number, name: string): void {
    if (this.names[id] === name) return;
    this.names[id] = name;
    this.quotedBytes[id] = quotedKey(name);
  }

  /** `"key":` of key `id`, whichever producer defined it. */
  quotedOf(id: number): Buffer {
    if (id < MAX_KEYS) return this.quotedBytes[id]!;
    return this.#areaQuoted[id >>> BLOCK_SHIFT]?.[id & (MAX_KEYS - 1)] ?? this.#fromArea(id).quoted;
  }

  /** The name of key `id`, whichever producer defined it. */
  nameOf(id: number): string {
    if (id < MAX_KEYS) return this.names[id]!;
    return this.#areaNames[id >>> BLOCK_SHIFT]?.[id & (MAX_KEYS - 1)] ?? this.#fromArea(id).name;
  }

  /** An area's key, kept: ids of an area are never given to another key while the ring lives. */
  #fromArea(id: number): { name: string; quoted: Buffer } {
    const name = this.areas?.(id);
    if (name === undefined) throw new Error(`ringlog: corrupt record: key id ${id} was never defined`);
    const quoted = quotedKey(name);
    const area = id >>> BLOCK_SHIFT;
    const k = id & (MAX_KEYS - 1);
    // Filled up to k so the array stays packed: an area's ids are met roughly in order.
    const names = (this.#areaNames[area] ??= []);
    const quotes = (this.#areaQuoted[area] ??= []);
    while (names.length < k) {
      names.push(undefined as unknown as string);
      quotes.push(undefined as unknown as Buffer);
    }
    names[k] = name;
    quotes[k] = quoted;
    return { name, quoted };
  }

  /** Forget ids from `size` on: used when an encoding attempt that defined them is abandoned. */
  truncate(size: number): void {
    this.names.length = size;
    this.quotedBytes.length = size;
  }
}

/** `"name":` as UTF-8: how a key is written in a line. */
export function quotedKey(name: string): Buffer {
  return Buffer.from(JSON.stringify(name) + ':');
}
