// Caller-side snapshot of an event into ring records (src/ring/records.ts). This is the only work besides
// stamping that handleEvent does on the caller's thread, so it is written for speed: no
// allocation per value, short ASCII strings copied by a JS loop, longer ones by one native call,
// keys interned to two-byte ids. Value semantics follow JSON.stringify exactly (toJSON, boxed
// primitives, skipped undefined/functions/symbols), plus a documented substitute for each value
// JSON.stringify cannot write (see README, "Values JSON cannot represent").

import { ENVELOPE_KEYS, ENVELOPE_KEYS_WITH_EXECUTION, renamedKey } from '../files/format.js';
import { alignRecord, Flag, Kind, RECORD_HEADER, Tag, wideAt } from '../ring/records.js';
import type { KeyArea } from '../ring/key-areas.js';
import { KeyTable, MAX_INTERNED_KEY_LENGTH, MAX_KEYS } from '../ring/keys.js';
import { fast, type FastBuffer } from '../node-buffer.js';

/**
 * The largest record the encoder makes. 2^29 is V8's string length limit (2^29 - 24 UTF-16
 * units), the largest JSON.stringify can return: an event over it is rejected about where
 * JSON.stringify would throw, and the caller's memory for one snapshot stays bounded.
 */
export const MAX_RECORD_BYTES = 2 ** 29;

/** Below this length a JS loop copies ASCII faster than the native UTF-8 writer's call overhead
 *  (bench/string-copy on this machine: 8 chars 14 ns vs 40 ns, even at 24, 48 chars 100 vs 45). */
const SHORT_STRING = 24;
/** Room every value may use without a check: tag + 8-byte number, with slack. */
const VALUE_SLACK = 16;

const QUOTE = 0x22;

export const CIRCULAR = '[Circular]';
export const MAX_DEPTH_MARK = '[MaxDepth]';

/** Where the encoder writes: the ring's data region or a private scratch buffer. */
export interface Target {
  u8: Uint8Array;
  dv: DataView;
  buf: FastBuffer;
}

/**
 * Snapshots events into ring records, each exactly once: a record that outgrows the room it was
 * given (the ring's free bytes up to its wrap point) moves, bytes so far and all, into the
 * growable scratch buffer and goes on there. Getters, toJSON and Proxy traps therefore run once
 * per event wherever it lands, and so does any handleEvent they make.
 */
export class EventEncoder {
  readonly keys: KeyTable;
  /** Ids by key name: the table's, or the key area's (shared by this thread's encoders of a ring). */
  private readonly ids: Map<string, number>;
  private u8!: Uint8Array;
  private dv!: DataView;
  private buf!: FastBuffer;
  pos = 0;
  private limit = 0;
  /** Where the record being made starts in the current target. */
  start = 0;
  #wide = HOST_LITTLE_ENDIAN;
  #slack = true;
  /**
   * Whether the writer keeps up (writerHasSlack), set per event by the producer. While it does, the
   * caller leaves it work it can take: making the UTF-8 of non-ASCII text (wideString; never on a
   * big-endian host, where the writer's Uint16Array would read ucs2Write's little-endian units
   * swapped). While it does not, the caller does that work itself, and formats arrays of numbers
   * too (numberText), so under a sustained load the two threads share the work.
   */
  get writerSlack(): boolean {
    return this.#slack;
  }
  set writerSlack(on: boolean) {
    this.#slack = on;
    this.#wide = on && HOST_LITTLE_ENDIAN;
  }
  /** True once the record moved into scratch: it is then at [0, pos) of `scratch`. */
  spilled = false;
  private readonly stack: object[] = [];
  private keysMark = 0;
  /** Someone made a property of Object.prototype enumerable: for-in would see it, JSON does not. */
  private protoEnumerable = false;

