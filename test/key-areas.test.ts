// Key areas (src/ring/key-areas.ts), in-process: a producer that is not the ring's owner interns
// its keys in an area of the ring's own memory and sends only ids, so any consumer of the ring —
// one that never saw the producer's earlier records (a writer replacing a dead one, the owner
// draining at exit) — builds the same line JSON.stringify makes. A thread has one area per ring,
// taken at its first key and kept however many producers it makes for that ring. Areas run out (15
// per ring, 64 KiB of names each): keys are then sent whole, still byte-identical. Threads are
// played here by KeyArea.of's thread argument; with real threads: test/shared-ring.test.ts
// (producers, and a writer terminated under them) and test/worker-sinks.test.ts.

import { describe, expect, it } from 'vitest';
import { MessageChannel, receiveMessageOnPort } from 'node:worker_threads';
import { EventEncoder, Scratch } from '../dist/src/caller/encoder.js';
import { KeyArea, areaKeyName } from '../dist/src/ring/key-areas.js';
import { KeyTable } from '../dist/src/ring/keys.js';
import { createRing, ringViews, type RingViews } from '../dist/src/ring/memory.js';
import { Ctl, KEY_AREA_KEYS, KEY_AREAS } from '../dist/src/ring/slots.js';
import { RECORD_HEADER, Tag } from '../dist/src/ring/records.js';
import { LineBuilder } from '../dist/src/writer/line-builder.js';
import { OutBuffer } from '../dist/src/writer/out-buffer.js';
import { compileRedaction, createRedactor, resolveRedactSpec } from '../dist/src/writer/redact.js';

const MAX_DEPTH = 1000;

/** A record of `event` made by `enc` (index and time 0/1), copied out of its scratch. */
function record(enc: EventEncoder, event: object, index = 0): Buffer {
  enc.begin();
  enc.event(index, 1, null, undefined, event);
  return Buffer.from(enc.scratch.buf.subarray(0, enc.pos));
}

/** The line a consumer of `ring` builds from `bytes`, with a key table of its own (and the
 *  default redaction policy with `redact`). */
function line(ring: RingViews, keys: KeyTable, bytes: Buffer, redact = false): string {
  keys.areas = (id) => areaKeyName(ring, id);
  const src = { u8: bytes, dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.length), buf: bytes as never };
  const out = new OutBuffer(64);
  new LineBuilder(keys, redact ? compileRedaction(resolveRedactSpec(undefined)) : null).build(src, 0, out);
  return out.buf.toString('utf8', 0, out.len);
}

const expected = (event: object, index = 0): string => JSON.stringify({ index, emitted_at_ms: 1, frame_depth: null, ...event });

/** The tag of every key entry in a record made by record(), in order, walking its values. */
function keyTags(bytes: Buffer): number[] {
  const tags: number[] = [];
  const value = (p: number): number => {
    const tag = bytes[p]!;
    if (tag === Tag.NULL || tag === Tag.FALSE || tag === Tag.TRUE) return p + 1;
    if (tag === Tag.I32) return p + 5;
    if (tag === Tag.F64) return p + 9;
    if (tag === Tag.STR || tag === Tag.RAW || tag === Tag.JSON_OBJECT) return p + 5 + bytes.readUInt32LE(p + 1);
    if (tag === Tag.ARR) {
      const n = bytes.readUInt32LE(p + 1);
      p += 5;
      for (let i = 0; i < n; i++) p = value(p);
      return p;
    }
    if (tag !== Tag.OBJ) throw new Error(`unexpected tag ${tag} at ${p}`);
    p++;
    while (bytes[p] !== Tag.END) {
      const k = bytes[p]!;
      tags.push(k);
      if (k === Tag.KEY_ID) p += 3;
      else if (k === Tag.KEY_DEF) p += 5 + bytes.readUInt16LE(p + 3);
      else p += 5 + bytes.readUInt32LE(p + 1);
      p = value(p);
    }
    return p + 1;
  };
  // Header (8 bytes), index and time (f64 each), frame_depth, then the event (no execution id here).
  value(value(RECORD_HEADER + 16));
  return tags;
}

