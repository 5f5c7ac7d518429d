// Events bigger than the ring (ringBytes 65536) go through whole, in index order, interleaved with
// small ones, whatever the overload policy.

import { afterEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { JsonlEventSink } from '../dist/src/index.js';
import { BASE_NAME, expectedLine, firstDifference, readLines, runChild, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

const MB = 1024 * 1024;
const RING = 65536;

/** A string of `chars` UTF-16 units mixing ASCII, escapes and multi-byte text. */
function bigText(chars: number, seed: number): string {
  const chunk = `chunk ${seed} "quoted" \\ back\\slash\ttab\n naïve 東京 🙂 ` + String.fromCharCode(seed % 32);
  return chunk.repeat(Math.ceil(chars / chunk.length)).slice(0, chars - 1) + 'Z';
}

function digest(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

type Ev = Record<string, unknown>;
type Options = Parameters<typeof JsonlEventSink.open>[1];

/** Logs the events, closes, and checks each line byte for byte (reporting sizes and offsets, not megabytes). */
async function checkThrough(label: string, events: readonly Ev[], options: Options): Promise<void> {
  const dir = dirs.make(label);
  const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), options);
  for (const e of events) sink.handleEvent(e);
  await sink.close();
  expect(sink.stats()).toMatchObject({ accepted: events.length, written: events.length, dropped: 0, rejected: 0 });
  const { raw, lines } = readLines(dir);
  expect(raw).toHaveLength(events.length);
  const problems: string[] = [];
  events.forEach((e, i) => {
    if (lines[i]!.index !== i) problems.push(`line ${i} has index ${lines[i]!.index}`);
    const diff = firstDifference(raw[i]!, expectedLine(i, lines[i]!.emitted_at_ms, e));
    if (diff !== undefined) problems.push(`line ${i}: ${diff}`);
  });
  expect(problems).toEqual([]);
}

function interleaved(): Ev[] {
  const events: Ev[] = [];
  let n = 0;
  const small = (): void => {
    events.push({ type: 'small', n: n++, text: `small event ${n}` });
  };
  for (let i = 0; i < 5; i++) small();
  events.push({ type: 'big', n: n++, text: bigText(1 * MB, 1) });
  small();
  events.push({ type: 'big', n: n++, text: bigText(10 * MB, 2) });
  for (let i = 0; i < 20; i++) small();
  // Two big ones back to back, then one barely over a quarter of the ring, then one under it.
  events.push({ type: 'big', n: n++, text: bigText(1 * MB, 3) });
  events.push({ type: 'big', n: n++, text: bigText(1 * MB + 17, 4) });
  events.push({ type: 'medium', n: n++, text: 'm'.repeat(RING / 4 + 100) });
  events.push({ type: 'medium', n: n++, text: 'm'.repeat(RING / 4 - 200) });
  for (let i = 0; i < 10; i++) small();
  // Big by structure, not by one string.
  events.push({ type: 'big_structure', n: n++, rows: Array.from({ length: 40_000 }, (_, i) => ({ i, name: `row ${i}`, ok: i % 2 === 0 })) });
  small();
  return events;
}

describe('events bigger than the ring', () => {
  it('go through intact and in order, interleaved with small ones (1 MB and 10 MB strings)', async () => {
    await checkThrough('big-default', interleaved(), { ringBytes: RING });
  });

  it.each(['buffer', 'block', 'drop'] as const)('go through whole under overload policy %s', async (overload) => {
    // A big event is admitted whenever nothing else is buffered, so even 'drop' writes it.
    const events: Ev[] = [];
    for (let i = 0; i < 6; i++) {
      events.push({ type: 'small', i });
      events.push({ type: 'big', i, text: bigText(1 * MB, 10 + i) });
    }
    events.push({ type: 'small', i: 6 });
    await checkThrough(`big-${overload}`, events, { ringBytes: RING, overload });
  });

  it('go through one after another even with maxBufferBytes 0', async () => {
    const events: Ev[] = [];
    for (let i = 0; i < 4; i++) events.push({ type: 'big', i, text: bigText(2 * MB, 20 + i) }, { type: 'small', i });
    await checkThrough('big-nobuffer', events, { ringBytes: RING, maxBufferBytes: 0, blockTimeoutMs: 60_000 });
  });

  it('are written whole by flushSync() on the caller thread', async () => {
    const dir = dirs.make('big-flushsync');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { ringBytes: RING });
    const events: Ev[] = [{ type: 'small', i: 0 }, { type: 'big', text: bigText(3 * MB, 30) }, { type: 'small', i: 1 }];
    for (const e of events) sink.handleEvent(e);
    sink.flushSync();
    const { raw, lines } = readLines(dir);
    expect(raw).toHaveLength(3);
    expect(lines.map((l) => l.type)).toEqual(['small', 'big', 'small']);
    expect(firstDifference(raw[1]!, expectedLine(1, lines[1]!.emitted_at_ms, events[1]!))).toBeUndefined();
    await sink.close();
  });

  it('are written whole at process exit', async () => {
    const dir = dirs.make('big-exit');
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2], { ringBytes: 65536 });
       sink.handleEvent({ type: 'small', i: 0 });
       sink.handleEvent({ type: 'big', text: '東'.repeat(4 * 1024 * 1024) });
       sink.handleEvent({ type: 'small', i: 1 });
       process.exit(0);`,
      [path.join(dir, BASE_NAME)],
    );
    expect(res.timedOut).toBe(false);
    expect(res.code, res.stderr).toBe(0);
    const { lines } = readLines(dir);
    expect(lines.map((l) => [l.index, l.type])).toEqual([
      [0, 'small'],
      [1, 'big'],
      [2, 'small'],
    ]);
    expect(digest(lines[1]!.text as string)).toBe(digest('東'.repeat(4 * 1024 * 1024)));
  });

  it('keep their own rotation file when larger than rotateBytes', async () => {
    const dir = dirs.make('big-rotate');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { ringBytes: RING, rotateBytes: 256 * 1024 });
    const big = { type: 'big', text: bigText(1 * MB, 40) };
    for (let i = 0; i < 3; i++) {
      sink.handleEvent({ type: 'small', i });
      sink.handleEvent(big);
    }
    await sink.close();
    const { files, lines } = readLines(dir);
    expect(files.map((f) => f.raw.map((r) => (JSON.parse(r) as { type: string }).type))).toEqual([['small'], ['big'], ['small'], ['big'], ['small'], ['big']]);
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const l of lines.filter((x) => x.type === 'big')) expect(l.text).toBe(big.text);
  });
});
