// Contract 1: one event = one line, `{"index","emitted_at_ms","frame_depth",[execution_id],...event}`,
// byte-identical to JSON.stringify({ index, emitted_at_ms, frame_depth, ...event }) for
// JSON-compatible events.

import { afterEach, describe, expect, it, vi } from 'vitest';
import * as path from 'node:path';
import { JsonlEventSink } from '../dist/src/index.js';
import { EventEncoder } from '../dist/src/caller/encoder.js';
import { makeCorpus } from '../dist/demo/corpus.js';
import { BASE_NAME, expectedLine, firstDifference, readLines, tempDirs, type Context } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

type Ev = Record<string, unknown>;
interface Case {
  event: Ev;
  ctx?: Context;
}

/** Logs the cases (with their contexts), closes, and checks every line byte for byte. */
async function roundTrip(label: string, cases: readonly Case[], options?: Parameters<typeof JsonlEventSink.open>[1]): Promise<void> {
  const dir = dirs.make(label);
  const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), options);
  for (const c of cases) sink.handleEvent(c.event as never, c.ctx);
  expect(sink.eventCount()).toBe(cases.length);
  await sink.close();
  const { raw, lines } = readLines(dir);
  expect(raw).toHaveLength(cases.length);
  const problems: string[] = [];
  cases.forEach((c, i) => {
    const want = expectedLine(i, lines[i]!.emitted_at_ms, c.event, c.ctx);
    const diff = firstDifference(raw[i]!, want);
    if (diff !== undefined) problems.push(`line ${i}: ${diff}`);
  });
  expect(problems).toEqual([]);
}

const ALL_CONTROL = Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)).join('');
const LONG_ASCII = 'the agent reads the file and writes a patch; '.repeat(40);

const unicodeEvents: Ev[] = [
  { type: 'unicode', text: 'naïve café Größe élève' },
  { type: 'unicode', text: '東京 中文字符 漢字 かな カナ 한국어' },
  { type: 'unicode', text: '🙂 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇯🇵' },
  { type: 'unicode', text: 'مرحبا بالعالم שלום данные π≈3.14 ✓' },
  { type: 'unicode', text: 'e\u0301 combining, \ufeff BOM, \u2028 LS \u2029 PS, \u007f DEL, \u00a0 nbsp' },
  { type: 'unicode', text: 'lone surrogates \ud800 and \udfff and reversed \udc00\ud800' },
  { type: 'unicode', short: '\ud83d', long: 'x'.repeat(100) + '\udbff' + '東京'.repeat(30) },
  { type: 'unicode', long: ('東京🙂 naïve ' + LONG_ASCII).repeat(3) },
  { type: 'unicode', 東京: 'cjk key', '🙂': 'emoji key', 'clé': 'accented key' },
  { type: 'unicode', ['k\ud800']: 'key with a lone surrogate' },
];

const escapeEvents: Ev[] = [
  { type: 'escapes', all_control: ALL_CONTROL },
  { type: 'escapes', each: Array.from({ length: 0x20 }, (_, i) => String.fromCharCode(i)) },
  { type: 'escapes', quotes: 'say "hi" and \'bye\'', backslashes: 'C:\\path\\to\\file \\\\ \\u0041 \\n', slash: 'a/b</script>' },
  { type: 'escapes', mixed: `"${ALL_CONTROL}\\"`.repeat(5) + LONG_ASCII },
  { type: 'escapes', 'key "with" quotes': 1, 'key\\with\\backslash': 2, 'key\nwith\tcontrol\u0000': 3, '': 'empty key' },
  { type: 'escapes', ['k'.repeat(100) + '"\n']: 'long key (not interned) with escapes' },
];