  constructor(
    readonly maxDepth: number,
    readonly scratch: Scratch,
    keys = new KeyTable(),
    readonly maxRecordBytes = MAX_RECORD_BYTES,
    /**
     * Where keys are interned: undefined for the ring's owner (ids defined inside its records, up
     * to MAX_KEYS); this thread's key area of the ring for any other producer (ring/key-areas.ts:
     * its ids would clash with the owner's, and no consumer could be handed its table), whose
     * keys go whole once no area is left; null to send every key whole.
     */
    readonly area?: KeyArea | null,
  ) {
    this.keys = keys;
    this.ids = area ? area.ids : new Map();
    for (let i = 0; i < keys.size; i++) this.ids.set(keys.names[i]!, i);
  }

  /** Point the encoder at [start, limit) of a target before encoding one record; without a
   *  target, the record goes straight into scratch. */
  begin(t?: Target, start = 0, limit = 0): void {
    if (t === undefined) {
      this.useScratch();
      start = 0;
      limit = this.scratch.size;
    } else {
      this.u8 = t.u8;
      this.dv = t.dv;
      this.buf = t.buf;
      this.spilled = false;
    }
    this.pos = start;
    this.start = start;
    this.limit = limit;
    if (this.stack.length > 0) this.stack.length = 0; // only after an aborted attempt
    this.keysMark = this.keys.size;
    this.protoEnumerable = hasEnumerable(Object.prototype);
    this.textBudget = NUMBER_TEXT_BUDGET;
    // The producer says, after begin(), whether the writer is behind; until then it is not.
    this.writerSlack = true;
  }

  /** Undo the key definitions of an attempt that will not be published. */
  abandon(): void {
    const names = this.keys.names;
    for (let id = this.keysMark; id < names.length; id++) this.ids.delete(names[id]!);
    this.keys.truncate(this.keysMark);
  }

  /** Forgets every interned key: later records define again what they use. */
  resetKeys(): void {
    // An area's definitions are in the ring, readable by any consumer: nothing to forget.
    if (this.area !== undefined) return;
    this.ids.clear();
    this.keys.truncate(0);
  }

  /** An EVENT record. `body` must already be a non-array object (the sink checks). */
  event(index: number, ts: number, frameDepth: unknown, executionId: string | undefined, body: object): void {
    this.envelope(Kind.EVENT, index, ts, frameDepth, executionId);
    if (body instanceof JsonText) {
      // UTF-8 cannot carry a lone surrogate: as the \udXXX escape JSON.stringify would write (inside
      // a JSON string, where the only valid place for one is, the same character).
      const text = body.text;
      this.longString(text.isWellFormed() ? text : escapeLoneSurrogates(text), Tag.JSON_OBJECT);
      this.finish();
      return;
    }
    this.stack.push(body);
    // The envelope's keys: an event's own field by such a name is renamed (see renamed()).
    this.objectBody(body, Object.getPrototypeOf(body), 1, executionId === undefined ? ENVELOPE_KEYS : ENVELOPE_KEYS_WITH_EXECUTION);
    this.stack.pop();
    this.finish();
  }

  /** A REJECTED record: the event could not be snapshotted; `reason` says why. */
  rejected(index: number, ts: number, frameDepth: unknown, executionId: string | undefined, reason: string): void {
    this.envelope(Kind.REJECTED, index, ts, frameDepth, executionId);
    this.string(reason);
    this.finish();
  }

  /** Header and envelope fields shared by EVENT and REJECTED. */
  private envelope(kind: number, index: number, ts: number, frameDepth: unknown, executionId: string | undefined): void {
    this.room(RECORD_HEADER + 16 + VALUE_SLACK);
    const start = this.start;
    this.u8[start + 4] = kind;
    this.u8[start + 5] = executionId === undefined ? 0 : Flag.EXECUTION_ID;
    this.dv.setUint16(start + 6, 0, true);
    this.dv.setFloat64(start + RECORD_HEADER, index, true);
    this.dv.setFloat64(start + RECORD_HEADER + 8, ts, true);
    this.pos = start + RECORD_HEADER + 16;
    this.frameDepth(frameDepth);
    if (executionId !== undefined) this.string(executionId);
  }

