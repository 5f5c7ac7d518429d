// Contract 7 and README "Guarantees" (a write fault): real write faults — /dev/full, a full
// tmpfs, a read-only directory met at rotation — and the injected ones that cannot be produced on
// demand (RINGLOG_TEST_INJECT, read by the writer thread). In every case handleEvent never throws,
// the events that could not be written are counted, flush() rejects with a SinkError, onError hears
// the streak once, and once writing works again an `events_dropped` marker stands where they were.

import { afterEach, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink, SinkError } from '../dist/src/index.js';
import { BASE_NAME, expectLossAccounted, lastJson, readLines, runChild, runChildWithEnv, tempDirs, type Line } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  return undefined;
}

function causeCode(err: unknown): unknown {
  return (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
}

/** Whole-set checks after a fault that lost events: the loss contract, and the loss really happened. */
function checkMarkedLoss(lines: readonly Line[], stats: { accepted: number; written: number; dropped: number; pending: number }): void {
  expect(stats.pending).toBe(0);
  const cov = expectLossAccounted(stats, lines)!;
  expect(stats.dropped).toBeGreaterThan(0);
  expect(cov.markers).toBeGreaterThan(0);
}

describe('/dev/full: every write fails with ENOSPC', () => {
  it('flushSync() with a long overflow queue on a full disk, and an onError that logs into the sink as it hears the fault: every event counted once', async (ctx) => {
    if (!fs.existsSync('/dev/full')) ctx.skip('no /dev/full on this system');
    let sink: JsonlEventSink | undefined;
    let fromListener = 0;
    sink = JsonlEventSink.open('/dev/full', {
      ringBytes: 64 * 1024,
      overload: 'buffer',
      // Heard on this thread, from inside flushSync()'s drain: what it logs joins the queue.
      onError: () => {
        for (let k = 0; k < 50; k++) sink!.handleEvent({ type: 'from-listener', k });
        fromListener += 50;
      },
    });
    const N = 3_000;
    for (let n = 0; n < N; n++) sink.handleEvent({ type: 'queued', n, text: 'x'.repeat(200 + (n % 300)) });
    expect(sink.stats().bufferedBytes).toBeGreaterThan(64 * 1024);
    expect(() => sink!.flushSync()).toThrow(SinkError);
    const s = sink.stats();
    expect(fromListener).toBeGreaterThan(0);
    expect(s.accepted).toBe(N + fromListener);
    expect(s.written).toBe(0);
    expect(s.dropped + s.pending).toBe(s.accepted);
    expectLossAccounted(s, null);
    await sink.close().catch(() => undefined);
  });

  it('counts every event dropped, rejects flush with ERR_RINGLOG_WRITE, calls onError once for the streak', async (ctx) => {
    if (!fs.existsSync('/dev/full')) {
      console.warn('faults.test: this system has no /dev/full; the disk-full and injected tests cover write faults');
      ctx.skip('no /dev/full on this system');
    }
    const heard: SinkError[] = [];
    const sink = JsonlEventSink.open('/dev/full', { onError: (e) => heard.push(e) });
    let thrown = 0;
    let n = 0;
    // Spread over ~1.5 s so the writer retries several times (100 ms, then doubling backoff).
    for (let round = 0; round < 15; round++) {
      for (let k = 0; k < 40; k++) {
        try {
          sink.handleEvent({ type: 'full', n: n++, text: 'no space left for this one' });
        } catch {
          thrown++;
        }
      }
      await sleep(100);
    }
    expect(thrown).toBe(0);
    const err = await rejection(sink.flush());
    expect(err).toBeInstanceOf(SinkError);
    const e = err as SinkError;
    expect(e.code).toBe('ERR_RINGLOG_WRITE');
    expect(e.droppedEvents).toBe(n);
    expect(causeCode(e)).toBe('ENOSPC');
    expect(e.sink).toBe('/dev/full');

    const s = sink.stats();
    expect(s).toMatchObject({ accepted: n, written: 0, dropped: n, pending: 0, bytes: 0 });
    expectLossAccounted(s, null);
    // The writer did retry (so "once for the streak" means something) ...
    expect(s.faults).toBeGreaterThanOrEqual(2);
    // ... and onError heard the streak once, as a SinkError.
    expect.soft(heard.length, `onError calls for one unbroken fault streak (${s.faults} faults)`).toBe(1);
    expect([heard[0]?.name, heard[0]?.code, causeCode(heard[0])]).toEqual(['SinkError', 'ERR_RINGLOG_WRITE', 'ENOSPC']);

    // Loss is never silent: every later barrier reports it again, close() too.
    const again = await rejection(sink.flush());
    expect(again).toBeInstanceOf(SinkError);
    expect((again as SinkError).droppedEvents).toBe(n);
    const closed = await rejection(sink.close());
    expect(closed).toBeInstanceOf(SinkError);
    expect((closed as SinkError).droppedEvents).toBe(sink.stats().dropped);
    expect(sink.stats().dropped).toBe(n);
    expectLossAccounted(sink.stats(), null);
  });
});

describe('a burst larger than one write (the writer writes at most 256 KiB per call)', () => {
  it('/dev/full: every event of the burst counted lost exactly once', async (ctx) => {
    if (!fs.existsSync('/dev/full')) ctx.skip('no /dev/full on this system');
    const sink = JsonlEventSink.open('/dev/full');
    // ~1 MB in one go: the writer's buffer fills past its write size while lines are being added,
    // so the failing write happens in the middle of the batch, not at its end.
    const N = 4000;
    for (let i = 0; i < N; i++) sink.handleEvent({ type: 'burst', i, pad: 'q'.repeat(240) });
    const err = await rejection(sink.flush());
    expect(err).toMatchObject({ code: 'ERR_RINGLOG_WRITE', droppedEvents: N });
    const s = sink.stats();
    expect(s).toMatchObject({ accepted: N, written: 0, dropped: N, pending: 0 });
    expectLossAccounted(s, null);
    await sink.close().catch(() => undefined);
    expectLossAccounted(sink.stats(), null);
  });
});

// --- A full disk that is freed again -----------------------------------------------------------

/** ~5 KiB per line: larger than the room a partly used 4 KiB page can leave, so a full tmpfs
 *  refuses every batch (a smaller line could still fit at the end of the file's last page). */
const BIG = 'b'.repeat(5000);

function tryMount(dir: string): string | undefined {
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.error) return r.error.message;
  if (r.status !== 0) return `mount exited ${r.status}: ${r.stderr.trim()}`;
  return undefined;
}

