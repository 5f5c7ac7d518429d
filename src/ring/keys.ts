// Interned object keys. The encoder sends a key's bytes once, then a two-byte id; the reader
// keeps the key's quoted JSON form as bytes, so most keys cost neither encoding nor escaping.

/** Ids are u16 on the wire; 4096 also bounds the memory that events with ever-new keys can take. */
export const MAX_KEYS = 4096;
/** Long keys are rarely repeated keys (they are usually data used as keys): not worth a slot. */
export const MAX_INTERNED_KEY_LENGTH = 64;

export class KeyTable {
  /** Key text by id. */
  readonly names: string[] = [];
  /** `"key":` as UTF-8, by id. */
  readonly quotedBytes: Buffer[] = [];

  constructor(initial: readonly string[] = []) {
    for (let i = 0; i < initial.length; i++) this.define(i, initial[i]!);
  }

  get size(): number {
    return this.names.length;
  }

  define(id: number, name: string): void {
    if (this.names[id] === name) return;
    this.names[id] = name;
    this.quotedBytes[id] = Buffer.from(JSON.stringify(name) + ':');
  }

  /** Forget ids from `size` on: used when an encoding attempt that defined them is abandoned. */
  truncate(size: number): void {
    this.names.length = size;
    this.quotedBytes.length = size;
  }
}
