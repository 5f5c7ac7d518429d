// The writer's line builder, in-process, where it takes short cuts JSON.stringify does not: strings
// dense with escapes, whose rest it hands to JSON.stringify through a one-byte copy of their bytes
// (LineBuilder.nativeRest), must come out exactly as the byte loop writes them — byte-identical to
// JSON.stringify — and, under the default redaction policy, with every secret after the hand-over
// still found; integers (the envelope's index and time, and values) are written digit by digit
// (OutBuffer.number), exactly as JSON.stringify writes them.

import { afterEach, describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { EventEncoder, Scratch } from '../dist/src/caller/encoder.js';
import { LineBuilder } from '../dist/src/writer/line-builder.js';
import { OutBuffer } from '../dist/src/writer/out-buffer.js';
import { envelopeHead } from '../dist/src/files/format.js';
import { compileRedaction, createRedactor, resolveRedactSpec } from '../dist/src/writer/redact.js';

const MAX_DEPTH = 1000;

/** The line the writer builds for `event` (index 0, time 1 unless given), with the default policy or none. */
function built(event: object, redact: boolean, index = 0, ts = 1): string {
  const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
  enc.begin();
  enc.event(index, ts, null, undefined, event);
  const bytes = Buffer.from(enc.scratch.buf.subarray(0, enc.pos));
  const src = { u8: bytes, dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.length), buf: bytes as never };
  // Small, so that the hand-over grows the output buffer as any other write does.
  const out = new OutBuffer(16);
  new LineBuilder(enc.keys, redact ? compileRedaction(resolveRedactSpec(undefined)) : null).build(src, 0, out);
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
        for (const redact of [false, true]) expect(built(event, redact)).toBe(expected(event, redact));
      }
    }
    // Only strings with 256 bytes or more after a dense start are handed over: most of these are.
    expect(watch.handed()).toBeGreaterThan(20);
  });

  it('hands a string of many MB over in pieces (each under V8\'s string limit), byte-identical', () => {
    const watch = watchHandOver();
    // 3 MiB of controls: 18 MiB once escaped as \u00xx, past the first pieces' boundaries.
    const controls = dense(3 * 2 ** 20, 5);
    const event = { type: 'tool_result', output: controls };
    for (const redact of [false, true]) expect(built(event, redact)).toBe(expected(event, redact));
    // A secret in a later piece is still found: the whole string takes the redacting path.
    const secret = { output: `${controls} https://u:hunter2@h/ ${controls.slice(0, 1000)}` };
    const line = built(secret, true);
    expect(line).toBe(expected(secret, true));
    expect(line).not.toContain('hunter2');
    // Handed over: the plain string, twice; given back: the one with the secret, which is then
    // decoded and redacted whole.
    expect(watch.handed()).toBe(2);
    expect(watch.refused()).toBe(1);
  });

  it('carries the code points 0–0xff through the hand-over as the byte loop does', () => {
    // Every code point 0–0xff (UTF-8 of 0x80–0xff is two bytes each), ten times, dense with escapes.
    const all = Array.from({ length: 0x100 }, (_, c) => String.fromCharCode(c)).join('').repeat(10);
    const event = { all, reversed: [...all].reverse().join('') };
    for (const redact of [false, true]) expect(built(event, redact)).toBe(expected(event, redact));
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
      const line = built(event, true);
      expect(line).toBe(expected(event, true));
      expect(line).not.toContain('sk-live-123');
      expect(line).not.toContain('hunter2');
      expect(line).not.toContain('p4ss');
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