const numberEvents: Ev[] = [
  { type: 'numbers', zero: 0, neg_zero: -0, one: 1, minus_one: -1 },
  { type: 'numbers', i32max: 2147483647, i32min: -2147483648, above: 2147483648, below: -2147483649 },
  { type: 'numbers', floats: [1.5, -2.75, 0.1 + 0.2, 123456789.123, 1 / 3, -1e-7, 1e-7] },
  { type: 'numbers', big: 1e21, neg_big: -1e21, just_below: 999999999999999900000, huge: Number.MAX_VALUE, tiny: 5e-324 },
  { type: 'numbers', safe: Number.MAX_SAFE_INTEGER, neg_safe: Number.MIN_SAFE_INTEGER, eps: Number.EPSILON },
  { type: 'numbers', as_array: [0, -0, -1, 1e21, 1e300, -1.5e-300] },
];

const structureEvents: Ev[] = [
  { type: 'structure', nested: { a: [1, [2, [3, [4, { deep: [[], {}] }]]]], b: { c: { d: { e: null } } } } },
  { type: 'structure', empty_obj: {}, empty_arr: [], arr_of_empties: [{}, [], '', 0, null, false] },
  { type: 'structure', nulls: null, list: [null, null], obj: { x: null } },
  { type: 'structure', bools: [true, false], t: true, f: false },
  { type: 'structure', mixed: [1, 'two', { three: 3 }, [4], null, true, -0.5] },
  { type: 'structure', int_keys: { '10': 'ten', '2': 'two', b: 'bee', '1': 'one', a: 'ay' } },
  { type: 'structure', deep: JSON.parse('['.repeat(200) + '"bottom"' + ']'.repeat(200)) as unknown },
  { type: 'structure', many: Array.from({ length: 500 }, (_, i) => ({ i, s: `item ${i}`, f: i / 7 })) },
  {},
];

// Optional fields: same type, fields present or absent (undefined is skipped, as JSON.stringify does).
const optionalEvents: Ev[] = [
  { type: 'iteration_end', iteration: 1, stop_reason: 'end_turn', cost_usd: 0.01 },
  { type: 'iteration_end', iteration: 2 },
  { type: 'iteration_end', iteration: 3, stop_reason: undefined, cost_usd: 0.02 },
  { type: 'iteration_end', cost_usd: 0.03, iteration: 4 },
  { type: 'iteration_end', iteration: 5, nested: { maybe: undefined, here: 1 } },
];

const contexts: (Context | undefined)[] = [
  undefined,
  {},
  { frameDepth: 0 },
  { frameDepth: 3 },
  { frameDepth: 2.5 },
  { frameDepth: -1 },
  { executionId: 'exec-1' },
  { executionId: '' },
  { executionId: 'exé "cu\ttion" 🙂 \u0001' },
  { frameDepth: 7, executionId: 'exec-2' },
  { frameDepth: 0, executionId: 'x'.repeat(300) },
];

