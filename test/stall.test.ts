// The caller's loop never pays more than one wait per stall of the writer (README, "Overload"), and
// a writer that dies while the caller is blocked on a full ring is replaced from inside that wait,
// without the loop turning.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink } from '../dist/src/index.js';
import { BASE_NAME, expectLossAccounted, makeFifo, readLines, sinkFailure, splitLines, startFifoReader, tempDirs, type Line } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** ~8 KiB events: eight fill a 64 KiB ring. */
const payload = 'p'.repeat(8192);

describe('blocking is bounded per stall, not per event', () => {
  it.each(['block', 'buffer'] as const)("'%s': a writer stuck on a pipe nobody reads costs one wait; later events are dropped and marked without waiting", async (overload) => {
    const dir = dirs.make(`stall-${overload}`);
    const fifo = path.join(dir, BASE_NAME);
    const out = path.join(dir, 'copied.jsonl');
    const gate = path.join(dir, 'gate');
    await makeFifo(fifo);
    // The reader opens the pipe but reads nothing until the gate exists: the writer blocks in write().
    const reader = startFifoReader(fifo, out, { gateFile: gate, sleepMs: 0 });
    // blockTimeoutMs far beyond the test's timeout: were each event made to wait it, this would
    // never finish. maxBufferBytes 0 makes 'buffer' wait as soon as the ring is full.
    const sink = JsonlEventSink.open(fifo, { overload, ringBytes: 64 * 1024, maxBufferBytes: 0, blockTimeoutMs: 3000 });
    const N = 2000;
    for (let i = 0; i < N; i++) sink.handleEvent({ type: 'stall', i, payload });
    const during = sink.stats();
    expect(during.stalls).toBe(1);
    expect(during.dropped).toBeGreaterThan(N / 2);
    expect(during.accepted).toBe(N);
    fs.writeFileSync(gate, '');
    const err = await sinkFailure(() => sink.flush());
    expect(err.code).toBe('ERR_RINGLOG_DROPPED');
    expect(err.message).toContain('the writer could not keep up');
    await sink.close().catch(() => {});
    expect((await reader).code).toBe(0);
    const { raw, torn } = splitLines(fs.readFileSync(out, 'utf8'));
    expect(torn).toBeUndefined();
    const s = sink.stats();
    expect(s.pending).toBe(0);
    const cov = expectLossAccounted(s, raw.map((r) => JSON.parse(r) as Line))!;
    expect(cov.next).toBe(N);
    expectLossAccounted(during, null);
  });
});

describe('a writer that dies while the caller is saturated', () => {
  it('is replaced from inside the blocked call: nothing is dropped, nothing waits out blockTimeoutMs', async () => {
    const dir = dirs.make('death-saturated');
    // The longest timeout there is: a death noticed only when the loop turns would hang here.
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { ringBytes: 64 * 1024, maxBufferBytes: 0, blockTimeoutMs: 2 ** 31 - 1 });
    // The writer is running (it wrote a line) before it is killed.
    sink.handleEvent({ type: 'first' });
    await sink.flush();
    const first = sink.writerThread!;
    for (let round = 0; round < 3; round++) {
      void sink.writerThread!.terminate();
      // 300 events of 8 KiB never fit a 64 KiB ring: the caller blocks, with no loop turn between.
      for (let i = 0; i < 300; i++) sink.handleEvent({ type: 'burst', round, i, payload });
    }
    expect(sink.writerThread).not.toBe(first);
    const s = sink.stats();
    expect(s.workerRestarts).toBe(3);
    expect(s.dropped).toBe(0);
    expect(s.stalls).toBe(0);
    await sink.close();
    const { lines } = readLines(dir);
    const cov = expectLossAccounted(sink.stats(), lines)!;
    expect(cov.markers).toBe(0);
    expect(lines).toHaveLength(1 + 3 * 300);
    expect(sink.stats()).toMatchObject({ accepted: 901, written: 901, dropped: 0, pending: 0 });
  });
});