  private finish(): void {
    const used = this.pos - this.start;
    const len = alignRecord(used);
    // Room first: it may move the record (and so its start) into scratch.
    this.room(len - used);
    const end = this.start + len;
    // Zeroed padding: a record's bytes never depend on what the buffer held before.
    for (let p = this.pos; p < end; p++) this.u8[p] = 0;
    this.dv.setUint32(this.start, len, true);
    this.pos = end;
  }

  /** Makes sure `n` more bytes fit, moving the record into scratch (or growing it) if not. */
  private room(n: number): void {
    if (this.pos + n > this.limit) this.overflow(n);
  }

  private overflow(n: number): void {
    const used = this.pos - this.start;
    if (used + n > this.maxRecordBytes) throw new RangeError(`the event's snapshot would exceed ${limitText(this.maxRecordBytes)}`);
    const scratch = this.scratch;
    if (!this.spilled) {
      scratch.ensure(used + n, 0);
      scratch.u8.set(this.u8.subarray(this.start, this.pos), 0);
      this.useScratch();
      this.start = 0;
      this.pos = used;
    } else {
      scratch.ensure(used + n, used);
      this.useScratch();
    }
    this.limit = scratch.size;
  }

  private useScratch(): void {
    const scratch = this.scratch;
    this.u8 = scratch.u8;
    this.dv = scratch.dv;
    this.buf = scratch.buf;
    this.spilled = true;
  }

  private frameDepth(v: unknown): void {
    if (typeof v === 'number') this.number(v);
    else this.u8[this.pos++] = Tag.NULL;
  }

  private number(v: number): void {
    if ((v | 0) === v) {
      this.u8[this.pos] = Tag.I32;
      this.dv.setInt32(this.pos + 1, v, true);
      this.pos += 5;
    } else {
      this.u8[this.pos] = Tag.F64;
      this.dv.setFloat64(this.pos + 1, v, true);
      this.pos += 9;
    }
  }