describe('key areas', () => {
  it('a producer sends a key\'s name once, into the ring, and only ids after: a consumer that joins late builds every line', () => {
    const ring = createRing(64 * 1024);
    const area = KeyArea.of(ring, 101);
    expect(area.area).toBe(0); // taken at the first key
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, area);
    const events = [
      { type: 'tool_call', tool_name: 'read_file', input: { path: 'a.ts', 'é日本😀': 1, '"q"\\': [true] } },
      { type: 'tool_call', tool_name: 'grep', input: { path: 'b.ts' } },
    ];
    const records = events.map((e, i) => record(enc, e, i));
    expect(area.area).toBe(1);
    // No key definition travels in a record: ids of the area's block, or nothing.
    for (const r of records) expect(keyTags(r).every((t) => t === Tag.KEY_ID)).toBe(true);
    // The second record only refers to keys the first one introduced; a consumer that never saw the
    // first (a writer that took over after it) still builds it.
    expect(line(ring, new KeyTable(), records[1]!)).toBe(expected(events[1]!, 1));
    expect(line(ring, new KeyTable(), records[0]!)).toBe(expected(events[0]!, 0));
  });

  it('areas of several producers and the owner\'s own ids share one ring without clashing', () => {
    const ring = createRing(64 * 1024);
    const owner = new EventEncoder(MAX_DEPTH, new Scratch(256));
    const producers = [1, 2, 3].map((t) => new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring, t)));
    const consumer = new KeyTable(); // one consumer for all, as the writer is
    for (let i = 0; i < 50; i++) {
      for (const [p, enc] of [owner, ...producers].entries()) {
        const event = { type: `t${p}`, [`k${p}_${i % 7}`]: i, shared: { [`n${i % 5}`]: p } };
        // The owner's records carry their own definitions: a consumer sees them in order.
        expect(line(ring, consumer, record(enc, event, i))).toBe(expected(event, i));
      }
    }
  });

  it('under the default redaction policy, an area\'s sensitive keys are censored as the owner\'s are', () => {
    const ring = createRing(64 * 1024);
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring, 7));
    const redactor = createRedactor(undefined)!;
    const events = [
      { type: 'tool_call', input: { password: 'hunter2', path: 'a.ts' }, api_key: 'sk-1' },
      { type: 'tool_call', input: { password: 'again', path: 'b.ts' }, api_key: 'sk-2', note: 'x' },
    ];
    const consumer = new KeyTable();
    for (const [i, e] of events.entries()) {
      const got = line(ring, consumer, record(enc, e, i), true);
      expect(got).toBe(expected(redactor(e) as object, i));
      expect(got).not.toContain('hunter2');
      expect(got).not.toContain('sk-2');
    }
  });

  it('a record abandoned after it introduced a key does not undo it: the id stays valid for later records', () => {
    const ring = createRing(64 * 1024);
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring, 7));
    record(enc, { fresh: 1 });
    enc.abandon();
    enc.resetKeys();
    const later = record(enc, { fresh: 2 });
    expect(keyTags(later)).toEqual([Tag.KEY_ID]);
    expect(line(ring, new KeyTable(), later)).toBe(expected({ fresh: 2 }));
  });

  it('gives out 15 areas per ring, one per thread; a thread after that sends its keys whole, still byte-identical', () => {
    const ring = createRing(64 * 1024);
    const event = { type: 'x', key: 1, nested: { key: 2 } };
    const consumer = new KeyTable();
    const areas = Array.from({ length: KEY_AREAS + 2 }, (_, t) => KeyArea.of(ring, 1000 + t));
    for (const [t, area] of areas.entries()) {
      const r = record(new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, area), event, t);
      expect(area.area).toBe(t < KEY_AREAS ? t + 1 : 0);
      expect(keyTags(r).every((tag) => tag === (t < KEY_AREAS ? Tag.KEY_ID : Tag.KEY_INLINE))).toBe(true);
      expect(line(ring, consumer, r)).toBe(expected(event, t));
    }
    // Taking stops at the last area: however many threads come, the count never runs past it.
    expect(ring.ctl[Ctl.KEY_AREAS_TAKEN]).toBe(KEY_AREAS);
  });

  it('a thread keeps one area per ring: its producers share it, even through another copy of the ring\'s memory object (a second handle)', () => {
    const ring = createRing(64 * 1024);
    const first = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring));
    const r1 = record(first, { alpha: 1, beta: 2 });
    // A message gives the thread a new SharedArrayBuffer object over the same memory, as a second
    // handle (or a registry's route coming back) delivers the ring again.
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(ring.sab);
    const again = ringViews(receiveMessageOnPort(port2)!.message as SharedArrayBuffer);
    port1.close();
    expect(again.sab).not.toBe(ring.sab);
    const second = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(again));
    const r2 = record(second, { beta: 3, gamma: 4 });
    expect(ring.ctl[Ctl.KEY_AREAS_TAKEN]).toBe(1);
    expect(KeyArea.of(again).area).toBe(KeyArea.of(ring).area);
    // `beta` has the id the first producer gave it; `gamma` is new in the same area.
    const consumer = new KeyTable();
    expect(line(again, consumer, r1)).toBe(expected({ alpha: 1, beta: 2 }));
    expect(line(again, consumer, r2)).toBe(expected({ beta: 3, gamma: 4 }));
    expect(keyTags(r2)).toEqual([Tag.KEY_ID, Tag.KEY_ID]);
    // Both objects write the area one after the other: each new key gets the next entry.
    const r3 = record(first, { delta: 5 });
    const r4 = record(second, { epsilon: 6 });
    expect(line(ring, new KeyTable(), r3)).toBe(expected({ delta: 5 }));
    expect(line(ring, new KeyTable(), r4)).toBe(expected({ epsilon: 6 }));
    expect(line(ring, new KeyTable(), r1)).toBe(expected({ alpha: 1, beta: 2 }));
  });

  it('an area full of keys (4,096) or of name bytes (64 KiB) sends the next keys whole; long and malformed keys always go whole', () => {
    const ring = createRing(64 * 1024);
    const many = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring, 7));
    const wide = Object.fromEntries(Array.from({ length: KEY_AREA_KEYS + 10 }, (_, i) => [`k${i}`, i]));
    const r1 = record(many, wide);
    expect(keyTags(r1).filter((t) => t === Tag.KEY_ID)).toHaveLength(KEY_AREA_KEYS);
    expect(keyTags(r1).filter((t) => t === Tag.KEY_INLINE)).toHaveLength(10);
    expect(line(ring, new KeyTable(), r1)).toBe(expected(wide));

    const long = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring, 8));
    // 60 three-byte characters a key (180 bytes): 364 of them fill 64 KiB.
    const heavy = Object.fromEntries(Array.from({ length: 400 }, (_, i) => [`${'日'.repeat(56)}${String(i).padStart(4, '0')}`, i]));
    const r2 = record(long, heavy);
    const ids = keyTags(r2).filter((t) => t === Tag.KEY_ID).length;
    expect(ids).toBeGreaterThan(300);
    expect(ids).toBeLessThan(400);
    expect(line(ring, new KeyTable(), r2)).toBe(expected(heavy));

    const odd = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring, 9));
    const event = { ['x'.repeat(65)]: 1, ['\ud800lone']: 2, plain: 3 };
    const r3 = record(odd, event);
    expect(keyTags(r3)).toEqual([Tag.KEY_INLINE, Tag.KEY_INLINE, Tag.KEY_ID]);
    expect(line(ring, new KeyTable(), r3)).toBe(expected(event));
  });

  it('an id no producer defined is a corrupt record, reported as such', () => {
    const ring = createRing(64 * 1024);
    const enc = new EventEncoder(MAX_DEPTH, new Scratch(256), undefined, undefined, KeyArea.of(ring, 7));
    const r = record(enc, { a: 1 });
    // Point the id at the second key of the area, which was never defined.
    const at = r.indexOf(Tag.KEY_ID);
    r.writeUInt16LE(KEY_AREA_KEYS + 1, at + 1);
    expect(() => line(ring, new KeyTable(), r)).toThrow(/key id 4097 was never defined/);
    // And an id of an area the ring has no producer for.
    r.writeUInt16LE(KEY_AREA_KEYS * 9, at + 1);
    expect(() => line(ring, new KeyTable(), r)).toThrow(/never defined/);
  });
});