function unmount(dir: string): void {
  const r = spawnSync('umount', [dir], { encoding: 'utf8' });
  if (r.status !== 0) spawnSync('umount', ['-l', dir], { encoding: 'utf8' });
}

/** Fills the file system holding `file` until ENOSPC. */
function fill(file: string): number {
  const fd = fs.openSync(file, 'w');
  let total = 0;
  try {
    for (const size of [64 * 1024, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x66);
      for (;;) {
        try {
          total += fs.writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return total;
}

/** The same scenario as the tmpfs test, with the disk-full fault injected (when mount is refused). */
const INJECTED_DISK_FULL = `
import { JsonlEventSink, SinkError } from '%RINGLOG%';
const [base] = process.argv.slice(2);
const heard = [];
const sink = JsonlEventSink.open(base, { onError: (e) => heard.push({ code: e.code, cause: e.cause?.code }) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const log = () => sink.handleEvent({ type: 'disk', n: n++ });
for (let i = 0; i < 20; i++) log();
await sink.flush();
let firstErr = null;
// The disk is "full" for the next 4 writes: log one event every 20 ms until all 4 failed and an
// event was written after the last of them (the writer retries by itself, backing off).
const t0 = Date.now();
let faultsSeen = 0;
let writtenAtLastFault = 0;
while (Date.now() - t0 < 15000) {
  log();
  await sleep(20);
  const s = sink.stats();
  if (s.faults !== faultsSeen) { faultsSeen = s.faults; writtenAtLastFault = s.written; continue; }
  if (s.faults >= 4 && s.written > writtenAtLastFault) break;
}
try { await sink.flush(); } catch (e) { firstErr = { isSinkError: e instanceof SinkError, code: e.code, cause: e.cause?.code, dropped: e.droppedEvents }; }
let closeErr = null;
try { await sink.close(); } catch (e) { closeErr = { isSinkError: e instanceof SinkError, code: e.code, cause: e.cause?.code, dropped: e.droppedEvents }; }
console.log(JSON.stringify({ firstErr, closeErr, heard, stats: sink.stats() }));
`;

describe('disk full', () => {
  it('on a 256 KiB tmpfs: drops are counted, logging resumes by itself once space is freed, a marker stands where events were lost', async () => {
    const mnt = dirs.make('tmpfs');
    // RINGLOG_TEST_NO_TMPFS=1 exercises the fallback on a machine where mount works.
    const reason = process.env.RINGLOG_TEST_NO_TMPFS ? 'RINGLOG_TEST_NO_TMPFS is set' : tryMount(mnt);
    if (reason !== undefined) {
      console.warn(`faults.test: cannot mount a tmpfs (${reason}); testing disk-full through RINGLOG_TEST_INJECT instead`);
      const r = await runChildWithEnv(INJECTED_DISK_FULL, [path.join(mnt, BASE_NAME)], {
        env: { RINGLOG_TEST_INJECT: JSON.stringify({ code: 'ENOSPC', afterWrites: 1, times: 4 }) },
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = lastJson<{
        firstErr: { isSinkError: boolean; code: string; cause: string; dropped: number };
        closeErr: { isSinkError: boolean; code: string; cause: string; dropped: number };
        heard: unknown[];
        stats: { accepted: number; written: number; dropped: number; pending: number; faults: number };
      }>(r);
      expect(out.stats.faults).toBe(4);
      expect(out.firstErr).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: 'ENOSPC', dropped: out.stats.dropped });
      expect(out.closeErr).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: 'ENOSPC', dropped: out.stats.dropped });
      expect.soft(out.heard, 'onError hears the streak once').toEqual([{ code: 'ERR_RINGLOG_WRITE', cause: 'ENOSPC' }]);
      const { lines } = readLines(mnt);
      checkMarkedLoss(lines, out.stats);
      expect(lines[lines.length - 1]!.type, 'writing resumed: the last event made it').toBe('disk');
      return;
    }
    let opened: JsonlEventSink | undefined;
    try {
      const base = path.join(mnt, BASE_NAME);
      const filler = path.join(mnt, 'filler');
      const heard: SinkError[] = [];
      const sink = JsonlEventSink.open(base, { onError: (e) => heard.push(e) });
      opened = sink;
      let n = 0;
      let thrown = 0;
      const log = (phase: string): void => {
        try {
          sink.handleEvent({ type: 'disk', phase, n: n++, big: BIG });
        } catch {
          thrown++;
        }
      };

      // A: room to spare.
      for (let i = 0; i < 10; i++) log('A');
      await sink.flush();
      expect(sink.stats().dropped).toBe(0);

      // B: the disk is full.
      expect(fill(filler)).toBeGreaterThan(0);
      const firstB = n;
      for (let i = 0; i < 20; i++) log('B');
      const full = await rejection(sink.flush());
      expect(full).toBeInstanceOf(SinkError);
      expect((full as SinkError).code).toBe('ERR_RINGLOG_WRITE');
      expect(causeCode(full)).toBe('ENOSPC');
      expect((full as SinkError).droppedEvents).toBe(sink.stats().dropped);
      expect(sink.stats().dropped).toBeGreaterThan(0);
      // Still full for a while: the writer keeps probing (backing off), nothing is written.
      for (let i = 0; i < 8; i++) {
        log('B');
        await sleep(60);
      }
      const stillFull = await rejection(sink.flush());
      expect(stillFull).toBeInstanceOf(SinkError);
      expect.soft(heard.length, 'onError calls for one fault streak').toBe(1);

      // C: space freed. No flush: the writer must find out by itself that writing works again.
      fs.rmSync(filler);
      const writtenAtFree = sink.stats().written;
      const firstC = n;
      let resumed = false;
      for (let i = 0; i < 600 && !resumed; i++) {
        log('C');
        await sleep(25);
        resumed = sink.stats().written > writtenAtFree;
      }
      expect(resumed, 'logging resumed without a flush once space was freed').toBe(true);
      for (let i = 0; i < 10; i++) log('C');
      const after = await rejection(sink.close());
      // Loss is never silent: the close still reports what was lost earlier.
      expect(after).toBeInstanceOf(SinkError);
      const s = sink.stats();
      expect((after as SinkError).droppedEvents).toBe(s.dropped);
      expect(thrown).toBe(0);
      expect.soft(heard.length, 'onError calls for one fault streak').toBe(1);
      expect([heard[0]?.code, causeCode(heard[0])]).toEqual(['ERR_RINGLOG_WRITE', 'ENOSPC']);

      const { lines } = readLines(mnt);
      checkMarkedLoss(lines, s);
      // Phase A is whole; the losses lie after it; the tail of phase C made it.
      expect(lines.slice(0, 10).map((l) => [l.index, l.phase])).toEqual(Array.from({ length: 10 }, (_, i) => [i, 'A']));
      const markers = lines.filter((l) => l.type === 'events_dropped');
      for (const m of markers) expect(m.index).toBeGreaterThanOrEqual(firstB);
      expect(lines[lines.length - 1]).toMatchObject({ index: n - 1, phase: 'C' });
      expect(lines.filter((l) => l.phase === 'C' && l.index >= firstC).length).toBeGreaterThan(10);
      // Every event line is whole and exact.
      for (const l of lines) {
        if (l.type === 'disk') expect(l).toEqual({ index: l.index, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'disk', phase: l.phase, n: l.index, big: BIG });
      }
    } finally {
      // The file must be closed before the file system can be unmounted.
      await opened?.close().catch(() => undefined);
      unmount(mnt);
    }
  });
});

/**
 * A disk that is full while a burst of ~600 KB (several of the writer's 256 KiB writes) arrives,
 * then freed. `filler` is a file to fill the disk with and remove again ('-': the fault is injected
 * through RINGLOG_TEST_INJECT instead, and there is no phase A).
 */
const FULL_DURING_BURST = `
import * as fs from 'node:fs';
import { JsonlEventSink } from '%RINGLOG%';
const [base, filler] = process.argv.slice(2);
const info = (e) => ({ code: e.code, cause: e.cause?.code, dropped: e.droppedEvents });
const sink = JsonlEventSink.open(base);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const big = 'b'.repeat(5000);
let n = 0;
const log = (phase) => sink.handleEvent({ type: 'disk', phase, n: n++, big });
const fill = (file) => {
  const fd = fs.openSync(file, 'w');
  for (const size of [64 * 1024, 4096, 512, 1]) {
    const chunk = Buffer.alloc(size, 0x66);
    for (;;) {
      try { fs.writeSync(fd, chunk); } catch (err) { if (err.code === 'ENOSPC') break; throw err; }
    }
  }
  fs.closeSync(fd);
};
if (filler !== '-') {
  for (let i = 0; i < 10; i++) log('A');
  await sink.flush();
  fill(filler);
}
for (let i = 0; i < 120; i++) log('B');
let errB = null;
try { await sink.flush(); } catch (e) { errB = info(e); }
const statsB = sink.stats();
if (filler !== '-') fs.rmSync(filler);
const writtenAtFree = sink.stats().written;
let resumed = false;
for (let i = 0; i < 600 && !resumed; i++) { log('C'); await sleep(25); resumed = sink.stats().written > writtenAtFree; }
for (let i = 0; i < 10; i++) log('C');
let closeErr = null;
try { await sink.close(); } catch (e) { closeErr = info(e); }
console.log(JSON.stringify({ errB, statsB, resumed, closeErr, stats: sink.stats() }));
`;

describe('disk full during a burst larger than one write', () => {
  it('every lost event counted once: accepted = written + dropped, the markers add up to dropped', async () => {
    const mnt = dirs.make('tmpfs-burst');
    const reason = process.env.RINGLOG_TEST_NO_TMPFS ? 'RINGLOG_TEST_NO_TMPFS is set' : tryMount(mnt);
    const injected = reason !== undefined;
    if (injected) console.warn(`faults.test: cannot mount a tmpfs (${reason}); testing disk-full through RINGLOG_TEST_INJECT instead`);
    try {
      const r = await runChildWithEnv(FULL_DURING_BURST, [path.join(mnt, BASE_NAME), injected ? '-' : path.join(mnt, 'filler')], {
        env: injected ? { RINGLOG_TEST_INJECT: JSON.stringify({ code: 'ENOSPC', afterWrites: 0, times: 3 }) } : {},
      });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = lastJson<{
        errB: { code: string; cause: string; dropped: number } | null;
        statsB: { accepted: number; written: number; dropped: number; pending: number };
        resumed: boolean;
        closeErr: { code: string; cause: string; dropped: number } | null;
        stats: { accepted: number; written: number; dropped: number; pending: number };
      }>(r);
      expect(out.errB).toMatchObject({ code: 'ERR_RINGLOG_WRITE', cause: 'ENOSPC', dropped: out.statsB.dropped });
      expectLossAccounted(out.statsB, null);
      expect(out.resumed, 'writing resumed once space was freed').toBe(true);
      expect(out.closeErr).toMatchObject({ code: 'ERR_RINGLOG_WRITE', dropped: out.stats.dropped });
      const cov = expectLossAccounted(out.stats, readLines(mnt).lines)!;
      expect(out.stats.dropped).toBeGreaterThan(0);
      expect(cov.markers).toBeGreaterThan(0);
    } finally {
      if (!injected) unmount(mnt);
    }
  });
});

// --- A read-only directory met at rotation -----------------------------------------------------

const READ_ONLY_ROTATION = `
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink, SinkError } from '%RINGLOG%';
const [base] = process.argv.slice(2);
const dir = path.dirname(base);
const heard = [];
const info = (e) => e == null ? null : { isSinkError: e instanceof SinkError, code: e.code, cause: e.cause?.code, dropped: e.droppedEvents };
const sink = JsonlEventSink.open(base, { rotateBytes: 4096, onError: (e) => heard.push(info(e)) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const pad = 'r'.repeat(240);
let n = 0;
let thrown = 0;
const log = (phase) => { try { sink.handleEvent({ type: 'ro', phase, n: n++, pad }); } catch { thrown++; } };
for (let i = 0; i < 40; i++) log('A');
let errA = null;
try { await sink.flush(); } catch (e) { errA = info(e); }
const segmentsA = sink.stats().segment;
fs.chmodSync(dir, 0o555);                       // no new segment can be created now
for (let i = 0; i < 60; i++) log('B');
let errB = null;
try { await sink.flush(); } catch (e) { errB = info(e); }
for (let i = 0; i < 5; i++) { log('B'); await sleep(50); }
fs.chmodSync(dir, 0o755);
const writtenAtFix = sink.stats().written;
let resumed = false;
for (let i = 0; i < 600 && !resumed; i++) { log('C'); await sleep(25); resumed = sink.stats().written > writtenAtFix; }
for (let i = 0; i < 30; i++) log('C');
let closeErr = null;
try { await sink.close(); } catch (e) { closeErr = info(e); }
console.log(JSON.stringify({ uid: process.getuid(), errA, segmentsA, errB, resumed, closeErr, heard, thrown, stats: sink.stats() }));
`;

describe('read-only directory', () => {
  it('a segment that cannot be created at rotation: events lost, counted and marked; rotation resumes once the directory is writable', async () => {
    const root = dirs.make('readonly');
    fs.chmodSync(root, 0o755);
    const dir = path.join(root, 'logs');
    fs.mkdirSync(dir);
    // Root ignores permissions: as root, run the child as nobody; otherwise as ourselves.
    const asRoot = process.getuid?.() === 0;
    const user = asRoot ? { uid: 65534, gid: 65534 } : {};
    if (asRoot) fs.chownSync(dir, 65534, 65534);
    const r = await runChild(READ_ONLY_ROTATION, [path.join(dir, BASE_NAME)], user);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = lastJson<{
      uid: number;
      errA: unknown;
      segmentsA: number;
      errB: { isSinkError: boolean; code: string; cause: string; dropped: number } | null;
      resumed: boolean;
      closeErr: { isSinkError: boolean; code: string; cause: string; dropped: number } | null;
      heard: unknown[];
      thrown: number;
      stats: { accepted: number; written: number; dropped: number; pending: number; segment: number };
    }>(r);
    expect(out.uid).not.toBe(0);
    expect(out.errA).toBeNull();
    expect(out.segmentsA).toBeGreaterThanOrEqual(2);
    expect(out.thrown).toBe(0);
    expect(out.errB).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: 'EACCES' });
    expect(out.errB!.dropped).toBeGreaterThan(0);
    expect(out.resumed, 'writing resumed by itself once the directory was writable').toBe(true);
    expect(out.closeErr).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', dropped: out.stats.dropped });
    expect.soft(out.heard, 'onError hears the streak once').toEqual([{ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: 'EACCES', dropped: expect.any(Number) }]);
    expect(out.stats.segment).toBeGreaterThan(out.segmentsA);

    const set = readLines(dir);
    checkMarkedLoss(set.lines, out.stats);
    // Rotation kept its promises around the fault: consecutive names, no file over the limit.
    expect(set.files.map((f) => f.n)).toEqual(set.files.map((_, i) => i));
    for (const f of set.files) expect(f.bytes).toBeLessThanOrEqual(4096);
    expect(set.lines[set.lines.length - 1]).toMatchObject({ index: out.stats.accepted - 1, phase: 'C' });
  });
});

