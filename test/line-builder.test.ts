// The writer's line builder, in-process, where it takes short cuts JSON.stringify does not: strings
// dense with escapes, whose rest it hands to JSON.stringify through a one-byte copy of their bytes
// (LineBuilder.nativeRest), must come out exactly as the byte loop writes them — byte-identical to
// JSON.stringify — and, under the default redaction policy, with every secret after the hand-over
// still found; integers (the envelope's index and time, and values) are written digit by digit
// (OutBuffer.number), exactly as JSON.stringify writes them; strings with non-ASCII text, which the
// caller sends as UTF-16 code units while the writer keeps up (Tag.STR16), are made into UTF-8 by
// the writer exactly as JSON.stringify escapes them, lone surrogates included.

import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { EventEncoder, Scratch } from '../dist/src/caller/encoder.js';
import { LineBuilder, sourceOf } from '../dist/src/writer/line-builder.js';
import type { KeyTable } from '../dist/src/ring/keys.js';
import { createRing, writerHasSlack } from '../dist/src/ring/memory.js';
import { Ctl } from '../dist/src/ring/slots.js';
import { OutBuffer } from '../dist/src/writer/out-buffer.js';
import { envelopeHead } from '../dist/src/files/format.js';
import { compileRedaction, createRedactor, resolveRedactSpec } from '../dist/src/writer/redact.js';

const MAX_DEPTH = 1000;

/** Tag.STR (src/ring/records.ts): a string's UTF-8 bytes. */
const TAG_STR = 5;

/**
 * The record the encoder makes for `event`; with `utf8`, every string in it as UTF-8 (Tag.STR), as
 * the encoder sends mostly-ASCII text, even where it would send the string's UTF-16 code units
 * (well-formed strings: UTF-8 cannot carry a lone surrogate):
 * each string is encoded as an ASCII placeholder of its UTF-8 length, whose bytes are then
 * replaced by the string's, so the byte loop and its hand-over can be tested on any text.
 */
function record(event: object, index: number, ts: number, utf8: boolean): { bytes: Buffer; keys: KeyTable } {
  const texts: string[] = [];
  const stand = (v: unknown): unknown => {
    // UTF-8 cannot carry a lone surrogate: such a string goes as the encoder sends it.
    if (typeof v === 'string' && v.isWellFormed()) {
      texts.push(v);
      return 'Z'.repeat(Buffer.byteLength(v));
    }
    if (Array.isArray(v)) return v.map(stand);
    if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, stand(x)]));
    return v;
  };
  const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
  enc.begin();
  enc.event(index, ts, null, undefined, utf8 ? (stand(event) as object) : event);
  const bytes = Buffer.from(enc.scratch.buf.subarray(0, enc.pos));
  let at = 0;
  for (const text of texts) {
    const utf = Buffer.from(text);
    const head = Buffer.alloc(5);
    head[0] = TAG_STR;
    head.writeUInt32LE(utf.length, 1);
    const p = bytes.indexOf(Buffer.concat([head, Buffer.alloc(utf.length, 'Z')]), at);
    if (p < 0) throw new Error('placeholder not found');
    utf.copy(bytes, p + 5);
    at = p + 5 + utf.length;
  }
  return { bytes, keys: enc.keys };
}

/** The line the writer builds for `event` (index 0, time 1 unless given), with the default policy
 *  or none; with `utf8`, from a record whose strings are all UTF-8 (see record()). */
function built(event: object, redact: boolean, index = 0, ts = 1, utf8 = false): string {
  const { bytes, keys } = record(event, index, ts, utf8);
  const src = { u8: bytes, dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.length), buf: bytes as never };
  // Small, so that the hand-over grows the output buffer as any other write does.
  const out = new OutBuffer(16);
  new LineBuilder(keys, redact ? compileRedaction(resolveRedactSpec(undefined)) : null).build(src, 0, out);
  return out.buf.toString('utf8', 0, out.len);
}

const redactDefault = createRedactor(undefined)!;

function expected(event: object, redact: boolean): string {
  return JSON.stringify({ index: 0, emitted_at_ms: 1, frame_depth: null, ...(redact ? (redactDefault(event) as object) : event) });
}

const CONTROLS = Array.from({ length: 0x20 }, (_, c) => String.fromCharCode(c));
/** Text with an escape every few characters: every control, quotes, backslashes, and UTF-8 of
 *  every length (é 2 bytes, 日 3, 😀 4 with a surrogate pair) between them. */