  private string(s: string): void {
    const n = s.length;
    if (n < SHORT_STRING) {
      // Worst case is 3 bytes per UTF-16 unit; checked once so the loop needs no check.
      this.room(5 + n * 3);
      const start = this.pos;
      const u8 = this.u8;
      let p = start + 5;
      for (let i = 0; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) return this.#wide ? this.wideString(s) : this.longString(s, Tag.STR);
        u8[p++] = c;
      }
      u8[start] = Tag.STR;
      this.dv.setUint32(start + 1, n, true);
      this.pos = p;
      return;
    }
    this.longString(s, Tag.STR);
  }

  private longString(s: string, tag: number): void {
    const wide = tag === Tag.STR && this.#wide && s.length <= WIDE_MAX_UNITS;
    if (wide && looksWide(s)) return this.wideString(s);
    if (this.pos + 5 + s.length * 3 > this.limit) {
      // Worst case does not fit: measure exactly before moving anything.
      this.room(5 + Buffer.byteLength(s, 'utf8'));
    }
    const start = this.pos;
    const written = this.buf.utf8Write(s, start + 5, this.limit - start - 5);
    if (tag === Tag.STR && written !== s.length) {
      // Non-ASCII text the sampling missed. More than one extra UTF-8 byte per 8 characters: its
      // code units as they are (no surrogate check here either). Mostly ASCII, or UTF-8 wanted:
      // UTF-8 is half the bytes, but it cannot carry a lone surrogate, which JSON.stringify writes
      // as a \udXXX escape: such a string goes as its escaped text, written verbatim.
      if (wide && written - s.length > s.length >>> 3) return this.wideString(s);
      if (!s.isWellFormed()) return this.longString(JSON.stringify(s), Tag.RAW);
    }
    this.u8[start] = tag;
    this.dv.setUint32(start + 1, written, true);
    this.pos = start + 5 + written;
  }

  /**
   * A string with non-ASCII text, as its UTF-16 code units (Tag.STR16): one copy of what V8 holds
   * where UTF-8 would cost a transcoding pass plus a scan for lone surrogates (bench/string-copy.ts,
   * 256 characters of mixed scripts: 82 ns against 783, and JSON.stringify's 730). The writer
   * thread makes the UTF-8.
   */
  private wideString(s: string): void {
    const bytes = 2 * s.length;
    this.room(6 + bytes);
    const start = this.pos;
    this.u8[start] = Tag.STR16;
    this.dv.setUint32(start + 1, s.length, true);
    // Even from the record's start, which is RECORD_ALIGN-aligned wherever the record goes.
    const units = this.start + wideAt(start - this.start);
    this.u8[start + 5] = 0;
    this.buf.ucs2Write(s, units, bytes);
    this.pos = units + bytes;
  }

  private key(k: string): void {
    this.room(VALUE_SLACK);
    const id = this.ids.get(k);
    if (id !== undefined) {
      this.u8[this.pos] = Tag.KEY_ID;
      this.dv.setUint16(this.pos + 1, id, true);
      this.pos += 3;
      return;
    }
    if (this.area !== undefined) return this.areaKey(k);
    const newId = this.keys.size;
    if (newId < MAX_KEYS && k.length <= MAX_INTERNED_KEY_LENGTH && k.isWellFormed()) {
      this.room(5 + k.length * 3);
      const start = this.pos;
      const written = this.buf.utf8Write(k, start + 5);
      this.u8[start] = Tag.KEY_DEF;
      this.dv.setUint16(start + 1, newId, true);
      this.dv.setUint16(start + 3, written, true);
      this.pos = start + 5 + written;
      this.ids.set(k, newId);
      this.keys.define(newId, k);
      return;
    }
    this.inlineKey(k);
  }

  /** A new key of a producer with a key area: its name goes into the area once, records carry
   *  its id. Definitions there stay valid for good, so an abandoned record undoes none. */
  private areaKey(k: string): void {
    const id = this.area !== null && k.length <= MAX_INTERNED_KEY_LENGTH && k.isWellFormed() ? this.area!.add(k) : -1;
    if (id < 0) return this.inlineKey(k);
    this.u8[this.pos] = Tag.KEY_ID;
    this.dv.setUint16(this.pos + 1, id, true);
    this.pos += 3;
  }

  /** A key not interned (the table is full, or it is long or malformed): sent whole, as its
   *  quoted JSON text, which also carries lone surrogates. Events with ever-new keys (10^6 of them)
   *  land here for almost every key, so plain short ASCII skips JSON.stringify's allocation. */
  private inlineKey(k: string): void {
    const n = k.length;
    if (n <= MAX_INTERNED_KEY_LENGTH) {
      this.room(7 + n);
      const start = this.pos;
      const u8 = this.u8;
      let p = start + 6;
      for (let i = 0; i < n; i++) {
        const c = k.charCodeAt(i);
        // Control characters, '"' and '\\' need escapes, non-ASCII needs UTF-8: the general path.
        if (c < 0x20 || c === 0x22 || c === 0x5c || c >= 0x80) return this.longString(JSON.stringify(k), Tag.KEY_INLINE);
        u8[p++] = c;
      }
      u8[start] = Tag.KEY_INLINE;
      this.dv.setUint32(start + 1, n + 2, true);
      u8[start + 5] = QUOTE;
      u8[p++] = QUOTE;
      this.pos = p;
      return;
    }
    this.longString(JSON.stringify(k), Tag.KEY_INLINE);
  }

  /** JSON.stringify's SerializeJSONProperty step 2: toJSON. Unboxing (step 4) is in object(),
   *  which reads the prototype once for it and for the walk. */
  private resolve(v: unknown, key: string | number): unknown {
    if ((typeof v === 'object' && v !== null) || typeof v === 'bigint') {
      const toJSON = (v as { toJSON?: unknown }).toJSON;
      if (typeof toJSON === 'function') v = toJSON.call(v, typeof key === 'number' ? String(key) : key);
    }
    return v;
  }

  private value(v: unknown, depth: number): void {
    this.room(VALUE_SLACK);
    switch (typeof v) {
      case 'string':
        return this.string(v);
      case 'number':
        return this.number(v);
      case 'boolean':
        this.u8[this.pos++] = v ? Tag.TRUE : Tag.FALSE;
        return;
      case 'bigint':
        // JSON.stringify throws on BigInt; ringlog writes its exact decimal digits as a string.
        return this.string(v.toString());
      case 'object':
        if (v === null) {
          this.u8[this.pos++] = Tag.NULL;
          return;
        }
        return this.object(v, depth);
      default:
        // undefined, functions and symbols: only reach here inside arrays, where JSON writes null.
        this.u8[this.pos++] = Tag.NULL;
    }
  }

  private object(o: object, depth: number): void {
    const proto: unknown = Object.getPrototypeOf(o);
    if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) {
      // Boxed primitives are written as their primitive, as JSON.stringify does.
      if (o instanceof Number) return this.number(Number(o));
      if (o instanceof String) return this.string(String(o));
      if (o instanceof Boolean || o instanceof BigInt) return this.value(o.valueOf(), depth);
    }
    if (depth >= this.maxDepth) return this.string(MAX_DEPTH_MARK);
    const stack = this.stack;
    for (let i = 0; i < stack.length; i++) if (stack[i] === o) return this.string(CIRCULAR);
    stack.push(o);
    if (Array.isArray(o)) {
      const n = o.length;
      // Every element takes at least a byte, holes included: an array too long for any snapshot
      // (new Array(1e9)) fails here at once, as JSON.stringify fails, instead of walking it.
      if (this.pos - this.start + n > this.maxRecordBytes) {
        throw new RangeError(`an array of length ${n} would exceed the snapshot limit of ${limitText(this.maxRecordBytes)}`);
      }
      if (!this.#slack && n >= NUMBER_TEXT_MIN && n <= NUMBER_TEXT_MAX && this.textBudget > 0) this.numberText(o, n, depth);
      else {
        this.arrayHead(n);
        for (let i = 0; i < n; i++) this.value(this.resolve(o[i], i), depth + 1);
      }
    } else {
      this.objectBody(o, proto, depth);
    }
    stack.pop();
  }

  private arrayHead(n: number): void {
    this.u8[this.pos] = Tag.ARR;
    this.dv.setUint32(this.pos + 1, n, true);
    this.pos += 5;
  }

  /**
   * An array, while the writer is behind: if every element is a number (embeddings, token ids),
   * its JSON text, formatted here by JSON.stringify (Tag.RAW), so the writer only copies it — the
   * same text the writer would make. Each element is read once: at the first one that is not a
   * number, the ones read so far are written as numbers and the walk goes on from there. Text that
   * would take more than 1.5× the record's bytes (full-precision doubles take 2.3×) goes as
   * numbers too: a record must not grow much, nor past what fits the ring, because the writer was
   * behind when it was logged.
   */
  private numberText(o: unknown[], n: number, depth: number): void {
    const nums = this.nums;
    nums.length = n;
    let bytes = 5;
    for (let i = 0; i < n; i++) {
      const v = o[i];
      if (typeof v === 'number') {
        nums[i] = v;
        bytes += (v | 0) === v ? 5 : 9;
        continue;
      }
      return this.numbersThen(o, n, i, depth);
    }
    // JSON.stringify(nums) would call a toJSON the user put on Array.prototype or Object.prototype
    // (resolve() already called it for the array): the numbers go as numbers then.
    const text = 'toJSON' in nums ? undefined : JSON.stringify(nums);
    if (text === undefined || text.length > bytes * NUMBER_TEXT_GROWTH || text.length > this.textBudget) return this.numbersThen(o, n, n, depth);
    this.textBudget -= text.length;
    this.longString(text, Tag.RAW);
  }

  /** The array as numbers: the first `read` elements from `nums`, the rest walked as usual. */
  private numbersThen(o: unknown[], n: number, read: number, depth: number): void {
    const nums = this.nums;
    this.room(5 + 9 * read);
    this.arrayHead(n);
    for (let k = 0; k < read; k++) this.number(nums[k]!);
    for (let k = read; k < n; k++) this.value(this.resolve(o[k], k), depth + 1);
  }

  /** Bytes of number text numberText may still make in this record: bounds how much bigger a
   *  record can get than its binary form (reset by begin()). */
  private textBudget = NUMBER_TEXT_BUDGET;

  /** Reused by numberText(). */
  private readonly nums: number[] = [];

  /** `envelope`: at the top level, the keys the line's envelope already has. */
  private objectBody(o: object, proto: unknown, depth: number, envelope?: readonly string[]): void {
    this.room(1);
    this.u8[this.pos++] = Tag.OBJ;
    if ((proto === Object.prototype || proto === null) && !this.protoEnumerable) {
      // for-in walks V8's enum cache without allocating (bench: ~20 ns vs ~60 ns per event for
      // Object.keys); on a plain object it yields exactly Object.keys' own enumerable keys.
      for (const k in o) this.entry(o, k, depth, envelope);
    } else {
      const keys = Object.keys(o);
      for (let i = 0; i < keys.length; i++) this.entry(o, keys[i]!, depth, envelope);
    }
    this.room(1);
    this.u8[this.pos++] = Tag.END;
  }

  private entry(o: object, k: string, depth: number, envelope: readonly string[] | undefined): void {
    const v = this.resolve((o as Record<string, unknown>)[k], k);
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return;
    if (envelope !== undefined && envelope.includes(k)) this.longString(JSON.stringify(renamed(k, o)), Tag.KEY_INLINE);
    else this.key(k);
    this.value(v, depth + 1);
  }
}