/**
 * Rotation refused again and again while every event brings a key of its own (`k<n>`, used again by
 * event n+1): when the marker of the earlier loss is what crosses rotateBytes, its failed rotation
 * loses the record behind it, whose key definition the next record still needs.
 */
const READ_ONLY_NEW_KEYS = `
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink } from '%RINGLOG%';
const [base] = process.argv.slice(2);
const dir = path.dirname(base);
const heard = [];
const sink = JsonlEventSink.open(base, { rotateBytes: 4096, onError: (e) => heard.push(e.code) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const log = () => {
  const ev = { type: 'k', n, pad: 'r'.repeat(150 + ((n * 37) % 200)) };
  ev['k' + n] = n;
  if (n > 0) ev['k' + (n - 1)] = n - 1;
  sink.handleEvent(ev);
  n++;
};
for (let cycle = 0; cycle < 12; cycle++) {
  for (let i = 0; i < 20; i++) log();
  await sink.flush().catch(() => {});
  fs.chmodSync(dir, 0o555);
  for (let i = 0; i < 8; i++) { for (let k = 0; k < 5; k++) log(); await sleep(40); }
  fs.chmodSync(dir, 0o755);
  for (let i = 0; i < 10; i++) { log(); await sleep(15); }
}
let closeErr = null;
try { await sink.close(); } catch (e) { closeErr = e.code; }
console.log(JSON.stringify({ heard: [...new Set(heard)], closeErr, stats: sink.stats() }));
`;