function dense(length: number, seed: number): string {
  const pieces = [...CONTROLS, '"', '\\', 'a', 'bc', 'é', '日本', '😀', 'x y', '\u007f', '\u0080', '\u00ff', '\u2028'];
  let s = '';
  let x = seed;
  while (s.length < length) {
    x = (x * 1103515245 + 12345) >>> 0;
    s += pieces[x % pieces.length];
  }
  return s.slice(0, length).isWellFormed() ? s.slice(0, length) : s.slice(0, length - 1);
}

/** Watches the hand-over: how often it ran, and how often it found a possible secret (false). */
function watchHandOver(): { handed: () => number; refused: () => number } {
  const proto = LineBuilder.prototype as unknown as { nativeRest: (...args: unknown[]) => boolean };
  const spy = vi.spyOn(proto, 'nativeRest');
  return {
    handed: () => spy.mock.results.filter((r) => r.value === true).length,
    refused: () => spy.mock.results.filter((r) => r.value === false).length,
  };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('LineBuilder: strings dense with escapes', () => {
  it('are byte-identical to JSON.stringify at every length around the hand-over, without and with redaction', () => {
    const watch = watchHandOver();
    for (const length of [63, 64, 255, 256, 257, 300, 511, 1000, 4096, 70_000]) {
      for (const seed of [1, 2, 3]) {
        // A plain prefix of varying length moves the point where the density check first fires.
        const text = 'p'.repeat(seed * 37) + dense(length, seed);
        const event = { type: 'tool_result', output: text, nested: { lines: [text, text.slice(7)] } };
        for (const redact of [false, true]) {
          for (const utf8 of [false, true]) expect(built(event, redact, 0, 1, utf8)).toBe(expected(event, redact));
        }
      }
    }
    // Only UTF-8 strings with 256 bytes or more after a dense start are handed over: most of these are.
    expect(watch.handed()).toBeGreaterThan(20);
  });

  it('hands a string of many MB over in pieces (each under V8\'s string limit), byte-identical', () => {
    const watch = watchHandOver();
    // 3 MiB of controls: 18 MiB once escaped as \u00xx, past the first pieces' boundaries.
    const controls = dense(3 * 2 ** 20, 5);
    const event = { type: 'tool_result', output: controls };
    for (const redact of [false, true]) expect(built(event, redact, 0, 1, true)).toBe(expected(event, redact));
    // A secret in a later piece is still found: the whole string takes the redacting path.
    const secret = { output: `${controls} https://u:hunter2@h/ ${controls.slice(0, 1000)}` };
    const line = built(secret, true, 0, 1, true);
    expect(line).toBe(expected(secret, true));
    expect(line).not.toContain('hunter2');
    // Handed over: the plain string, twice; given back: the one with the secret, which is then
    // decoded and redacted whole.
    expect(watch.handed()).toBe(2);
    expect(watch.refused()).toBe(1);
    // The same strings as the encoder sends them (UTF-16: they are non-ASCII text).
    for (const redact of [false, true]) expect(built(event, redact)).toBe(expected(event, redact));
    expect(built(secret, true)).toBe(expected(secret, true));
  });

  it('carries the code points 0–0xff through the hand-over as the byte loop does', () => {
    // Every code point 0–0xff (UTF-8 of 0x80–0xff is two bytes each), ten times, dense with escapes.
    const all = Array.from({ length: 0x100 }, (_, c) => String.fromCharCode(c)).join('').repeat(10);
    const event = { all, reversed: [...all].reverse().join('') };
    for (const redact of [false, true]) {
      for (const utf8 of [false, true]) expect(built(event, redact, 0, 1, utf8)).toBe(expected(event, redact));
    }
  });

  it('still redacts a secret that comes after the hand-over (a query parameter, URL credentials)', () => {
    const watch = watchHandOver();
    const prefix = dense(600, 7);
    const cases = [
      `${prefix} GET https://api.example.com/v1?api_key=sk-live-123&x=1 ${prefix}`,
      `${prefix}\n  url: "postgres://admin:hunter2@db.internal:5432/app"\n${prefix}`,
      `${prefix}\t?token=abc;password=p4ss "end"`,
      `${prefix}=@ a=b c@d ://x @ ?=&= ${prefix}`,
    ];
    for (const text of cases) {
      const event = { type: 'tool_result', output: text };
      for (const utf8 of [true, false]) {
        const line = built(event, true, 0, 1, utf8);
        expect(line).toBe(expected(event, true));
        expect(line).not.toContain('sk-live-123');
        expect(line).not.toContain('hunter2');
        expect(line).not.toContain('p4ss');
      }
    }
    // The first three reached the hand-over, which saw their secret and gave the string back; the
    // last holds only near-misses (no name before "=", no "://" before "@") and is handed over.
    expect(watch.refused()).toBe(3);
    expect(watch.handed()).toBeGreaterThanOrEqual(1);
  });

  it('property: any text of escapes, UTF-8, "=", "@", "?", "&", ":" and "/" reads back as JSON.stringify (and the redactor) writes it', () => {
    const piece = fc.constantFrom(...CONTROLS, '"', '\\', 'a', 'key', 'é', '日', '😀', '=', '@', '?', '&', ';', ':', '/', '://', 'token', ' ');
    fc.assert(
      fc.property(fc.array(piece, { minLength: 0, maxLength: 900, size: 'max' }), fc.boolean(), (pieces, redact) => {
        const text = pieces.join('');
        const event = { output: text, [text.slice(0, 40)]: text.slice(100) };
        expect(built(event, redact)).toBe(expected(event, redact));
        expect(built(event, redact, 0, 1, true)).toBe(expected(event, redact));
      }),
      { numRuns: 300, seed: 16 },
    );
  });
});

describe('LineBuilder: numbers written digit by digit', () => {
  const edges = [0, -0, 1, -1, 9, 10, 99, 100, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 1e8 - 1, 1e8, 1e8 + 1, 1_700_000_000_123, 2 ** 53 - 1, -(2 ** 53 - 1), 2 ** 53, 2 ** 53 + 2, 1e21, 123456789012345680000, 0.5, -1.5, 5e-324, 1e-7, 0.1 + 0.2];

  it('values read back as JSON.stringify writes them (int32, beyond, past 2^53, fractions), alone and in short arrays', () => {
    // Arrays under eight numbers are written number by number, longer ones by one JSON.stringify.
    const event = { type: 'numbers', ...Object.fromEntries(edges.map((v, i) => [`n${i}`, v])), short: edges.slice(0, 7), pairs: edges.map((v) => [v, -v]) };
    for (const redact of [false, true]) expect(built(event, redact)).toBe(expected(event, redact));
  });

  it("the envelope's index and time, at every digit count, are envelopeHead's text", () => {
    for (let digits = 1; digits <= 16; digits++) {
      // 9…9 up to 15 digits; the largest safe integer for 16.
      const index = digits < 16 ? Number('9'.repeat(digits)) : 2 ** 53 - 1;
      const ts = 10 ** (digits - 1);
      const line = built({ type: 't' }, false, index, ts);
      expect(line).toBe(JSON.stringify({ index, emitted_at_ms: ts, frame_depth: null, type: 't' }));
      expect(line.startsWith(envelopeHead(index, ts))).toBe(true);
    }
  });

  it('OutBuffer.number makes no string for a safe integer, and fits at the very end of its buffer', () => {
    const ascii = vi.spyOn(OutBuffer.prototype, 'ascii');
    const ints = [0, 7, -7, 2 ** 31 - 1, 2 ** 31, -(2 ** 31), 1e15, 2 ** 53 - 1, -(2 ** 53 - 1)];
    for (const x of ints) {
      // Every position from 17 bytes before the end to the end: the write must grow the buffer.
      for (let room = 0; room <= 17; room++) {
        const out = new OutBuffer(32);
        out.len = 32 - room;
        out.number(x);
        expect(out.buf.toString('latin1', 32 - room, out.len)).toBe(JSON.stringify(x));
      }
    }
    expect(ascii).not.toHaveBeenCalled();
    // A fraction and a value past 2^53 take JS's own text.
    const out = new OutBuffer(4);
    out.number(0.1);
    out.number(2 ** 53);
    expect(out.buf.toString('latin1', 0, out.len)).toBe('0.1' + String(2 ** 53));
    expect(ascii).toHaveBeenCalledTimes(2);
  });

  it('property: any integer up to 2^53 in magnitude, and any double, reads back as JSON.stringify writes it', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.maxSafeInteger(), fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true })), { maxLength: 7 }), fc.maxSafeNat(), (values, index) => {
        const event = { values, one: values[0] ?? 0 };
        expect(built(event, false, index, index)).toBe(JSON.stringify({ index, emitted_at_ms: index, frame_depth: null, ...event }));
      }),
      { numRuns: 500, seed: 53 },
    );
  });
});