function limitText(bytes: number): string {
  return bytes % 2 ** 20 === 0 ? `${bytes / 2 ** 20} MiB` : `${bytes} bytes`;
}

function hasEnumerable(o: object): boolean {
  for (const _ in o) return true;
  return false;
}

/** An envelope key among the event's own fields, renamed (files/format.ts). */
function renamed(key: string, event: object): string {
  return renamedKey(key, (name) => Object.hasOwn(event, name));
}

/** `s` with each lone surrogate as its six-character JSON escape. */
function escapeLoneSurrogates(s: string): string {
  return s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);
}

/**
 * An event given as the JSON text of an object, another logger's line (JsonlEventSink's
 * handleJsonLine): its text goes into the ring as it is, and the writer splices the envelope in.
 */
export class JsonText {
  constructor(readonly text: string) {}
}

/** Size of a DROPPED record: header + three f64, already 8-byte aligned. */
export const DROPPED_RECORD = RECORD_HEADER + 24;

/**
 * A DROPPED record standing for `count` events from `firstIndex` that never reached the ring.
 * Written without the encoder on purpose: it can be made in the middle of placing another record
 * and must touch neither that record's scratch bytes nor the key table's rollback mark.
 */
export function droppedRecord(firstIndex: number, count: number, ts: number): Buffer {
  const b = Buffer.alloc(DROPPED_RECORD);
  b.writeUInt32LE(DROPPED_RECORD, 0);
  b[4] = Kind.DROPPED;
  b.writeDoubleLE(firstIndex, RECORD_HEADER);
  b.writeDoubleLE(count, RECORD_HEADER + 8);
  b.writeDoubleLE(ts, RECORD_HEADER + 16);
  return b;
}