describe('read-only directory, new keys in every event', () => {
  it('records lost behind a marker that could not be written still define their keys: the writer never fails on a later record', async () => {
    const root = dirs.make('readonly-keys');
    fs.chmodSync(root, 0o755);
    const dir = path.join(root, 'logs');
    fs.mkdirSync(dir);
    const asRoot = process.getuid?.() === 0;
    if (asRoot) fs.chownSync(dir, 65534, 65534);
    const r = await runChild(READ_ONLY_NEW_KEYS, [path.join(dir, BASE_NAME)], asRoot ? { uid: 65534, gid: 65534 } : {});
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = lastJson<{ heard: string[]; closeErr: string | null; stats: { accepted: number; written: number; dropped: number; pending: number; workerRestarts: number } }>(r);
    expect(out.heard, 'write faults only, never a writer thread that failed').toEqual(['ERR_RINGLOG_WRITE']);
    expect(out.stats.workerRestarts).toBe(0);
    expect(out.closeErr).toBe('ERR_RINGLOG_WRITE');
    const { lines, raw } = readLines(dir);
    expectLossAccounted(out.stats, lines);
    const wrong: string[] = [];
    lines.forEach((l, i) => {
      if (l.type === 'events_dropped') return;
      const ev: Record<string, unknown> = { index: l.index, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'k', n: l.index, pad: 'r'.repeat(150 + ((l.index * 37) % 200)) };
      ev[`k${l.index}`] = l.index;
      if (l.index > 0) ev[`k${l.index - 1}`] = l.index - 1;
      if (raw[i] !== JSON.stringify(ev) && wrong.length < 5) wrong.push(raw[i]!.slice(0, 200));
    });
    expect(wrong).toEqual([]);
  });
});