/** Tag numbers of src/ring/records.ts the tests below look for in records. */
const TAG = { STR: 5, RAW: 6, STR16: 11 } as const;

/** The record of `{ s }` (its one string value's tag), made with writerSlack as given. */
function stringTag(s: string, writerSlack: boolean): number {
  const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
  enc.begin();
  enc.writerSlack = writerSlack;
  enc.event(0, 1, null, undefined, { s });
  const bytes = enc.scratch.buf.subarray(0, enc.pos);
  // The envelope's frame_depth (NULL) is followed by the body: OBJ, then the key, then the value.
  const key = bytes.indexOf(Buffer.from('s'), 8);
  return bytes[key + 1]!;
}

/**
 * The line built from the encoder's record of `event`, writerSlack as given, read the way the ring is
 * read (`place: 'even'`: a Uint16Array view of the buffer) or from a buffer at an odd address
 * (`'odd'`: the code units are copied first), with the policy given (null: none).
 */
function builtFrom(event: object, policy: object | null, writerSlack: boolean, place: 'even' | 'odd'): string {
  const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
  enc.begin();
  enc.writerSlack = writerSlack;
  enc.event(0, 1, null, undefined, event);
  const backing = Buffer.alloc(enc.pos + 1);
  const bytes = backing.subarray(place === 'odd' ? 1 : 0, enc.pos + (place === 'odd' ? 1 : 0));
  enc.scratch.buf.copy(bytes, 0, 0, enc.pos);
  const src = sourceOf(bytes);
  expect(src.u16 !== undefined).toBe(place === 'even');
  const out = new OutBuffer(16);
  new LineBuilder(enc.keys, policy === null ? null : compileRedaction(resolveRedactSpec(policy))).build(src, 0, out);
  return out.buf.toString('utf8', 0, out.len);
}

