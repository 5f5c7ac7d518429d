// Issue 6, following a live set: tail -f semantics over rotations, torn lines waited for, and a
// clean stop on abort (the pending next() resolves done; no watcher, timer or file left open).

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { JsonlEventSink, followEvents, followRecords, type PersistedEvent, type ReadIssue } from '../dist/src/index.js';
import { BASE_NAME, readLines, segmentName, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

function L(index: number, fields: Record<string, unknown> = { type: 'e' }): string {
  return JSON.stringify({ index, emitted_at_ms: 1_700_000_000_000 + index, frame_depth: null, ...fields }) + '\n';
}

/**
 * File-system watchers and open files of this process (timers are not counted: the test runner
 * keeps its own). A closed handle leaves the list on the next turn of the event loop.
 */
async function liveHandles(): Promise<Record<string, number>> {
  await sleep(20);
  const counts: Record<string, number> = {};
  for (const name of process.getActiveResourcesInfo()) {
    if (name === 'FSEventWrap' || name === 'FileHandle' || name === 'StatWatcher') counts[name] = (counts[name] ?? 0) + 1;
  }
  return counts;
}

/** Waits (without a deadline of its own: vitest's test timeout is the bound) until `cond` holds. */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await sleep(5);
}

describe('followEvents', () => {
  it('receives every event of a live, rotating JsonlEventSink exactly once, then stops on abort', async () => {
    const dir = dirs.make('follow-live');
    const base = path.join(dir, BASE_NAME);
    const handlesBefore = await liveHandles();
    const ac = new AbortController();
    const issues: ReadIssue[] = [];
    const got: PersistedEvent[] = [];
    // Started before the sink exists: the follower waits for the set to appear.
    const follower = (async () => {
      for await (const e of followEvents(base, { signal: ac.signal, issues: 'warn', onIssue: (i) => issues.push(i) })) got.push(e);
    })();
    await sleep(20);
    const sink = JsonlEventSink.open(base, { rotateBytes: 4096 });
    const total = 6000;
    for (let i = 0; i < total; i++) {
      sink.handleEvent({ type: 'tick', i, pad: 'p'.repeat(i % 64) });
      // Bursts with pauses: the follower catches up to the end and waits many times over.
      if (i % 250 === 249) {
        await sink.flush();
        await sleep(3);
      }
    }
    await sink.close();
    await until(() => got.length >= total);
    const set = readLines(dir);
    expect(set.files.length).toBeGreaterThan(50);
    ac.abort();
    await follower;
    expect(issues).toEqual([]);
    expect(got.map((e) => e.index)).toEqual(Array.from({ length: total }, (_, i) => i));
    expect(got).toEqual(set.lines);
    expect(await liveHandles()).toEqual(handlesBefore);
  });

  it('follows rotations and compressed segments written by hand, a torn line waited for, not reported', async () => {
    const dir = dirs.make('follow-hand');
    const base = path.join(dir, BASE_NAME);
    fs.writeFileSync(base, L(0) + L(1) + L(2).slice(0, 9));
    const ac = new AbortController();
    const it = followRecords(base, { signal: ac.signal, pollIntervalMs: 20 });
    expect((await it.next()).value?.index).toBe(0);
    expect((await it.next()).value?.index).toBe(1);
    const pending = it.next();
    await sleep(60);
    fs.appendFileSync(base, L(2).slice(9));
    expect((await pending).value?.index).toBe(2);
    // Rotation: the old file gets its last line, then the next segment appears.
    fs.appendFileSync(base, L(3));
    fs.writeFileSync(path.join(dir, segmentName(1)), L(4));
    expect((await it.next()).value?.index).toBe(3);
    expect((await it.next()).value?.index).toBe(4);
    fs.appendFileSync(path.join(dir, segmentName(1)), L(5));
    expect((await it.next()).value?.index).toBe(5);
    ac.abort();
    expect(await it.next()).toEqual({ done: true, value: undefined });
  });

  it('reports a torn line left behind once the writer moved on to a new segment', async () => {
    const dir = dirs.make('follow-torn');
    const base = path.join(dir, BASE_NAME);
    fs.writeFileSync(base, L(0) + L(1).slice(0, 5));
    fs.writeFileSync(path.join(dir, segmentName(1)), L(1));
    const ac = new AbortController();
    const issues: ReadIssue[] = [];
    const got: number[] = [];
    for await (const r of followRecords(base, { signal: ac.signal, issues: 'warn', onIssue: (i) => issues.push(i) })) {
      got.push(r.index);
      if (r.index === 1) ac.abort();
    }
    expect(got).toEqual([0, 1]);
    expect(issues.map((i) => [i.code, i.line])).toEqual([['ERR_RINGLOG_READ_TORN', 2]]);
  });

  it('starts at fromIndex and resolves the pending next() as done when aborted while waiting', async () => {
    const dir = dirs.make('follow-abort');
    const base = path.join(dir, BASE_NAME);
    fs.writeFileSync(base, Array.from({ length: 100 }, (_, i) => L(i)).join(''));
    const handlesBefore = await liveHandles();
    const ac = new AbortController();
    const it = followEvents(base, { signal: ac.signal, fromIndex: 97 });
    const got: number[] = [];
    for (let k = 0; k < 3; k++) got.push((await it.next()).value!.index);
    expect(got).toEqual([97, 98, 99]);
    const pending = it.next();
    await sleep(250);
    ac.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await it.next()).toEqual({ done: true, value: undefined });
    expect(await liveHandles()).toEqual(handlesBefore);
  });

  it('requires an AbortSignal', () => {
    expect(() => followEvents('x.jsonl', {} as never)).toThrow(TypeError);
  });
});