/** A record over this fraction of the ring travels outside it (EXTERNAL): one such event must not
 *  stall the ring. Every producer thread applies the same bound. */
export const EXTERNAL_FRACTION = 4;

/** Size of an EXTERNAL placeholder: header + u32 id, aligned. */
export const EXTERNAL_RECORD = RECORD_HEADER + 8;

/** The ring's placeholder for a record that travels in its own SharedArrayBuffer, by id. */
export function externalRecord(id: number): Buffer {
  const b = Buffer.alloc(EXTERNAL_RECORD);
  b.writeUInt32LE(EXTERNAL_RECORD, 0);
  b[4] = Kind.EXTERNAL;
  b.writeUInt32LE(id, RECORD_HEADER);
  return b;
}

/** A growable private buffer for records that do not fit where the ring has room. Allocated on
 *  first use: most sinks never need it, and a sink must be cheap to open. */
export class Scratch implements Target {
  u8: Uint8Array;
  dv: DataView;
  buf: FastBuffer;
  readonly #initial: number;
  constructor(initial: number) {
    this.#initial = initial;
    this.buf = fast(Buffer.alloc(0));
    this.u8 = this.buf;
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, 0);
  }
  get size(): number {
    return this.buf.byteLength;
  }
  /** Makes room for `min` bytes, keeping the first `keep`; doubles, so a big event grows it
   *  in O(log n) copies. */
  ensure(min: number, keep: number): void {
    let size = this.buf.byteLength;
    if (size >= min) return;
    if (size === 0) size = this.#initial;
    while (size < min) size *= 2;
    const old = this.buf;
    this.buf = fast(Buffer.allocUnsafe(size));
    if (keep > 0) old.copy(this.buf, 0, 0, keep);
    this.u8 = this.buf;
    this.dv = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  }
}