function expectedWith(event: object, policy: object | null): string {
  const redactor = policy === null ? null : createRedactor(policy)!;
  return JSON.stringify({ index: 0, emitted_at_ms: 1, frame_depth: null, ...(redactor === null ? event : (redactor(event) as object)) });
}

describe('non-ASCII text as UTF-16 code units (STR16), made into UTF-8 by the writer', () => {
  it('the encoder sends non-ASCII text as code units while the writer keeps up, else as UTF-8', () => {
    const cjk = '日本語の文章'.repeat(20);
    expect(stringTag('é', true)).toBe(TAG.STR16);
    expect(stringTag(cjk, true)).toBe(TAG.STR16);
    expect(stringTag('ascii only, long enough to skip the short loop', true)).toBe(TAG.STR);
    // Mostly ASCII, its one non-ASCII character where the sampling does not look: UTF-8 is half
    // the bytes of UTF-16 there.
    const mostlyAscii = 'a'.repeat(1003) + 'é' + 'b'.repeat(1000);
    expect(stringTag(mostlyAscii, true)).toBe(TAG.STR);
    // Non-ASCII the sampling misses, but too much of it for UTF-8 to be the smaller.
    expect(stringTag('a'.repeat(9) + '日本語'.repeat(200) + 'b'.repeat(9), true)).toBe(TAG.STR16);
    // The writer behind: the caller makes the UTF-8 itself (a lone surrogate as escaped text).
    expect(stringTag(cjk, false)).toBe(TAG.STR);
    expect(stringTag('é', false)).toBe(TAG.STR);
    expect(stringTag(`${cjk}\ud800${cjk}`, false)).toBe(TAG.RAW);
    expect(stringTag(`${mostlyAscii}\udc00`, true)).toBe(TAG.RAW);
    expect(stringTag(`${cjk}\ud800${cjk}`, true)).toBe(TAG.STR16);
    // Past 2^18 units, UTF-8 whatever the text: UTF-16 could double a mostly-ASCII string's bytes.
    expect(stringTag('é' + 'a'.repeat(300_000), true)).toBe(TAG.STR);
    expect(stringTag('日本語'.repeat(100_000), true)).toBe(TAG.STR);
    expect(stringTag('日本語'.repeat(80_000), true)).toBe(TAG.STR16);
  });

  it('the writer keeps up while less than half of the ring waits for it (writerHasSlack)', () => {
    const ring = createRing(1 << 16);
    expect(writerHasSlack(ring)).toBe(true);
    Atomics.store(ring.ctl, Ctl.WRITE_POS, (1 << 15) - 8);
    expect(writerHasSlack(ring)).toBe(true);
    Atomics.store(ring.ctl, Ctl.WRITE_POS, 1 << 15);
    expect(writerHasSlack(ring)).toBe(false);
    // Free-running positions: across the 2^32 wrap as anywhere else.
    Atomics.store(ring.ctl, Ctl.READ_POS, -8);
    Atomics.store(ring.ctl, Ctl.WRITE_POS, 8);
    expect(writerHasSlack(ring)).toBe(true);
  });

  it('lines are byte-identical to JSON.stringify: scripts, emoji, escapes, lone surrogates; in place and copied', () => {
    const texts = [
      'é',
      '日本語の文章 代码审查 데이터 данные файла مرحبا بالعالم 😀🚀✨ naïve café e\u0301\u0302 Größe',
      'line one\nline "two"\t\\ tab\u0000\u001f\u007f 日本',
      '\ud800', '\udc00', 'a\ud800', '\udc00b', '日\ud800\ud800本', '😀\udc00😀', '\ud83d', 'x\ud83d\ude00y\ude00',
      '\u2028\u2029 \ufeff \uffff \u0800 \u07ff \u0080',
      '日本'.repeat(40_000), // past one reservation of room
    ];
    for (const text of texts) {
      const event = { type: 'message_chunk', content: text, nested: { list: [text, 1, text.slice(1)] } };
      for (const place of ['even', 'odd'] as const) {
        for (const policy of [null, {}]) {
          for (const writerSlack of [true, false]) expect(builtFrom(event, policy, writerSlack, place)).toBe(expectedWith(event, policy));
        }
      }
    }
  });

  it('redacts secrets in non-ASCII text (URL credentials, query parameters, a user pattern) and keeps near-misses', () => {
    const cases = [
      '接続: postgres://admin:hunter2@db.internal:5432/アプリ',
      'GET https://api.example.com/v1?api_key=sk-live-123&x=1 を呼ぶ',
      '電話 555-12-3456 です',
      'a=b c@d 日本 ://x @ ?=&= ok',
      // A lone surrogate: as UTF-8 text this string goes escaped (RAW), redacted on its own path.
      'bad \ud800 https://u:hunter2@x.example/?sig=sk-live-123#frag',
    ];
    const policies = [{}, { patterns: [/\b\d{3}-\d{2}-\d{4}\b/] }];
    for (const text of cases) {
      const event = { type: 'tool_result', output: text };
      for (const policy of policies) {
        for (const place of ['even', 'odd'] as const) {
          for (const writerSlack of [true, false]) {
            const line = builtFrom(event, policy, writerSlack, place);
            expect(line).toBe(expectedWith(event, policy));
            expect(line).not.toContain('hunter2');
            expect(line).not.toContain('sk-live-123');
          }
        }
      }
    }
    expect(builtFrom({ output: cases[2]! }, policies[1]!, true, 'even')).not.toContain('555-12-3456');
  });

  it('property: any text of scripts, escapes, surrogates (paired or not) and "=", "@" reads back as JSON.stringify writes it', () => {
    const piece = fc.constantFrom(...CONTROLS, '"', '\\', 'a', 'é', '日', '😀', '\ud800', '\udc00', '\ud83d', '=', '@', '?', '&', '://', 'token', ' ', '\u2028');
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 600 }), fc.boolean(), fc.boolean(), (pieces, redact, odd) => {
        const text = `日${pieces.join('')}`;
        const event = { output: text, list: [text.slice(3), text] };
        const policy = redact ? {} : null;
        expect(builtFrom(event, policy, true, odd ? 'odd' : 'even')).toBe(expectedWith(event, policy));
      }),
      { numRuns: 300, seed: 11 },
    );
  });
});