// --- Injected faults ---------------------------------------------------------------------------

interface InjectReport {
  flushErrors: { isSinkError: boolean; code: string; cause: string; dropped: number }[];
  finalFlush: { isSinkError: boolean; code: string; cause: string; dropped: number } | null;
  closeErr: { isSinkError: boolean; code: string; cause: string; dropped: number } | null;
  heard: { code: string; cause: string }[];
  thrown: number;
  stats: { accepted: number; written: number; dropped: number; pending: number; faults: number };
}

/**
 * Logs in rounds of 20 events, each followed by a flush (so no write spans two rounds, though the
 * writer may split one), until `rounds` rounds are done and, when faults happened, until a round
 * is written whole again.
 */
const INJECTED = `
import { JsonlEventSink, SinkError } from '%RINGLOG%';
const [base, roundsArg] = process.argv.slice(2);
const info = (e) => ({ isSinkError: e instanceof SinkError, code: e.code, cause: e.cause?.code, dropped: e.droppedEvents });
const heard = [];
const sink = JsonlEventSink.open(base, { onError: (e) => heard.push({ code: e.code, cause: e.cause?.code }) });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0;
let thrown = 0;
const flushErrors = [];
const round = async () => {
  for (let k = 0; k < 20; k++) {
    try { sink.handleEvent({ type: 'inj', n: n++, text: 'event ' + n }); } catch { thrown++; }
  }
  try { await sink.flush(); } catch (e) { flushErrors.push(info(e)); }
};
for (let i = 0; i < Number(roundsArg); i++) await round();
// After a fault, go on until a round is written again (the writer retries after 100 ms, 200 ms, ...).
const t0 = Date.now();
while (sink.stats().faults > 0 && Date.now() - t0 < 15000) {
  const before = sink.stats();
  await sleep(50);
  await round();
  const after = sink.stats();
  if (after.faults === before.faults && after.written >= before.written + 20) break;
}
let finalFlush = null;
try { await sink.flush(); } catch (e) { finalFlush = info(e); }
let closeErr = null;
try { await sink.close(); } catch (e) { closeErr = info(e); }
console.log(JSON.stringify({ flushErrors, finalFlush, closeErr, heard, thrown, stats: sink.stats() }));
`;

