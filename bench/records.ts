// Ring records for the micro-benchmarks: events encoded back to back into one buffer, exactly as
// handleEvent encodes them (same encoder, same key interning), so a decoder can be timed alone.

import { EventEncoder, Scratch, type Target } from '../src/caller/encoder.js';
import { KeyTable } from '../src/ring/keys.js';
import { DEFAULT_MAX_DEPTH } from '../src/caller/options.js';

export interface EncodedRecords {
  target: Target & { u16: Uint16Array | undefined };
  offsets: number[];
  used: number;
}

export function encodeRecords(events: readonly object[], stamp: (i: number) => number): EncodedRecords {
  const enc = new EventEncoder(DEFAULT_MAX_DEPTH, new Scratch(64 * 1024), new KeyTable());
  const all = new Scratch(1 << 20);
  const offsets: number[] = new Array(events.length);
  let used = 0;
  for (let i = 0; i < events.length; i++) {
    enc.begin();
    enc.event(i, stamp(i), null, undefined, events[i]!);
    all.ensure(used + enc.pos, used);
    all.u8.set(enc.scratch.u8.subarray(0, enc.pos), used);
    offsets[i] = used;
    used += enc.pos;
  }
  // As the ring is read: the records' UTF-16 strings in place, through a view of the same bytes.
  const u16 = all.buf.byteOffset % 2 === 0 ? new Uint16Array(all.buf.buffer, all.buf.byteOffset, all.buf.byteLength >>> 1) : undefined;
  return { target: { u8: all.u8, dv: all.dv, buf: all.buf, u16 }, offsets, used };
}
