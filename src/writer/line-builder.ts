// Record bytes → one JSON line, written as UTF-8 straight into an output buffer. Pure and
// thread-agnostic: the writer worker runs it, and so does the caller's thread when it drains the
// ring itself (exit before the worker started, flushSync).
//
// String bytes are copied from the record with JSON escaping applied on the fly (the escapes of
// JSON.stringify's QuoteJSONString: \" \\ \b \f \n \r \t, other controls as \u00xx; in UTF-8
// text lone surrogates arrive pre-escaped as RAW), without making a JS string of the text — except
// the rest of a long string dense with escapes, which JSON.stringify escapes faster, through a
// one-byte string of its bytes (nativeRest). Strings with non-ASCII text that the caller sent as
// UTF-16 code units (STR16, while this thread keeps up) are made into UTF-8 here (wideQuoted). Integers are written digit by digit, other numbers by JS's
// Number-to-text, as JSON.stringify writes them. So a JSON-compatible event's line is
// byte-identical to JSON.stringify({ index, emitted_at_ms, frame_depth, ...event }).
//
// With a redaction policy (redact.ts) it applies it while copying, so secrets never reach the
// output: a value under a sensitive key is written as the censor and its bytes skipped; a string is
// decoded to a JS string only when its bytes could hold a secret (an `=` after `?name`, `&name` or
// `;name`, or an `@` after `://`: every built-in string rule needs one of them), or always when extra
// patterns are configured, since no byte test can tell what a user's pattern matches. A line with
// nothing to redact is byte-identical to the unredacted one. The envelope is never redacted.

import { droppedLine, ENVELOPE_EXECUTION, ENVELOPE_KEYS, ENVELOPE_KEYS_WITH_EXECUTION, REJECTED_FIELDS, writeEnvelopeHead } from '../files/format.js';
import { Flag, Kind, Tag, wideAt } from '../ring/records.js';
import { MAX_KEYS, quotedKey, type KeyTable } from '../ring/keys.js';
import { fast, type FastBuffer } from '../node-buffer.js';
import { spliceJsonObject } from './json-splice.js';
import type { OutBuffer } from './out-buffer.js';
import { runCustom, type Redaction } from './redact.js';

export interface Source {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly buf: FastBuffer;
  /** The same bytes as UTF-16 code units, when they start at an even address (STR16 strings are
   *  then read in place; otherwise through a copy). */
  readonly u16?: Uint16Array | undefined;
}

/** A record's bytes (a Buffer, or a SharedArrayBuffer of its own) as a Source for build(). */
export function sourceOf(bytes: Buffer | SharedArrayBuffer): Source {
  const buf = fast(bytes instanceof SharedArrayBuffer ? Buffer.from(bytes) : bytes);
  const u16 = buf.byteOffset % 2 === 0 ? new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength >>> 1) : undefined;
  return { u8: buf, dv: new DataView(buf.buffer, buf.byteOffset, buf.byteLength), buf, u16 };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const HEX = '0123456789abcdef';
/** Short escapes JSON.stringify uses, by control byte; the rest are \u00xx. */
const SHORT_ESCAPE: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72 };

const EQUALS = 0x3d;
const AT = 0x40;
const SLASH = 0x2f;
/** Per byte, for the redacting copy: 0 copy as is, 1 needs a JSON escape, 2 may start a secret. */
const BYTE_CLASS = new Uint8Array(256);
/** Bytes of a query-parameter name (as redact.ts's PARAM_NAME rule reads them). */
const PARAM_NAME = new Uint8Array(256);
/** Bytes that end a URL's authority (as redact.ts's USERINFO rule reads it). */
const AUTHORITY_END = new Uint8Array(256);
for (let b = 0; b < 0x20; b++) BYTE_CLASS[b] = 1;
BYTE_CLASS[QUOTE] = 1;
BYTE_CLASS[BACKSLASH] = 1;
BYTE_CLASS[EQUALS] = 2;
BYTE_CLASS[AT] = 2;
/** Per UTF-16 code unit, for STR16 strings: BYTE_CLASS's classes for ASCII, SURROGATE for
 *  0xd800–0xdfff (a pair, or a lone one to escape), 0 for every other unit. 64 KiB. */