async function injected(label: string, injection: Record<string, unknown>, rounds = 8): Promise<{ report: InjectReport; lines: Line[]; raw: string[] }> {
  const dir = dirs.make(label);
  const r = await runChildWithEnv(INJECTED, [path.join(dir, BASE_NAME), String(rounds)], {
    env: { RINGLOG_TEST_INJECT: JSON.stringify(injection) },
  });
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  const report = lastJson<InjectReport>(r);
  expect(report.thrown).toBe(0);
  const { lines, raw } = readLines(dir);
  return { report, lines, raw };
}

describe('injected write faults (RINGLOG_TEST_INJECT)', () => {
  it.each(['EAGAIN', 'EINTR', 'EBUSY'])('transient %s a few times: retried in place, nothing lost, nothing reported', async (code) => {
    const { report, lines, raw } = await injected(`transient-${code}`, { code, afterWrites: 2, times: 3 });
    const s = report.stats;
    expect(report.flushErrors).toEqual([]);
    expect(report.finalFlush).toBeNull();
    expect(report.closeErr).toBeNull();
    expect(report.heard).toEqual([]);
    expect(s).toMatchObject({ accepted: 160, written: 160, dropped: 0, pending: 0, faults: 0 });
    expectLossAccounted(s, lines);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: 160 }, (_, i) => i));
    raw.forEach((line, i) => {
      expect(line).toBe(JSON.stringify({ index: i, emitted_at_ms: lines[i]!.emitted_at_ms, frame_depth: null, type: 'inj', n: i, text: `event ${i + 1}` }));
    });
  });

  it('a transient error that does not clear within the bounded retries becomes a fault: counted and marked', async () => {
    const { report, lines } = await injected('transient-exhausted', { code: 'EAGAIN', afterWrites: 2, times: 16 });
    const s = report.stats;
    expect(s.faults).toBeGreaterThan(0);
    expect(report.flushErrors.length).toBeGreaterThan(0);
    expect(report.flushErrors[0]).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: 'EAGAIN' });
    expect(report.closeErr).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', dropped: s.dropped });
    checkMarkedLoss(lines, s);
  });

  it.each(['EIO', 'EBADF', 'EPIPE'])('persistent %s (3 failed writes): events lost, counted, marked; onError once; writing resumes', async (code) => {
    const { report, lines, raw } = await injected(`persistent-${code}`, { code, afterWrites: 2, times: 3 });
    const s = report.stats;
    expect(s.faults).toBe(3);
    expect(report.flushErrors.length).toBeGreaterThan(0);
    for (const e of report.flushErrors) expect(e).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: code });
    expect(report.finalFlush).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: code, dropped: s.dropped });
    expect(report.closeErr).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_WRITE', cause: code, dropped: s.dropped });
    expect.soft(report.heard.length, 'onError calls for one fault streak').toBe(1);
    expect(report.heard[0]).toEqual({ code: 'ERR_RINGLOG_WRITE', cause: code });
    checkMarkedLoss(lines, s);
    // Two writes succeeded before the fault, so the file starts with events from index 0 and the
    // loss comes after them. How many events those writes held is the writer's batching (its
    // polling can split a round), so only "at least one" is asserted.
    const firstMarker = lines.findIndex((l) => l.type === 'events_dropped');
    expect(firstMarker).toBeGreaterThan(0);
    expect(lines.slice(0, firstMarker).map((l) => l.index)).toEqual(Array.from({ length: firstMarker }, (_, i) => i));
    // The script stops after a round with no new fault and all of its 20 events written: writing
    // resumed by itself, so the file ends with that round, after every marker.
    expect(lines.slice(-20).map((l) => l.type)).toEqual(Array(20).fill('inj'));
    // Event lines are exact; the marker lines have exactly the documented shape.
    lines.forEach((l, i) => {
      const want =
        l.type === 'events_dropped'
          ? JSON.stringify({ index: l.index, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'events_dropped', count: l.count })
          : JSON.stringify({ index: l.index, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'inj', n: l.index, text: `event ${l.index + 1}` });
      expect(raw[i]).toBe(want);
    });
  });
});