describe('line format', () => {
  it('is byte-identical to JSON.stringify over unicode, escapes, numbers, structures and optional fields', async () => {
    const events = [...unicodeEvents, ...escapeEvents, ...numberEvents, ...structureEvents, ...optionalEvents];
    await roundTrip('varied', events.map((event) => ({ event })));
  });

  it('writes frame_depth (null unless given) and execution_id (right after it, only when given)', async () => {
    const cases: Case[] = [];
    for (const ctx of contexts) {
      cases.push({ event: { type: 'ctx', text: 'hello' }, ...(ctx ? { ctx } : {}) });
      cases.push({ event: { type: 'ctx', nested: { a: [1, 2] } }, ...(ctx ? { ctx } : {}) });
    }
    await roundTrip('context', cases);
  });

  it('puts frame_depth and execution_id in the envelope, in that order', async () => {
    const dir = dirs.make('envelope');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ type: 'a' });
    sink.handleEvent({ type: 'b' }, { frameDepth: 4 });
    sink.handleEvent({ type: 'c' }, { executionId: 'e-1' });
    sink.handleEvent({ type: 'd' }, { frameDepth: 2, executionId: 'e-2' });
    await sink.close();
    const { raw, lines } = readLines(dir);
    const ts = lines.map((l) => l.emitted_at_ms);
    expect(raw).toEqual([
      `{"index":0,"emitted_at_ms":${ts[0]},"frame_depth":null,"type":"a"}`,
      `{"index":1,"emitted_at_ms":${ts[1]},"frame_depth":4,"type":"b"}`,
      `{"index":2,"emitted_at_ms":${ts[2]},"frame_depth":null,"execution_id":"e-1","type":"c"}`,
      `{"index":3,"emitted_at_ms":${ts[3]},"frame_depth":2,"execution_id":"e-2","type":"d"}`,
    ]);
  });

  it("is byte-identical for the project's seeded corpus (large and small shapes)", async () => {
    const large = makeCorpus(1500, 42);
    const small = makeCorpus(1500, 7, true);
    const cases: Case[] = [];
    for (let i = 0; i < large.length; i++) {
      cases.push({ event: large[i]!, ...(i % 5 === 0 ? { ctx: { frameDepth: i % 9 } } : {}) });
      cases.push({ event: small[i]!, ...(i % 7 === 0 ? { ctx: { frameDepth: 1, executionId: `run-${i}` } } : {}) });
    }
    await roundTrip('corpus', cases);
  });

  it('stays byte-identical across thousands of distinct keys and shapes', async () => {
    // More distinct keys than the key table holds, long keys, and shapes changing every event.
    const cases: Case[] = [];
    for (let i = 0; i < 6000; i++) {
      const event: Ev = { type: 'keys', [`key_${i}`]: i, [`k${i % 50}`]: `v${i}` };
      if (i % 3 === 0) event[`long_${'x'.repeat(70)}_${i}`] = [i, { [`inner_${i}`]: true }];
      cases.push({ event });
    }
    await roundTrip('keys', cases);
  });

  it('is byte-identical through a small ring (records wrapping, overflow queue, external records)', async () => {
    const large = makeCorpus(3000, 11);
    const cases: Case[] = large.map((event) => ({ event }));
    cases.splice(100, 0, { event: { type: 'big', text: '東京🙂 '.repeat(20_000) } });
    await roundTrip('small-ring', cases, { ringBytes: 64 * 1024 });
  });

  it('is byte-identical whether the writer keeps up or not (non-ASCII text as UTF-16 or UTF-8, numbers as numbers or text)', async () => {
    const encoder = EventEncoder.prototype as unknown as Record<'wideString' | 'numberText', (...args: unknown[]) => unknown>;
    const wide = vi.spyOn(encoder, 'wideString');
    const numberText = vi.spyOn(encoder, 'numberText');
    try {
      const cases: Case[] = Array.from({ length: 3000 }, (_, i) => ({
        event: {
          type: 'mixed',
          text: `${'日本語の文章 данные 😀 '.repeat(1 + (i % 30))}\n"${i}"`,
          lone: i % 97 === 0 ? `x\ud800${'é'.repeat(40)}` : 'ascii',
          embedding: Array.from({ length: 8 + (i % 64) }, (_, k) => Math.round(Math.sin(i + k) * 1e6) / 1e6),
          ids: Array.from({ length: 16 }, (_, k) => (i * 31 + k) % 100_000),
        },
      }));
      // One burst through a 64 KiB ring: it passes half full at once, and the writer drains it
      // while the burst waits for room ('block'), so both forms of both land in one file.
      await roundTrip('writer-behind', cases, { ringBytes: 64 * 1024, overload: 'block' });
      expect(wide.mock.calls.length).toBeGreaterThan(0);
      expect(numberText.mock.calls.length).toBeGreaterThan(0);
      expect(wide.mock.calls.length).toBeLessThan(cases.length);
    } finally {
      wide.mockRestore();
      numberText.mockRestore();
    }
  });

  it('snapshots the event during handleEvent: later mutation does not reach the file', async () => {
    const dir = dirs.make('snapshot');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    const event = { type: 'mutable', list: [1, 2], nested: { v: 'before' } as Ev };
    sink.handleEvent(event);
    event.list.push(3);
    event.nested.v = 'after';
    (event as Ev).added = true;
    await sink.close();
    const { lines } = readLines(dir);
    expect(lines[0]).toEqual({ index: 0, emitted_at_ms: lines[0]!.emitted_at_ms, frame_depth: null, type: 'mutable', list: [1, 2], nested: { v: 'before' } });
  });

  it('writes an event field named like an envelope key as event_<name>, in place', async () => {
    const dir = dirs.make('collide');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ type: 'a', index: 99, emitted_at_ms: 1, frame_depth: 5, after: true });
    sink.handleEvent({ frame_depth: 'x', type: 'b', index: { nested: [1] } }, { frameDepth: 2 });
    // execution_id is an envelope key only when the caller passes one.
    sink.handleEvent({ type: 'c', execution_id: 'from-event' });
    sink.handleEvent({ type: 'd', execution_id: 'from-event' }, { executionId: 'from-caller' });
    // Nested keys are the event's business: untouched.
    sink.handleEvent({ type: 'e', inner: { index: 1, emitted_at_ms: 2, frame_depth: 3 } });
    await sink.close();
    const { raw, lines } = readLines(dir);
    const ts = lines.map((l) => l.emitted_at_ms);
    expect(raw).toEqual([
      `{"index":0,"emitted_at_ms":${ts[0]},"frame_depth":null,"type":"a","event_index":99,"event_emitted_at_ms":1,"event_frame_depth":5,"after":true}`,
      `{"index":1,"emitted_at_ms":${ts[1]},"frame_depth":2,"event_frame_depth":"x","type":"b","event_index":{"nested":[1]}}`,
      `{"index":2,"emitted_at_ms":${ts[2]},"frame_depth":null,"type":"c","execution_id":"from-event"}`,
      `{"index":3,"emitted_at_ms":${ts[3]},"frame_depth":null,"execution_id":"from-caller","type":"d","event_execution_id":"from-event"}`,
      `{"index":4,"emitted_at_ms":${ts[4]},"frame_depth":null,"type":"e","inner":{"index":1,"emitted_at_ms":2,"frame_depth":3}}`,
    ]);
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4]);
  });

  it('never loses an event field to a renamed envelope key (no duplicate keys in a line)', async () => {
    // An event having both `index` and its own `event_index`: renaming the first must not produce
    // a second "event_index" key, which every JSON reader collapses (losing one of the values).
    const dir = dirs.make('collide-dup');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ type: 'dup', event_index: 1, index: 2 });
    await sink.close();
    const { raw, lines } = readLines(dir);
    const keys = [...raw[0]!.matchAll(/"([^"\\]*)":/g)].map((m) => m[1]);
    expect(new Set(keys).size).toBe(keys.length);
    // Both of the event's values are still in the parsed line: the renamed key is prefixed again
    // while the event already has a field by that name.
    expect(Object.values(lines[0]!)).toEqual(expect.arrayContaining([1, 2]));
    expect(raw[0]).toBe(`{"index":0,"emitted_at_ms":${lines[0]!.emitted_at_ms},"frame_depth":null,"type":"dup","event_index":1,"event_event_index":2}`);
  });

  it('writes the envelope first even when the event has integer-like top-level keys', async () => {
    // JSON.stringify({index, ...event}) would hoist "2"/"10" before "index"; ringlog keeps the
    // envelope first (contract 1: "the envelope keys first, in that order").
    const dir = dirs.make('intkeys');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ b: 1, '10': 'ten', '2': 'two', a: { '5': 1, z: 2, '1': 3 } });
    await sink.close();
    const { raw, lines } = readLines(dir);
    expect(raw[0]).toBe(`{"index":0,"emitted_at_ms":${lines[0]!.emitted_at_ms},"frame_depth":null,"2":"two","10":"ten","b":1,"a":{"1":3,"5":1,"z":2}}`);
  });
});

