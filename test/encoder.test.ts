// The caller-side encoder, in-process (no sink, no worker): a record is snapshotted exactly once
// wherever the room it was given runs out, and it comes out byte-identical to the same record made
// with room to spare; the snapshot limit rejects at once what no line could hold.

import { describe, expect, it } from 'vitest';
import { EventEncoder, MAX_RECORD_BYTES, Scratch, type Target } from '../dist/src/caller/encoder.js';
import { KeyTable } from '../dist/src/ring/keys.js';
import { LineBuilder } from '../dist/src/writer/line-builder.js';
import { OutBuffer } from '../dist/src/writer/out-buffer.js';

const MAX_DEPTH = 1000;

function target(size: number): Target {
  const buf = Buffer.alloc(size);
  return { u8: buf, dv: new DataView(buf.buffer, buf.byteOffset, size), buf: buf as Target['buf'] };
}

/** An event that counts what each snapshot runs: its getter, a toJSON, a Proxy's traps. */
function countingEvent(): { event: object; calls: { getter: number; toJSON: number; ownKeys: number } } {
  const calls = { getter: 0, toJSON: 0, ownKeys: 0 };
  const proxied = new Proxy({ a: 1, b: 'two' }, {
    ownKeys(t) {
      calls.ownKeys++;
      return Reflect.ownKeys(t);
    },
  });
  const event = {
    type: 'counting',
    text: 'naïve 東京 🙂 "quoted"\n',
    get counted(): number {
      calls.getter++;
      return 42;
    },
    when: { toJSON: () => (calls.toJSON++, '2026-12-02T00:00:00.000Z') },
    proxied,
    list: [1, 2.5, null, true, 'x'.repeat(40), { deep: [[]] }],
  };
  return { event, calls };
}

/** The record's bytes, wherever the encoder left them. */
function recordBytes(enc: EventEncoder, t: Target): Buffer {
  const src = enc.spilled ? enc.scratch.buf : (t.buf as unknown as Buffer);
  return Buffer.from(src.subarray(enc.start, enc.pos));
}

function line(bytes: Buffer, keys: KeyTable): string {
  const t = target(bytes.length);
  (t.buf as unknown as Buffer).set(bytes);
  const out = new OutBuffer(256);
  new LineBuilder(keys).build(t, 0, out);
  return out.buf.toString('utf8', 0, out.len);
}