describe('the current file removed under the sink', () => {
  it('is noticed at the next write and recreated at the same path; the batch in flight is written there, nothing is lost', async () => {
    const dir = dirs.make('unlinked');
    const base = path.join(dir, BASE_NAME);
    const heard: unknown[] = [];
    const sink = JsonlEventSink.open(base, { onError: (e) => heard.push(e) });
    for (let i = 0; i < 100; i++) sink.handleEvent({ type: 'before', i });
    await sink.flush();
    fs.unlinkSync(base);
    for (let i = 0; i < 100; i++) sink.handleEvent({ type: 'after', i });
    await sink.flush();
    for (let i = 0; i < 50; i++) sink.handleEvent({ type: 'later', i });
    await sink.close();
    // The removed file took its 100 lines with it (the remover's doing); everything after is here.
    const { lines } = readLines(dir);
    expect(lines.map((l) => l.index)).toEqual(Array.from({ length: 150 }, (_, k) => 100 + k));
    expect(lines.map((l) => l.type)).toEqual([...Array(100).fill('after'), ...Array(50).fill('later')]);
    expect(sink.stats()).toMatchObject({ accepted: 250, written: 250, dropped: 0, faults: 0 });
    expectLossAccounted(sink.stats(), lines, 100);
    expect(heard).toEqual([]);
  });
});