const UNIT_CLASS = new Uint8Array(0x10000);
const SURROGATE = 3;
UNIT_CLASS.set(BYTE_CLASS.subarray(0, 0x80));
UNIT_CLASS.fill(SURROGATE, 0xd800, 0xe000);
for (const c of 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-[]') PARAM_NAME[c.charCodeAt(0)] = 1;
for (const c of ' \t\n\v\f\r/?#"\'`<>') AUTHORITY_END[c.charCodeAt(0)] = 1;
const PARAM_START = (b: number): boolean => b === 0x3f || b === 0x26 || b === 0x3b; // ? & ;

/** Writes the JSON escape of control, quote or backslash byte `b`, reserving room for the `rest` bytes of the string that follow. */
function escapeByte(out: OutBuffer, b: number, rest: number): void {
  // Worst case per escape is 6 bytes (\u00xx).
  out.ensure(6 + rest);
  const o = out.buf;
  o[out.len++] = BACKSLASH;
  if (b === QUOTE || b === BACKSLASH) o[out.len++] = b;
  else if (SHORT_ESCAPE[b] !== undefined) o[out.len++] = SHORT_ESCAPE[b]!;
  else out.len = hexEscape(o, out.len, b);
}

/** Writes `u` and the four lowercase hex digits of code unit `c` at `p` (after its backslash), as
 *  JSON.stringify writes a control (\u00xx) or a lone surrogate (\udXXX: UTF-8 cannot carry it);
 *  returns the position after them. */
function hexEscape(o: Uint8Array, p: number, c: number): number {
  o[p++] = 0x75; // u
  o[p++] = HEX.charCodeAt(c >> 12);
  o[p++] = HEX.charCodeAt((c >> 8) & 15);
  o[p++] = HEX.charCodeAt((c >> 4) & 15);
  o[p++] = HEX.charCodeAt(c & 15);
  return p;
}

/** Appends characters [from, to) of `text` (no escapes among them) as UTF-8. */
function wideRun(out: OutBuffer, text: string, from: number, to: number): void {
  if (to > from) out.utf8(from === 0 && to === text.length ? text : text.slice(from, to));
}

/** Escapes counted between density checks, minus one (a mask): every 4th escape. */
const DENSE_CHECK = 3;
/**
 * Whether a string is dense enough with escapes to finish it in C++ (nativeRest): at least one
 * escape per DENSE_SPACING bytes so far, and REST_MIN bytes or more still to go. Below that density
 * the byte loop, which pays per escape, not per byte, is the faster (measured per corpus with
 * bench/line-building.ts; README, "Every workload: the corpus family").
 */
function dense(start: number, i: number, end: number, escapes: number): boolean {
  return end - i >= REST_MIN && i - start < escapes * DENSE_SPACING;
}
const DENSE_SPACING = 64;
const REST_MIN = 256;
/** Bytes handed to JSON.stringify at a time: its output (up to 6× for \u00xx) stays a few MB. */
const NATIVE_PIECE = 1 << 20;


/** Below this many elements an array's numbers are written one by one: a JSON.stringify call costs
 *  about as much as formatting a handful of them. */
const NUMBER_ARRAY_MIN = 8;

export class LineBuilder {
  private src!: Source;
  private out!: OutBuffer;
  private pos = 0;
  /** Whether string values go through the string rules now (never in the envelope). */
  private redacting = false;
  private readonly stringRules: boolean;
  private readonly patterns: boolean;
  /** Per key id, the name the two caches below were computed for: the key table can redefine an
   *  id (the caller's thread restarts its interning after it drains), so a cache is only good for
   *  the same name. */
  private readonly keyName: (string | undefined)[] = [];
  private readonly keySensitive: boolean[] = [];
  /** `"key":` after the string rules, or undefined when that is the table's own bytes. */
  private readonly keyQuoted: (Buffer | undefined)[] = [];
  /** Reused by numberArray(). */
  private readonly numbers: number[] = [];
  /** areaKey()'s verdicts, by key id. */
  private readonly areaVerdicts = new Map<number, { sensitive: boolean; quoted: Buffer }>();

  constructor(private readonly keys: KeyTable, private readonly redaction: Redaction | null = null) {
    this.stringRules = redaction !== null && redaction.stringRules;
    this.patterns = redaction !== null && redaction.patterns.length > 0;
  }

  /** Appends the line (without newline) for the EVENT, REJECTED or DROPPED record at `off`. */
  build(src: Source, off: number, out: OutBuffer): void {
    this.src = src;
    this.out = out;
    this.redacting = false;
    const kind = src.u8[off + 4]!;
    const flags = src.u8[off + 5]!;
    const dv = src.dv;
    this.pos = off + 8;
    if (kind === Kind.DROPPED) {
      const first = dv.getFloat64(this.pos, true);
      const count = dv.getFloat64(this.pos + 8, true);
      const ts = dv.getFloat64(this.pos + 16, true);
      out.ascii(droppedLine(first, ts, count));
      return;
    }
    const index = dv.getFloat64(this.pos, true);
    const ts = dv.getFloat64(this.pos + 8, true);
    this.pos += 16;
    writeEnvelopeHead(out, index, ts);
    this.value();
    const hasExecution = (flags & Flag.EXECUTION_ID) !== 0;
    if (hasExecution) {
      out.ascii(ENVELOPE_EXECUTION);
      this.value();
    }
    // The reason may quote the event (an error message from its getter): redacted like the body.
    this.redacting = this.stringRules;
    if (kind === Kind.REJECTED) {
      out.ascii(REJECTED_FIELDS);
      this.value();
      out.ascii('}');
      return;
    }
    const u8 = src.u8;
    if (u8[this.pos] === Tag.JSON_OBJECT) {
      // Another logger's line, as JSON text: its members continue the envelope object.
      const start = this.pos + 5;
      const end = start + dv.getUint32(this.pos + 1, true);
      this.pos = end;
      spliceJsonObject(src.buf, start, end, out, hasExecution ? ENVELOPE_KEYS_WITH_EXECUTION : ENVELOPE_KEYS, this.redaction);
      return;
    }
    // The event body: an OBJ whose entries continue the envelope object.
    const bodyAt = out.len;
    this.pos++;
    while (u8[this.pos] !== Tag.END) {
      out.ensure(1);
      out.buf[out.len++] = COMMA;
      if (this.key()) this.censored();
      else this.value();
    }
    this.pos++;
    out.ascii('}');
    if (this.redaction !== null && this.redaction.custom !== null) this.custom(bodyAt);
  }

  // Reading a record without building its line (durable projection judges records this way). Key
  // definitions met on the way are taken in, as building would.

  /** Where the body of the EVENT record at `off` starts (its OBJ or JSON_OBJECT tag). */
  bodyAt(src: Source, off: number): number {
    this.src = src;
    this.pos = off + 24; // header (8), index and time (2 x f64)
    this.skipValue(); // frame_depth
    if ((src.u8[off + 5]! & Flag.EXECUTION_ID) !== 0) this.skipValue();
    return this.pos;
  }

  /** The name of the key entry at `pos`; `cursor` is then just past it. */
  keyNameAt(src: Source, pos: number): string {
    this.src = src;
    this.pos = pos;
    const { u8, dv, buf } = src;
    if (u8[pos] === Tag.KEY_INLINE) {
      const len = dv.getUint32(pos + 1, true);
      this.pos = pos + 5 + len;
      return JSON.parse(buf.utf8Slice(pos + 5, pos + 5 + len)) as string;
    }
    this.skipKey();
    return this.keys.nameOf(dv.getUint16(pos + 1, true));
  }

  /** Moves past the value at `pos`; returns where it ends. */
  skipValueAt(src: Source, pos: number): number {
    this.src = src;
    this.pos = pos;
    this.skipValue();
    return this.pos;
  }

  /** Just past what keyNameAt read. */
  get cursor(): number {
    return this.pos;
  }

  /**
   * The slow path of a custom redaction function: the body just built is parsed, given to the
   * function, and written again from its result (the envelope stays as built).
   */
  private custom(bodyAt: number): void {
    const out = this.out;
    // `,"k":v,...}` (or `}` for an empty body): the envelope's object continued.
    const body = out.buf.utf8Slice(bodyAt, out.len);
    const event = (body.length > 1 ? JSON.parse('{' + body.slice(1)) : {}) as Record<string, unknown>;
    const text = runCustom(this.redaction!, event);
    out.len = bodyAt;
    if (text.length > 2) {
      out.ascii(',');
      out.utf8(text.slice(1));
    } else out.ascii('}');
  }

  /**
   * An array of `n` numbers only (embeddings, token ids), from `pos`: written by one
   * JSON.stringify of the numbers, whose number-to-text runs in C++ without a string per number
   * (the element-by-element path spent ~55% of the writer's time in `'' + x` on such events,
   * bench/corpora.ts's numeric corpus). Same text: JSON.stringify formats numbers as `'' + x` does
   * and writes null for the non-finite, as value() does. False, with nothing consumed, when an
   * element is not a number.
   */
  private numberArray(n: number): boolean {
    const { u8, dv } = this.src;
    const nums = this.numbers;
    // A toJSON the app put on Array.prototype or Object.prototype would run here, a second time,
    // when this runs on the caller's thread (its drains): the numbers go one by one then.
    if ('toJSON' in nums) return false;
    nums.length = n;
    let q = this.pos;
    for (let i = 0; i < n; i++) {
      const tag = u8[q];
      if (tag === Tag.I32) {
        nums[i] = dv.getInt32(q + 1, true);
        q += 5;
      } else if (tag === Tag.F64) {
        nums[i] = dv.getFloat64(q + 1, true);
        q += 9;
      } else {
        return false;
      }
    }
    this.pos = q;
    const text = JSON.stringify(nums);
    const out = this.out;
    out.ensure(text.length);
    out.len += out.buf.latin1Write(text, out.len);
    return true;
  }

  /** Writes the censor in place of the value at `pos`, and skips the value. */
  private censored(): void {
    const c = this.redaction!.censorJson;
    this.out.bytes(c, 0, c.length);
    this.skipValue();
  }

  /** Moves past a value without writing it; key definitions inside are still taken in, since later
   *  records refer to them by id. */
  private skipValue(): void {
    const { u8, dv } = this.src;
    const p = this.pos;
    switch (u8[p]) {
      case Tag.NULL:
      case Tag.FALSE:
      case Tag.TRUE:
        this.pos = p + 1;
        return;
      case Tag.I32:
        this.pos = p + 5;
        return;
      case Tag.F64:
        this.pos = p + 9;
        return;
      case Tag.STR:
      case Tag.RAW:
      case Tag.JSON_OBJECT:
        this.pos = p + 5 + dv.getUint32(p + 1, true);
        return;
      case Tag.STR16:
        this.pos = wideAt(p) + 2 * dv.getUint32(p + 1, true);
        return;
      case Tag.ARR: {
        const n = dv.getUint32(p + 1, true);
        this.pos = p + 5;
        for (let i = 0; i < n; i++) this.skipValue();
        return;
      }
      case Tag.OBJ:
        this.pos = p + 1;
        while (u8[this.pos] !== Tag.END) {
          this.skipKey();
          this.skipValue();
        }
        this.pos++;
        return;
      default:
        throw new Error(`ringlog: corrupt record: unknown value tag ${u8[p]} at ${p}`);
    }
  }

  private skipKey(): void {
    const { u8, dv, buf } = this.src;
    const p = this.pos;
    const tag = u8[p];
    if (tag === Tag.KEY_ID) this.pos = p + 3;
    else if (tag === Tag.KEY_DEF) {
      const len = dv.getUint16(p + 3, true);
      this.keys.define(dv.getUint16(p + 1, true), buf.utf8Slice(p + 5, p + 5 + len));
      this.pos = p + 5 + len;
    } else this.pos = p + 5 + dv.getUint32(p + 1, true);
  }

  /** Copies a key entry as `"key":`; true when its value must be censored. */
  private key(): boolean {
    const { u8, dv, buf } = this.src;
    const out = this.out;
    const p = this.pos;
    const tag = u8[p];
    let id: number;
    if (tag === Tag.KEY_ID) {
      id = dv.getUint16(p + 1, true);
      this.pos = p + 3;
    } else if (tag === Tag.KEY_DEF) {
      id = dv.getUint16(p + 1, true);
      const len = dv.getUint16(p + 3, true);
      this.keys.define(id, buf.utf8Slice(p + 5, p + 5 + len));
      this.pos = p + 5 + len;
    } else {
      // KEY_INLINE: the quoted JSON text as sent.
      const len = dv.getUint32(p + 1, true);
      this.pos = p + 5 + len;
      if (this.redaction !== null) return this.inlineKey(p + 5, p + 5 + len);
      out.bytes(buf, p + 5, p + 5 + len);
      out.ensure(1);
      out.buf[out.len++] = COLON;
      return false;
    }
    if (this.redaction !== null) return this.internedKey(id);
    const quoted = this.keys.quotedOf(id);
    out.bytes(quoted, 0, quoted.length);
    return false;
  }

  /** An interned key under a policy: its verdict and bytes are worked out once per name. */
  private internedKey(id: number): boolean {
    if (id >= MAX_KEYS) return this.areaKey(id);
    const name = this.keys.nameOf(id);
    if (this.keyName[id] !== name) {
      const v = this.keyVerdict(name);
      this.keyName[id] = name;
      this.keySensitive[id] = v.sensitive;
      this.keyQuoted[id] = v.quoted;
    }
    const quoted = this.keyQuoted[id] ?? this.keys.quotedOf(id);
    this.out.bytes(quoted, 0, quoted.length);
    return this.keySensitive[id]!;
  }

  /** The same for a key of a producer's area (ids from MAX_KEYS on, never redefined): kept in a
   *  map, since arrays indexed that sparsely would fall back to dictionaries for every id. */
  private areaKey(id: number): boolean {
    let v = this.areaVerdicts.get(id);
    if (v === undefined) {
      const { sensitive, quoted } = this.keyVerdict(this.keys.nameOf(id));
      v = { sensitive, quoted: quoted ?? this.keys.quotedOf(id) };
      this.areaVerdicts.set(id, v);
    }
    this.out.bytes(v.quoted, 0, v.quoted.length);
    return v.sensitive;
  }

  /** What the policy makes of key `name`: whether its value is censored, and its `"key":` bytes
   *  after the string rules (undefined when they leave it as it is). */
  private keyVerdict(name: string): { sensitive: boolean; quoted: Buffer | undefined } {
    const r = this.redaction!;
    const redacted = this.stringRules ? r.redactString(name) : name;
    return { sensitive: r.isSensitiveKey(name), quoted: redacted === name ? undefined : quotedKey(redacted) };
  }

  /** A key sent whole (quoted JSON text) under a policy: rare (envelope renames, keys over 64
   *  characters, past the interning cap), so it is simply parsed each time. */
  private inlineKey(start: number, end: number): boolean {
    const r = this.redaction!;
    const out = this.out;
    const name = JSON.parse(this.src.buf.utf8Slice(start, end)) as string;
    const redacted = this.stringRules ? r.redactString(name) : name;
    if (redacted === name) out.bytes(this.src.buf, start, end);
    else out.utf8(JSON.stringify(redacted));
    out.ensure(1);
    out.buf[out.len++] = COLON;
    return r.isSensitiveKey(name);
  }

  private value(): void {
    const { u8, dv, buf } = this.src;
    const out = this.out;
    const p = this.pos;
    switch (u8[p]) {
      case Tag.NULL:
        this.pos = p + 1;
        return out.ascii('null');
      case Tag.FALSE:
        this.pos = p + 1;
        return out.ascii('false');
      case Tag.TRUE:
        this.pos = p + 1;
        return out.ascii('true');
      case Tag.I32:
        this.pos = p + 5;
        return out.number(dv.getInt32(p + 1, true));
      case Tag.F64: {
        this.pos = p + 9;
        const x = dv.getFloat64(p + 1, true);
        return Number.isFinite(x) ? out.number(x) : out.ascii('null');
      }
      case Tag.STR: {
        const len = dv.getUint32(p + 1, true);
        this.pos = p + 5 + len;
        if (this.redacting) return this.redactedQuoted(p + 5, p + 5 + len);
        return this.quoted(p + 5, p + 5 + len);
      }
      case Tag.STR16: {
        const units = dv.getUint32(p + 1, true);
        this.pos = wideAt(p) + 2 * units;
        return this.wideQuoted(wideAt(p), units);
      }
      case Tag.RAW: {
        const len = dv.getUint32(p + 1, true);
        this.pos = p + 5 + len;
        if (this.redacting) return this.redactedRaw(p + 5, p + 5 + len);
        return out.bytes(buf, p + 5, p + 5 + len);
      }
      case Tag.ARR: {
        const n = dv.getUint32(p + 1, true);
        this.pos = p + 5;
        if (n >= NUMBER_ARRAY_MIN && this.numberArray(n)) return;
        out.ascii('[');
        for (let i = 0; i < n; i++) {
          if (i > 0) out.ascii(',');
          this.value();
        }
        return out.ascii(']');
      }
      case Tag.OBJ: {
        this.pos = p + 1;
        out.ascii('{');
        let first = true;
        while (u8[this.pos] !== Tag.END) {
          if (!first) out.ascii(',');
          first = false;
          if (this.key()) this.censored();
          else this.value();
        }
        this.pos++;
        return out.ascii('}');
      }
      default:
        throw new Error(`ringlog: corrupt record: unknown value tag ${u8[p]} at ${p}`);
    }
  }

  /** Copies UTF-8 bytes [start, end) as a JSON string literal, escaping as JSON.stringify does. */
  private quoted(start: number, end: number): void {
    const src = this.src.u8;
    const srcBuf = this.src.buf;
    const out = this.out;
    out.ensure(end - start + 2);
    out.buf[out.len++] = QUOTE;
    let run = start;
    let escapes = 0;
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) continue;
      if (i > run) out.bytes(srcBuf, run, i);
      if ((++escapes & DENSE_CHECK) === 0 && dense(start, i, end, escapes)) {
        this.nativeRest(start, i, end, false);
        return;
      }
      run = i + 1;
      escapeByte(out, b, end - i);
    }
    if (end > run) out.bytes(srcBuf, run, end);
    out.ensure(1);
    out.buf[out.len++] = QUOTE;
  }

  /**
   * quoted() under the string rules. The copy watches for the bytes every built-in rule needs (`=`
   * and `@`); only where one could start a secret is the string decoded and the rules run. With
   * extra patterns every string is decoded: a user's pattern can match anything.
   */
  private redactedQuoted(start: number, end: number): void {
    if (this.patterns) return this.decodedString(start, end);
    const src = this.src.u8;
    const srcBuf = this.src.buf;
    const out = this.out;
    const at = out.len;
    out.ensure(end - start + 2);
    out.buf[out.len++] = QUOTE;
    let run = start;
    let escapes = 0;
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      const cls = BYTE_CLASS[b]!;
      if (cls === 0) continue;
      if (cls === 2) {
        if (this.secretMayStartAt(src, start, i)) {
          out.len = at;
          return this.decodedString(start, end);
        }
        continue;
      }
      if (i > run) out.bytes(srcBuf, run, i);
      if ((++escapes & DENSE_CHECK) === 0 && dense(start, i, end, escapes)) {
        if (this.nativeRest(start, i, end, true)) return;
        out.len = at;
        return this.decodedString(start, end);
      }
      run = i + 1;
      escapeByte(out, b, end - i);
    }
    if (end > run) out.bytes(srcBuf, run, end);
    out.ensure(1);
    out.buf[out.len++] = QUOTE;
  }

  /**
   * The rest of a string dense with escapes, [i, end) and its closing quote, escaped in C++: its
   * bytes as a one-byte string, JSON.stringify, and back. Every byte JSON escapes (controls, `"`,
   * `\`) is ASCII and never part of a UTF-8 sequence, and JSON.stringify leaves characters
   * 0x7f–0xff as they are, so the round trip escapes exactly the bytes the loop escapes and carries
   * every other byte through unchanged, and it may be cut anywhere: it goes in pieces of
   * NATIVE_PIECE bytes, so a string of hundreds of MB never makes a JS string past V8's length limit
   * or a copy of itself several times over. Under the string rules each piece's `=` and `@` are
   * found by native search first (false: one may start a secret; the caller rewinds the string).
   */
  private nativeRest(start: number, i: number, end: number, redacting: boolean): boolean {
    const src = this.src;
    const out = this.out;
    for (let from = i; from < end; ) {
      const to = Math.min(end, from + NATIVE_PIECE);
      const piece = src.buf.latin1Slice(from, to);
      if (redacting) {
        for (let k = piece.indexOf('='); k >= 0; k = piece.indexOf('=', k + 1)) if (this.secretMayStartAt(src.u8, start, from + k)) return false;
        for (let k = piece.indexOf('@'); k >= 0; k = piece.indexOf('@', k + 1)) if (this.secretMayStartAt(src.u8, start, from + k)) return false;
      }
      const text = JSON.stringify(piece);
      out.ensure(text.length);
      // text opens with a quote: written over the last byte out holds (this string's opening
      // quote or its last byte so far), which is put back, so no substring of text is made.
      const at = out.len - 1;
      const kept = out.buf[at]!;
      out.len = at + out.buf.latin1Write(text, at);
      out.buf[at] = kept;
      // Its closing quote ends the string only after the last piece.
      if (to < end) out.len--;
      from = to;
    }
    return true;
  }

  /**
   * Whether the `=` or `@` at `i` can be part of what the rules replace: an `=` ending a name that
   * follows `?`, `&` or `;` (a query parameter), an `@` ending an authority that follows `://`.
   */
  private secretMayStartAt(src: Uint8Array, start: number, i: number): boolean {
    const r = this.redaction!;
    let j = i - 1;
    if (src[i] === EQUALS) {
      if (!r.queryParams) return false;
      while (j >= start && PARAM_NAME[src[j]!] === 1) j--;
      return j < i - 1 && j >= start && PARAM_START(src[j]!);
    }
    if (!r.urlCredentials) return false;
    while (j >= start && AUTHORITY_END[src[j]!] === 0) j--;
    return j - 2 >= start && src[j] === SLASH && src[j - 1] === SLASH && src[j - 2] === COLON;
  }

  /** The slow path: decode, run the rules, write the result (or the bytes, when nothing changed). */
  private decodedString(start: number, end: number): void {
    const s = this.src.buf.utf8Slice(start, end);
    const redacted = this.redaction!.redactString(s);
    if (redacted === s) return this.quoted(start, end);
    this.out.utf8(JSON.stringify(redacted));
  }

  /**
   * A STR16 string (`units` code units at byte `off`) as JSON.stringify writes it, in UTF-8.
   * Under the string rules, a string holding an `=` or an `@` (any string, with extra patterns) is
   * decoded and goes through them first, as decodedString does.
   */
  private wideQuoted(off: number, units: number): void {
    const text = this.src.buf.ucs2Slice(off, off + 2 * units);
    if (!this.redacting) {
      this.wideCopy(off, text, false);
      return;
    }
    const out = this.out;
    const at = out.len;
    if (!this.patterns && this.wideCopy(off, text, true)) return;
    out.len = at;
    const redacted = this.redaction!.redactString(text);
    if (redacted !== text) return out.utf8(JSON.stringify(redacted));
    this.wideCopy(off, text, false);
  }

  /**
   * Writes the UTF-16 code units at `off` (`text` is them as a string) as UTF-8, escaped as
   * JSON.stringify escapes them (a lone surrogate as \udXXX): a JS loop looks at each unit for what
   * needs an escape, and V8 transcodes the runs between (utf8Write of slices of `text`). With
   * `watch`, stops at the first `=` or `@` and returns false (the caller rewinds the output).
   */
  private wideCopy(off: number, text: string, watch: boolean): boolean {
    const src = this.src;
    const units = text.length;
    let u16: Uint16Array;
    let first: number;
    if (src.u16 !== undefined && off % 2 === 0) {
      u16 = src.u16;
      first = off >> 1;
    } else {
      u16 = this.alignedUnits(off, units);
      first = 0;
    }
    const out = this.out;
    out.ensure(1);
    out.buf[out.len++] = QUOTE;
    let run = 0;
    for (let k = 0; k < units; k++) {
      const c = u16[first + k]!;
      // One table look per unit, one branch nearly always taken: text that mixes scripts would
      // mispredict a branch per character class change (measured 4× slower on bench/corpora.ts's
      // unicode corpus).
      const cls = UNIT_CLASS[c]!;
      if (cls === 0) continue;
      if (cls === SURROGATE) {
        if (c < 0xdc00 && k + 1 < units && (u16[first + k + 1]! & 0xfc00) === 0xdc00) {
          k++;
          continue;
        }
        // A lone surrogate: UTF-8 cannot carry it; JSON.stringify writes it as \udXXX.
        wideRun(out, text, run, k);
        out.ensure(6);
        out.buf[out.len++] = BACKSLASH;
        out.len = hexEscape(out.buf, out.len, c);
        run = k + 1;
        continue;
      }
      if (cls === 2) {
        if (watch) return false;
        continue;
      }
      wideRun(out, text, run, k);
      escapeByte(out, c, 0);
      run = k + 1;
    }
    wideRun(out, text, run, units);
    out.ensure(1);
    out.buf[out.len++] = QUOTE;
    return true;
  }

  /** Code units at an odd address, copied where a Uint16Array can read them. */
  private alignedUnits(off: number, units: number): Uint16Array {
    if (this.wide.length < units) this.wide = new Uint16Array(Math.max(units, 2 * this.wide.length));
    new Uint8Array(this.wide.buffer, 0, 2 * units).set(this.src.u8.subarray(off, off + 2 * units));
    return this.wide;
  }

  private wide = new Uint16Array(256);

  /** A RAW value under the string rules. The JSON text of a string (one with lone surrogates):
   *  rare, so it is simply parsed whenever it could hold a secret. An array of numbers formatted by
   *  the caller (EventEncoder.numberText) holds no string: copied, as its binary form would be. */
  private redactedRaw(start: number, end: number): void {
    const buf = this.src.buf;
    if (buf[start] !== QUOTE) return this.out.bytes(buf, start, end);
    const text = buf.utf8Slice(start, end);
    if (this.patterns || text.includes('=') || text.includes('@')) {
      const s = JSON.parse(text) as string;
      const redacted = this.redaction!.redactString(s);
      if (redacted !== s) return this.out.utf8(JSON.stringify(redacted));
    }
    this.out.bytes(buf, start, end);
  }
}