describe('EventEncoder: one snapshot per event', () => {
  it('runs getters, toJSON and Proxy traps once, and makes the same bytes, at every cut-off point', () => {
    const reference = new EventEncoder(MAX_DEPTH, new Scratch(64));
    const roomy = target(4096);
    const { event: refEvent } = countingEvent();
    reference.begin(roomy, 0, roomy.u8.length);
    reference.event(7, 1_700_000_000_000, null, undefined, refEvent);
    expect(reference.spilled).toBe(false);
    const expected = recordBytes(reference, roomy);

    const problems: string[] = [];
    // Every room from none to the whole record and beyond, at an offset as in the ring.
    for (let room = 0; room <= expected.length + 64; room++) {
      const enc = new EventEncoder(MAX_DEPTH, new Scratch(16));
      const t = target(64 + expected.length + 64);
      const { event, calls } = countingEvent();
      enc.begin(t, 64, 64 + room);
      enc.event(7, 1_700_000_000_000, null, undefined, event);
      // It may spill a little before the end (values reserve a few bytes of slack), never after.
      if (room < expected.length && !enc.spilled) problems.push(`room ${room}: did not spill`);
      if (!recordBytes(enc, t).equals(expected)) problems.push(`room ${room}: different bytes`);
      if (calls.getter !== 1 || calls.toJSON !== 1 || calls.ownKeys !== 1) problems.push(`room ${room}: ran ${JSON.stringify(calls)}`);
    }
    expect(problems).toEqual([]);
  });

  it('a record that moves into scratch while it is being finished keeps its length and end together', () => {
    // Rooms just short of the aligned length: the move happens in the last step, the padding.
    const problems: string[] = [];
    for (let limit = 70; limit <= 90; limit++) {
      const enc = new EventEncoder(MAX_DEPTH, new Scratch(8));
      const t = target(200);
      enc.begin(t, 8, limit);
      enc.event(1, 2, null, undefined, { a: 'x'.repeat(30) });
      const bytes = recordBytes(enc, t);
      if (bytes.readUInt32LE(0) !== bytes.length || bytes.length % 8 !== 0) problems.push(`limit ${limit}: header ${bytes.readUInt32LE(0)}, record ${bytes.length}`);
    }
    expect(problems).toEqual([]);
  });

  it('a record that spilled reads back as the JSON.stringify line', () => {
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(8));
    const { event } = countingEvent();
    const t = target(100);
    enc.begin(t, 0, 100);
    enc.event(3, 5, null, undefined, event);
    expect(enc.spilled).toBe(true);
    const keys = new KeyTable();
    expect(line(recordBytes(enc, t), keys)).toBe(JSON.stringify({ index: 3, emitted_at_ms: 5, frame_depth: null, ...JSON.parse(JSON.stringify(event)) }));
  });

  it('arrays of numbers (written by one JSON.stringify in the writer) read back as JSON.stringify writes them', () => {
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
    const floats = Array.from({ length: 300 }, (_, i) => Math.sin(i) * 10 ** ((i % 40) - 20));
    const event = {
      type: 'embedding',
      vector: floats,
      ids: Array.from({ length: 50 }, (_, i) => i * 2_147_483 - 50_000_000),
      odd: [0, -0, NaN, Infinity, -Infinity, 1e21, 5e-324, 2 ** 31, -(2 ** 31) - 1, 0.1 + 0.2, 1, 2, 3],
      // Not numbers only: written element by element, the same text.
      mixed: [1, 2, 3, 4, 5, 6, 7, 8, 'nine', 10],
      short: [1.5, 2],
      nested: [[1, 2, 3, 4, 5, 6, 7, 8], [], [0.5, 0.25, 0.125, 1e-7, 1e-6, 123456789012, 3, 4, 5]],
    };
    enc.begin();
    enc.event(0, 1, null, undefined, event);
    expect(line(Buffer.from(enc.scratch.buf.subarray(0, enc.pos)), new KeyTable())).toBe(JSON.stringify({ index: 0, emitted_at_ms: 1, frame_depth: null, ...event }));
  });

  it('keys that are never interned (the table is full) are written as JSON.stringify writes them', () => {
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
    const wide: Record<string, number> = {};
    // 5,000 ever-new keys: the last 904 overflow the 4,096-id table; some need escapes or UTF-8.
    for (let i = 0; i < 5000; i++) wide[i % 7 === 0 ? `k"${i}\n東` : `key_${i}`] = i;
    enc.begin();
    enc.event(0, 1, null, undefined, wide);
    expect(line(Buffer.from(enc.scratch.buf.subarray(0, enc.pos)), new KeyTable())).toBe(
      JSON.stringify({ index: 0, emitted_at_ms: 1, frame_depth: null, ...wide }),
    );
  });

  it('an array too long for any snapshot is refused before it is walked (new Array(1e9))', () => {
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
    const sparse = new Array(1e9);
    let touched = 0;
    Object.defineProperty(sparse, 5, { get: () => ++touched, enumerable: true });
    enc.begin();
    expect(() => enc.event(0, 1, null, undefined, { rows: sparse })).toThrow(
      new RangeError(`an array of length 1000000000 would exceed the snapshot limit of ${MAX_RECORD_BYTES / 2 ** 20} MiB`),
    );
    expect(touched).toBe(0);
    expect(MAX_RECORD_BYTES).toBe(2 ** 29);
  });

  it('a snapshot that outgrows the limit fails with a RangeError, and the encoder works on', () => {
    const limit = 64 * 1024;
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024), new KeyTable(), limit);
    const wide: Record<string, string> = {};
    for (let i = 0; i < 10_000; i++) wide[`k${i}`] = 'value';
    enc.begin();
    expect(() => enc.event(0, 1, null, undefined, wide)).toThrow(new RangeError("the event's snapshot would exceed 65536 bytes"));
    enc.abandon();
    enc.begin();
    enc.event(1, 2, null, undefined, { type: 'after' });
    expect(line(Buffer.from(enc.scratch.buf.subarray(0, enc.pos)), enc.keys)).toBe('{"index":1,"emitted_at_ms":2,"frame_depth":null,"type":"after"}');
  });
});