describe('the directory removed under the sink', () => {
  /** A line of ~300 bytes: a few hundred make several writes and, at 16 KiB, several segments. */
  const text = 't'.repeat(260);

  /**
   * rm -rf, run again until it succeeds: the writer recreating the file between the removal of
   * the files and of their directory makes one run fail (ENOTEMPTY), as it would for a person.
   */
  function removeTree(dir: string): void {
    for (let attempt = 1; ; attempt++) {
      try {
        fs.rmSync(dir, { recursive: true, force: true });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' || attempt >= 10_000) throw err;
      }
    }
  }

  it('removed mid-stream, five times: recreated with its parents, writing resumes there, nothing written after a removal is lost', async () => {
    const root = dirs.make('rmdir');
    const top = path.join(root, 'logs');
    const dir = path.join(top, 'run-1');
    const heard: unknown[] = [];
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 16 * 1024, onError: (e) => heard.push(e) });
    let n = 0;
    const log = (count: number): void => {
      for (let i = 0; i < count; i++) sink.handleEvent({ type: 'rm', n: n++, text });
    };
    let firstAfterRemoval = 0;
    for (let round = 0; round < 5; round++) {
      log(300);
      await sleep(1);
      // More on its way while the tree goes: the writer is in the middle of the stream.
      log(300);
      removeTree(top);
      firstAfterRemoval = n;
      log(200);
      await sink.flush();
      expect(fs.statSync(dir).isDirectory(), `round ${round}: the directory is back`).toBe(true);
    }
    log(100);
    await sink.close();
    const s = sink.stats();
    expect(s).toMatchObject({ accepted: n, written: n, dropped: 0, pending: 0, faults: 0 });
    expect(heard).toEqual([]);
    // What was written before the last removal went with it (the remover's doing); everything the
    // set holds is one gap-free run to the end, and it starts no later than the last removal.
    const { lines, files } = readLines(dir);
    expect(lines.length).toBeGreaterThan(0);
    const from = lines[0]!.index;
    expect(from).toBeLessThanOrEqual(firstAfterRemoval);
    expectLossAccounted(s, lines, from);
    for (const l of lines) expect(l).toEqual({ index: l.index, emitted_at_ms: l.emitted_at_ms, frame_depth: null, type: 'rm', n: l.index, text });
    for (const f of files) expect(f.bytes, f.name).toBeLessThanOrEqual(16 * 1024);
  });

  it('replaced by a regular file: a persistent fault (counted, reported by flush, onError once) until the file is removed; then recreated, the loss marked', async () => {
    const root = dirs.make('rmdir-file');
    const dir = path.join(root, 'logs');
    const base = path.join(dir, BASE_NAME);
    const heard: SinkError[] = [];
    const sink = JsonlEventSink.open(base, { onError: (e) => heard.push(e) });
    let n = 0;
    const log = (phase: string): void => sink.handleEvent({ type: 'rm', phase, n: n++, text });
    for (let i = 0; i < 100; i++) log('A');
    await sink.flush();

    fs.rmSync(dir, { recursive: true });
    fs.writeFileSync(dir, 'a file where the directory was\n');
    for (let i = 0; i < 100; i++) log('B');
    const blocked = await rejection(sink.flush());
    expect(blocked).toBeInstanceOf(SinkError);
    expect(blocked).toMatchObject({ code: 'ERR_RINGLOG_WRITE', droppedEvents: sink.stats().dropped });
    expect(causeCode(blocked)).toBe('ENOTDIR');
    expect(sink.stats().dropped).toBeGreaterThan(0);
    expectLossAccounted(sink.stats(), null);
    // Still in the way for a while: the writer keeps probing, backing off, and the streak is one.
    for (let i = 0; i < 6; i++) {
      log('B');
      await sleep(50);
    }
    expect(fs.readFileSync(dir, 'utf8')).toBe('a file where the directory was\n');

    fs.rmSync(dir);
    const writtenAtFix = sink.stats().written;
    let resumed = false;
    for (let i = 0; i < 600 && !resumed; i++) {
      log('C');
      await sleep(25);
      resumed = sink.stats().written > writtenAtFix;
    }
    expect(resumed, 'writing resumed by itself once the file was removed').toBe(true);
    for (let i = 0; i < 10; i++) log('C');
    const closed = await rejection(sink.close());
    const s = sink.stats();
    expect(closed).toMatchObject({ code: 'ERR_RINGLOG_WRITE', droppedEvents: s.dropped });
    expect(heard.map((e) => [e.code, causeCode(e)]), 'onError hears the streak once').toEqual([['ERR_RINGLOG_WRITE', 'ENOTDIR']]);
    // Phase A went with the directory; the recreated set starts with the marker of the loss.
    const { lines } = readLines(dir);
    expect(lines[0]).toMatchObject({ index: 100, type: 'events_dropped' });
    const cov = expectLossAccounted(s, lines, 100)!;
    expect(cov.markers).toBeGreaterThan(0);
    expect(lines[lines.length - 1]).toMatchObject({ index: n - 1, phase: 'C' });
  });
});
