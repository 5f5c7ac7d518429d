// The visibility probe's reader: a worker thread that tails every file in the contender's
// directory and stamps when each probe line becomes readable. It runs in the contender's process
// so that its clock (performance.timeOrigin + performance.now()) agrees with the producer's.

import { closeSync, openSync, readdirSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { workerData } from 'node:worker_threads';
import { STOP, type ReaderData } from './visibility.js';

// How long the reader sleeps when no file has grown: it bounds the latency's quantisation. 0.2 ms
// is well under the 5 ms between probes and costs a few thousand futex wake-ups a second, a few
// per cent of one core, paid the same by every contender.
const IDLE_POLL_MS = 0.2;
// New segments (ringlog rotates every 100 MiB) are looked for this often: listing the directory on
// every poll would cost more than the reads. A probe in a fresh segment can be seen up to this late.
const LIST_EVERY_MS = 10;
// One read takes up to this much; at 20,000 events/s of 1.3 KB, ~40 ms of output.
const READ_BYTES = 1 << 20;
const MARKER = Buffer.from('"probe":');

interface Tail {
  fd: number;
  offset: number;
  /** Bytes after the last newline read so far: the start of a line not yet whole. */
  carry: Buffer;
}

const { dir, seen: seenBuf, control: controlBuf } = workerData as ReaderData;
const seen = new Float64Array(seenBuf);
const control = new Int32Array(controlBuf);
const tails = new Map<string, Tail>();
const buf = Buffer.allocUnsafe(READ_BYTES);

function listFiles(): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile() || tails.has(entry.name)) continue;
    tails.set(entry.name, { fd: openSync(join(dir, entry.name), 'r'), offset: 0, carry: Buffer.alloc(0) });
  }
}

/** Stamps every probe whose whole line (newline included) is in `chunk`. */
function scan(tail: Tail, data: Buffer, now: number): void {
  const chunk = tail.carry.length > 0 ? Buffer.concat([tail.carry, data]) : data;
  const end = chunk.lastIndexOf(10);
  if (end === -1) {
    tail.carry = Buffer.from(chunk);
    return;
  }
  for (let at = chunk.indexOf(MARKER); at !== -1 && at < end; at = chunk.indexOf(MARKER, at + 1)) {
    let k = 0;
    for (let p = at + MARKER.length; chunk[p]! >= 48 && chunk[p]! <= 57; p++) k = k * 10 + chunk[p]! - 48;
    if (k < seen.length && seen[k] === 0) seen[k] = now;
  }
  // Copied: `data` is a view of the shared read buffer, which the next read overwrites.
  tail.carry = Buffer.from(chunk.subarray(end + 1));
}

let lastList = -Infinity;
for (;;) {
  if (performance.now() - lastList >= LIST_EVERY_MS) {
    listFiles();
    lastList = performance.now();
  }
  let grew = false;
  for (const tail of tails.values()) {
    const n = readSync(tail.fd, buf, 0, READ_BYTES, tail.offset);
    if (n === 0) continue;
    grew = true;
    tail.offset += n;
    scan(tail, buf.subarray(0, n), performance.timeOrigin + performance.now());
  }
  if (grew) continue;
  if (Atomics.load(control, 0) === STOP) break;
  Atomics.wait(control, 0, 0, IDLE_POLL_MS);
}
for (const tail of tails.values()) closeSync(tail.fd);
