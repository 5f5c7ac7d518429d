// Record bytes → one JSON line, written as UTF-8 straight into an output buffer. Pure and
// thread-agnostic: the writer worker runs it, and so does the caller's thread when it drains the
// ring itself (exit before the worker started, flushSync).
//
// It never builds JS strings for event text: string bytes are copied from the record with JSON
// escaping applied on the fly (the escapes of JSON.stringify's QuoteJSONString: \" \\ \b \f \n \r
// \t, other controls as \u00xx; lone surrogates arrive pre-escaped as RAW). Numbers use JS's
// Number-to-text, as JSON.stringify does. So a JSON-compatible event's line is byte-identical to
// JSON.stringify({ index, emitted_at_ms, frame_depth, ...event }).

import { Flag, Kind, Tag } from './format.js';
import type { KeyTable } from './keys.js';
import type { FastBuffer } from './node-buffer.js';
import type { OutBuffer } from './out-buffer.js';

export interface Source {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly buf: FastBuffer;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const HEX = '0123456789abcdef';
/** Short escapes JSON.stringify uses, by control byte; the rest are \u00xx. */
const SHORT_ESCAPE: Record<number, number> = { 0x08: 0x62, 0x09: 0x74, 0x0a: 0x6e, 0x0c: 0x66, 0x0d: 0x72 };

export class LineBuilder {
  private src!: Source;
  private out!: OutBuffer;
  private pos = 0;

  constructor(private readonly keys: KeyTable) {}

  /** Appends the line (without newline) for the EVENT, REJECTED or DROPPED record at `off`. */
  build(src: Source, off: number, out: OutBuffer): void {
    this.src = src;
    this.out = out;
    const kind = src.u8[off + 4]!;
    const flags = src.u8[off + 5]!;
    const dv = src.dv;
    this.pos = off + 8;
    if (kind === Kind.DROPPED) {
      const first = dv.getFloat64(this.pos, true);
      const count = dv.getFloat64(this.pos + 8, true);
      const ts = dv.getFloat64(this.pos + 16, true);
      out.ascii(`{"index":${first},"emitted_at_ms":${ts},"frame_depth":null,"type":"events_dropped","count":${count}}`);
      return;
    }
    const index = dv.getFloat64(this.pos, true);
    const ts = dv.getFloat64(this.pos + 8, true);
    this.pos += 16;
    out.ascii(`{"index":${index},"emitted_at_ms":${ts},"frame_depth":`);
    this.value();
    const hasExecution = (flags & Flag.EXECUTION_ID) !== 0;
    if (hasExecution) {
      out.ascii(',"execution_id":');
      this.value();
    }
    if (kind === Kind.REJECTED) {
      out.ascii(',"type":"event_rejected","reason":');
      this.value();
      out.ascii('}');
      return;
    }
    // The event body: an OBJ whose entries continue the envelope object.
    const u8 = src.u8;
    this.pos++;
    while (u8[this.pos] !== Tag.END) {
      out.ensure(1);
      out.buf[out.len++] = COMMA;
      this.key();
      this.value();
    }
    this.pos++;
    out.ascii('}');
  }

  /** Copies a key entry as `"key":`. */
  private key(): void {
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
      out.bytes(buf, p + 5, p + 5 + len);
      out.ensure(1);
      out.buf[out.len++] = COLON;
      return;
    }
    const quoted = this.keys.quotedBytes[id]!;
    out.bytes(quoted, 0, quoted.length);
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
        return out.ascii('' + dv.getInt32(p + 1, true));
      case Tag.F64: {
        this.pos = p + 9;
        const x = dv.getFloat64(p + 1, true);
        return out.ascii(Number.isFinite(x) ? '' + x : 'null');
      }
      case Tag.STR: {
        const len = dv.getUint32(p + 1, true);
        this.pos = p + 5 + len;
        return this.quoted(p + 5, p + 5 + len);
      }
      case Tag.RAW: {
        const len = dv.getUint32(p + 1, true);
        this.pos = p + 5 + len;
        return out.bytes(buf, p + 5, p + 5 + len);
      }
      case Tag.ARR: {
        const n = dv.getUint32(p + 1, true);
        this.pos = p + 5;
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
          this.key();
          this.value();
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
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      if (b >= 0x20 && b !== QUOTE && b !== BACKSLASH) continue;
      if (i > run) out.bytes(srcBuf, run, i);
      run = i + 1;
      // Worst case per escape is 6 bytes; the rest of the string follows.
      out.ensure(6 + end - i);
      const o = out.buf;
      o[out.len++] = BACKSLASH;
      if (b === QUOTE || b === BACKSLASH) o[out.len++] = b;
      else if (SHORT_ESCAPE[b] !== undefined) o[out.len++] = SHORT_ESCAPE[b]!;
      else {
        o[out.len++] = 0x75; // u
        o[out.len++] = 0x30;
        o[out.len++] = 0x30;
        o[out.len++] = HEX.charCodeAt(b >> 4);
        o[out.len++] = HEX.charCodeAt(b & 15);
      }
    }
    if (end > run) out.bytes(srcBuf, run, end);
    out.ensure(1);
    out.buf[out.len++] = QUOTE;
  }
}