/** ucs2Write writes little-endian code units; the writer reads them in the host's order. */
const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Arrays this long or longer are formatted by the caller while the writer is behind (numberText):
 *  the writer's own threshold for formatting numbers with one JSON.stringify (line-builder.ts). */
const NUMBER_TEXT_MIN = 8;
/** ...and this long at most: a bound on the text one call makes (up to 25 bytes a number). */
const NUMBER_TEXT_MAX = 1 << 16;
/** Number text may take up to this many times the bytes of the numbers in the record (a 5-digit
 *  token id takes 6 bytes as text and 5 here; a double rounded to 6 decimals about the same). */
const NUMBER_TEXT_GROWTH = 1.5;
/** Number text per record at most, 1 MiB: with NUMBER_TEXT_GROWTH, a record is at most ~340 KiB
 *  bigger than its binary form, so only events that close to a limit (a producer thread's quarter
 *  of the ring, MAX_RECORD_BYTES) can land on its other side because the writer was behind. */
const NUMBER_TEXT_BUDGET = 1 << 20;

/** Longer strings always go as UTF-8 (the caller transcodes): UTF-16 takes up to twice the bytes
 *  of mostly-ASCII text, and past 2^18 units (512 KiB) that would move an event out of the ring
 *  (a quarter of the default 4 MiB) or past MAX_RECORD_BYTES sooner than its UTF-8 would. */
const WIDE_MAX_UNITS = 1 << 18;

/** Positions sampled by looksWide: a string with non-ASCII text anywhere near this density is sent
 *  as UTF-16 without a UTF-8 attempt first; what the samples miss is caught by that attempt. */
const WIDE_SAMPLES = 8;

/** Whether any of WIDE_SAMPLES characters spread over `s` is non-ASCII. */
function looksWide(s: string): boolean {
  const n = s.length;
  for (let k = 0; k < WIDE_SAMPLES; k++) if (s.charCodeAt(Math.floor((k * n) / WIDE_SAMPLES)) >= 0x80) return true;
  return false;
}