describe('values JSON cannot represent as-is', () => {
  it('follows JSON.stringify where it has an answer (toJSON, Date, boxed primitives, NaN, undefined, functions, symbols, Map/Set, typed arrays)', async () => {
    const withToJSON = { toJSON: (key: string) => ({ serialized: true, key }) };
    const events: Ev[] = [
      { type: 'v', date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 6)), custom: withToJSON },
      { type: 'v', num: new Number(3), str: new String('boxed'), bool: new Boolean(false) },
      { type: 'v', nan: NaN, inf: Infinity, ninf: -Infinity, list: [NaN, Infinity] },
      { type: 'v', skipped: undefined, fn: () => 1, sym: Symbol('s'), arr: [undefined, () => 1, Symbol('t')] },
      { type: 'v', map: new Map([[1, 2]]), set: new Set([1]), u8: new Uint8Array([1, 2, 3]), f64: new Float64Array([0.5]) },
      { type: 'v', arr_to_json: [withToJSON, new Date(0)] },
      Object.assign(Object.create({ inherited: 'not written' }) as Ev, { type: 'v', own: 'written' }),
    ];
    await roundTrip('non-json-stringify', events.map((event) => ({ event })));
  });

  it('writes BigInt as its decimal digits in a string and a cycle as "[Circular]"', async () => {
    const dir = dirs.make('bigint-cycle');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    const cyclic: Ev = { type: 'cycle', name: 'root' };
    cyclic.self = cyclic;
    cyclic.list = [cyclic, 1];
    sink.handleEvent({ type: 'bigint', big: 12345678901234567890n, neg: -5n, in_array: [1n] });
    sink.handleEvent(cyclic);
    await sink.close();
    const { lines } = readLines(dir);
    expect(lines[0]).toMatchObject({ index: 0, type: 'bigint', big: '12345678901234567890', neg: '-5', in_array: ['1'] });
    expect(lines[1]).toMatchObject({ index: 1, type: 'cycle', name: 'root', self: '[Circular]', list: ['[Circular]', 1] });
  });

  it('never throws from handleEvent: a non-object or unreadable event becomes an event_rejected line with its index', async () => {
    const dir = dirs.make('rejected');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    const throwing = Object.defineProperty({ type: 'getter' }, 'boom', {
      enumerable: true,
      get() {
        throw new Error('getter exploded');
      },
    });
    const bad: unknown[] = [null, undefined, 42, 'text', [1, 2], throwing, { toJSON: () => { throw new Error('toJSON exploded'); } }];
    sink.handleEvent({ type: 'first' });
    for (const ev of bad) expect(() => sink.handleEvent(ev as never, { frameDepth: 1 })).not.toThrow();
    sink.handleEvent({ type: 'last' });
    expect(sink.eventCount()).toBe(bad.length + 2);
    await sink.close();
    expect(sink.stats().rejected).toBe(bad.length);
    const { lines } = readLines(dir);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: bad.length + 2 }, (_, i) => i));
    expect(lines[0]!.type).toBe('first');
    expect(lines[bad.length + 1]!.type).toBe('last');
    for (let i = 1; i <= bad.length; i++) {
      expect(lines[i]).toMatchObject({ index: i, frame_depth: 1, type: 'event_rejected' });
      expect(typeof lines[i]!.reason).toBe('string');
    }
    expect(String(lines[6]!.reason)).toContain('getter exploded');
    expect(String(lines[7]!.reason)).toContain('toJSON exploded');
  });

  it('writes a value nested deeper than maxDepth as "[MaxDepth]"', async () => {
    const dir = dirs.make('maxdepth');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { maxDepth: 3 });
    sink.handleEvent({ type: 'deep', a: { b: { c: { d: 1 } } }, ok: { b: 1 } });
    await sink.close();
    const { lines } = readLines(dir);
    expect(lines[0]).toMatchObject({ type: 'deep', a: { b: '[MaxDepth]' }, ok: { b: 1 } });
  });
});