describe('arrays of numbers formatted by the caller while the writer is behind', () => {
  /** The tag the encoder gave `{ a }`'s value, with the writer keeping up or not. */
  function arrayTag(a: unknown[], writerSlack: boolean): number {
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
    enc.begin();
    enc.writerSlack = writerSlack;
    enc.event(0, 1, null, undefined, { a });
    const bytes = enc.scratch.buf.subarray(0, enc.pos);
    return bytes[bytes.indexOf(Buffer.from('a'), 8) + 1]!;
  }
  const ARR = 7;

  it('writes the text JSON.stringify writes (integers, fractions, -0, NaN, ±Infinity, 2^53 and past), as RAW', () => {
    const arrays = [
      [1, 2, 3, 4, 5, 6, 7, 8],
      Array.from({ length: 1536 }, (_, i) => Math.round(Math.sin(i) * 1e6) / 1e6),
      [-0, 0, NaN, Infinity, -Infinity, 2 ** 53, 2 ** 53 + 2, -(2 ** 31), 2 ** 31, 1e21, 1e-7, 5e-324],
    ];
    for (const a of arrays) {
      expect(arrayTag(a, false)).toBe(TAG.RAW);
      expect(arrayTag(a, true)).toBe(ARR);
      const event = { type: 'embedding', a, nested: [{ v: a }] };
      for (const policy of [null, {}]) {
        for (const writerSlack of [false, true]) expect(builtFrom(event, policy, writerSlack, 'even')).toBe(expectedWith(event, policy));
      }
    }
    // Short arrays and very long ones stay binary (a number takes up to 24 bytes as text, 9 here).
    expect(arrayTag([1, 2, 3, 4, 5, 6, 7], false)).toBe(ARR);
    expect(arrayTag(new Array<number>(2 ** 16 + 1).fill(1), false)).toBe(ARR);
    expect(arrayTag(new Array<number>(2 ** 16).fill(1), false)).toBe(TAG.RAW);
  });

  it('user patterns leave number text alone, as they leave numbers (a pattern matching 13 digits, ms timestamps)', () => {
    const policy = { patterns: [/\b\d{13,19}\b/] };
    const event = { type: 'timeline', marks: Array.from({ length: 12 }, (_, i) => 1_733_212_345_678 + i), note: 'card 4111111111111111' };
    expect(arrayTag(event.marks, false)).toBe(TAG.RAW);
    const line = builtFrom(event, policy, false, 'even');
    expect(line).toBe(expectedWith(event, policy));
    expect(line).toContain('1733212345678');
    expect(line).not.toContain('4111111111111111');
  });

  it('text much bigger than the numbers (full-precision doubles), or past 1 MiB in one record, goes as numbers', () => {
    const doubles = Array.from({ length: 64 }, (_, i) => Math.sin(i + 0.5));
    expect(arrayTag(doubles, false)).toBe(ARR);
    const rounded = doubles.map((x) => Math.round(x * 1e6) / 1e6);
    expect(arrayTag(rounded, false)).toBe(TAG.RAW);
    // Ten arrays of 60,000 five-digit ids: 300 KB each as numbers, 360 KB as text. Only the first
    // two fit the record's 1 MiB of text, so it grows by 120 KB, not 600.
    const ids = Array.from({ length: 10 }, (_, k) => Array.from({ length: 60_000 }, (_, i) => 10_000 + ((i * 7919 + k) % 89_999)));
    const size = (writerSlack: boolean): number => {
      const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
      enc.begin();
      enc.writerSlack = writerSlack;
      enc.event(0, 1, null, undefined, { ids });
      return enc.pos;
    };
    const growth = size(false) - size(true);
    expect(growth).toBeGreaterThan(100_000);
    expect(growth).toBeLessThan(150_000);
    expect(builtFrom({ ids }, null, false, 'even')).toBe(expectedWith({ ids }, null));
  });

  it('a toJSON on Array.prototype runs once, as JSON.stringify runs it: the numbers then go as numbers', () => {
    let calls = 0;
    Object.defineProperty(Array.prototype, 'toJSON', {
      configurable: true,
      writable: true,
      value(this: unknown[]) {
        calls++;
        return this.slice(1);
      },
    });
    try {
      const event = { a: Array.from({ length: 10 }, (_, i) => i) };
      const line = builtFrom(event, null, false, 'even');
      expect(calls).toBe(1);
      expect(line).toBe(expectedWith(event, null));
    } finally {
      delete (Array.prototype as { toJSON?: unknown }).toJSON;
    }
  });

  it('an element that is not a number, anywhere: the rest is walked as usual, every element read once', () => {
    for (const at of [0, 3, 11]) {
      let reads = 0;
      const a: unknown[] = Array.from({ length: 12 }, (_, i) => i * 1.5);
      Object.defineProperty(a, 5, { get: () => (reads++, 7.5), enumerable: true });
      a[at] = at === 11 ? { toJSON: () => 'late' } : at === 3 ? undefined : 'first';
      const event = { type: 'mixed', a, holes: [1, 2, , 4, 5, 6, 7, 8] };
      const line = builtFrom(event, null, false, 'even');
      expect(reads).toBe(1);
      expect(line).toBe(expectedWith(event, null));
      expect(arrayTag(a, false)).toBe(ARR);
    }
  });
});
