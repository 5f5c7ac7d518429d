// MultiSink (issue 5): push, size and fan-out in push order. handleEvent works on a snapshot of the
// sink list, so a sink that pushes to the same MultiSink, or emits into it again from inside its own
// handleEvent, neither deadlocks nor loops forever (nested emits past the depth limit are refused
// and reported by the next flush). A sink that throws does not keep the event from the others and
// is reported by the next flush. flush() flushes every sink even when one fails and rejects with
// the first failure, its droppedEvents summed over all failures.

import { afterEach, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { ErrorCode, JsonlEventSink, MultiSink, SinkError, type AgentEvent, type AgentEventSink, type EventContext } from '../dist/src/index.js';
import { failure, fields, readLines, sinkFailure, tempDirs, type EventFields } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());


interface Delivery {
  readonly sink: string;
  readonly type: string | undefined;
  readonly context: EventContext | undefined;
}

/** Records every event it gets into a shared journal (to check the order across sinks) and its own list. */
class RecordingSink implements AgentEventSink {
  readonly events: EventFields[] = [];
  flushes = 0;
  constructor(
    readonly sinkName: string,
    private readonly journal: Delivery[] = [],
  ) {}
  handleEvent(event: AgentEvent, context?: EventContext): void {
    const ev = fields(event);
    this.events.push(ev);
    this.journal.push({ sink: this.sinkName, type: ev.type, context });
  }
  flush(): Promise<void> {
    this.flushes++;
    return Promise.resolve();
  }
  types(): (string | undefined)[] {
    return this.events.map((e) => e.type);
  }
}

/** A sink whose flush settles the way `run` says (called once per flush). */
class FlushingSink implements AgentEventSink {
  calls = 0;
  settled = false;
  constructor(
    readonly sinkName: string,
    private readonly run: () => Promise<void>,
  ) {}
  handleEvent(): void {}
  flush(): Promise<void> {
    this.calls++;
    return this.run().finally(() => {
      this.settled = true;
    });
  }
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('MultiSink: push, size, fan-out order', () => {
  it('delivers each event to every sink in push order, with its context', async () => {
    const journal: Delivery[] = [];
    const a = new RecordingSink('a', journal);
    const b = new RecordingSink('b', journal);
    const c = new RecordingSink('c', journal);
    const multi = new MultiSink([a, b]);
    expect(multi.size).toBe(2);
    multi.push(c);
    expect(multi.size).toBe(3);

    const ctx: EventContext = { frameDepth: 2, executionId: 'x-1' };
    multi.handleEvent({ type: 'one' });
    multi.handleEvent({ type: 'two' }, ctx);
    expect(journal).toEqual([
      { sink: 'a', type: 'one', context: undefined },
      { sink: 'b', type: 'one', context: undefined },
      { sink: 'c', type: 'one', context: undefined },
      { sink: 'a', type: 'two', context: ctx },
      { sink: 'b', type: 'two', context: ctx },
      { sink: 'c', type: 'two', context: ctx },
    ]);
    // The very same event object reaches every sink (MultiSink does not copy).
    expect(a.events[1]).toBe(b.events[1]);

    await multi.flush();
    expect([a.flushes, b.flushes, c.flushes]).toEqual([1, 1, 1]);
  });

  it('an empty MultiSink has size 0, accepts events and flushes', async () => {
    const multi = new MultiSink();
    expect(multi.size).toBe(0);
    multi.handleEvent({ type: 'nobody-listens' });
    await expect(multi.flush()).resolves.toBeUndefined();
  });

  it('a sink pushed twice gets each event twice and counts twice in size', () => {
    const a = new RecordingSink('a');
    const multi = new MultiSink([a, a]);
    expect(multi.size).toBe(2);
    multi.handleEvent({ type: 'e' });
    expect(a.types()).toEqual(['e', 'e']);
  });

  it('push (and the constructor) reject what is not a sink with a TypeError, leaving the list unchanged', () => {
    const multi = new MultiSink([new RecordingSink('a')]);
    const bad: unknown[] = [
      null,
      undefined,
      42,
      'sink',
      {},
      { handleEvent: () => undefined },
      { flush: () => Promise.resolve() },
      { handleEvent: 1, flush: () => Promise.resolve() },
    ];
    for (const b of bad) {
      expect(() => multi.push(b as AgentEventSink), String(b)).toThrow(TypeError);
      expect(() => new MultiSink([b as AgentEventSink]), String(b)).toThrow(TypeError);
    }
    expect(() => multi.push(multi)).toThrow(TypeError);
    expect(multi.size).toBe(1);
  });
});

describe('MultiSink: re-entrancy', () => {
  it('a sink pushing a new sink from inside handleEvent: the new sink gets only later events, no endless loop', () => {
    const multi = new MultiSink();
    /** Every spawner pushes one new spawner the first time it sees an event (capped, so a bug cannot hang the test). */
    const spawners: { born: number; sink: RecordingSink }[] = [];
    const CAP = 1000;
    let current = 0;
    const makeSpawner = (born: number): AgentEventSink => {
      const rec = new RecordingSink(`spawner-${born}`);
      let spawned = false;
      spawners.push({ born, sink: rec });
      return {
        handleEvent(event: AgentEvent): void {
          rec.handleEvent(event);
          if (!spawned && spawners.length < CAP) {
            spawned = true;
            multi.push(makeSpawner(current));
          }
        },
        flush: () => rec.flush(),
      };
    };
    multi.push(makeSpawner(-1));

    const N = 10;
    for (current = 0; current < N; current++) multi.handleEvent({ type: `e${current}` });

    // With a live (non-snapshot) list each new spawner would see the current event and spawn again, forever.
    expect(spawners).toHaveLength(N + 1);
    expect(multi.size).toBe(N + 1);
    for (const { born, sink } of spawners) {
      const expected: string[] = [];
      for (let k = born + 1; k < N; k++) expected.push(`e${k}`);
      expect(sink.types(), `spawner born during event ${born}`).toEqual(expected);
    }
  });

  it('a sink re-emitting once per event into the same MultiSink: both events are delivered to every sink, and it ends', async () => {
    const multi = new MultiSink();
    const first = new RecordingSink('first');
    const last = new RecordingSink('last');
    let relayed = 0;
    const relay: AgentEventSink = {
      handleEvent(event: AgentEvent): void {
        const ev = fields(event);
        if (ev.type === 'a') {
          relayed++;
          multi.handleEvent({ type: 'b', from: ev.n });
        }
      },
      flush: () => Promise.resolve(),
    };
    multi.push(first);
    multi.push(relay);
    multi.push(last);

    const N = 50;
    for (let n = 0; n < N; n++) multi.handleEvent({ type: 'a', n });
    expect(relayed).toBe(N);
    for (const rec of [first, last]) {
      expect(rec.events).toHaveLength(2 * N);
      expect(rec.events.filter((e) => e.type === 'a').map((e) => e.n)).toEqual([...Array(N).keys()]);
      expect(rec.events.filter((e) => e.type === 'b').map((e) => e.from)).toEqual([...Array(N).keys()]);
    }
    // The sink before the relay sees each 'a' before the 'b' it caused.
    expect(first.types().slice(0, 4)).toEqual(['a', 'b', 'a', 'b']);
    // Nothing was refused: a bounded relay is not an error.
    await expect(multi.flush()).resolves.toBeUndefined();
  });

  it('a sink that ALWAYS re-emits terminates; the next flush rejects with ERR_RINGLOG_DROPPED counting the refused nested emits', async () => {
    const multi = new MultiSink();
    const rec = new RecordingSink('rec');
    let handled = 0;
    const echo: AgentEventSink = {
      handleEvent(event: AgentEvent): void {
        handled++;
        multi.handleEvent({ type: 'echo', depth: ((fields(event).depth as number | undefined) ?? 0) + 1 });
      },
      flush: () => Promise.resolve(),
    };
    multi.push(rec);
    multi.push(echo);

    const N = 7;
    for (let i = 0; i < N; i++) expect(() => multi.handleEvent({ type: 'seed', i })).not.toThrow();

    // Every nested level that ran reached both sinks; each seed's chain was cut exactly once.
    expect(handled).toBe(rec.events.length);
    expect(handled).toBeGreaterThan(N);
    expect(rec.types().filter((t) => t === 'seed')).toHaveLength(N);
    const err = await sinkFailure(() => multi.flush());
    expect(err.code).toBe(ErrorCode.DROPPED);
    expect(err.code).toBe('ERR_RINGLOG_DROPPED');
    expect(err.droppedEvents).toBe(N);
    expect(err.message).toMatch(/\d+ event\(s\)/);
    // Reported once, then forgotten.
    await expect(multi.flush()).resolves.toBeUndefined();
  });

  it('a sink whose handleEvent throws: the others still get the event, handleEvent does not throw, flush rejects with ERR_RINGLOG_SINK', async () => {
    const journal: Delivery[] = [];
    const before = new RecordingSink('before', journal);
    const after = new RecordingSink('after', journal);
    const boom = new Error('handler exploded');
    let thrown = 0;
    const thrower: AgentEventSink & { sinkName: string } = {
      sinkName: 'thrower',
      handleEvent(): void {
        thrown++;
        throw boom;
      },
      flush: () => Promise.resolve(),
    };
    const multi = new MultiSink([before, thrower, after]);
    for (let i = 0; i < 3; i++) expect(() => multi.handleEvent({ type: `t${i}` })).not.toThrow();
    expect(thrown).toBe(3);
    expect(before.types()).toEqual(['t0', 't1', 't2']);
    expect(after.types()).toEqual(['t0', 't1', 't2']);
    expect(journal.map((d) => d.sink)).toEqual(['before', 'after', 'before', 'after', 'before', 'after']);

    const err = await sinkFailure(() => multi.flush());
    expect(err.code).toBe(ErrorCode.SINK);
    expect(err.code).toBe('ERR_RINGLOG_SINK');
    expect(err.sink).toBe('thrower');
    expect(err.droppedEvents).toBe(3);
    expect(err.cause).toBe(boom);
    expect(err.message).toContain('handler exploded');
    // The other sinks were flushed too.
    expect([before.flushes, after.flushes]).toEqual([1, 1]);
    // Reported once, then forgotten.
    await expect(multi.flush()).resolves.toBeUndefined();
  });
});

describe('MultiSink: flush()', () => {
  it('flushes every sink even when some fail; rejects with the first failure, droppedEvents summed, failures listing each', async () => {
    const errA = new SinkError('ringlog: A lost events', { sink: 'A', code: ErrorCode.WRITE, droppedEvents: 3 });
    const errB = new SinkError('ringlog: B lost events', { sink: 'B', code: ErrorCode.DROPPED, droppedEvents: 4 });
    const plain = new Error('C is on fire');
    const ok = new FlushingSink('ok', () => Promise.resolve());
    const a = new FlushingSink('A', () => Promise.reject(errA));
    const slow = new FlushingSink('slow', () => tick(50));
    const b = new FlushingSink('B', async () => {
      await tick(10);
      throw errB;
    });
    const c = new FlushingSink('C', () => Promise.reject(plain));
    const multi = new MultiSink([ok, a, slow, b, c]);

    const err = await sinkFailure(() => multi.flush());
    for (const s of [ok, a, slow, b, c]) {
      expect(s.calls, s.sinkName).toBe(1);
      expect(s.settled, s.sinkName).toBe(true);
    }
    expect(err.message).toBe(errA.message);
    expect(err.sink).toBe('A');
    expect(err.code).toBe(ErrorCode.WRITE);
    expect(err.droppedEvents).toBe(7);
    expect(err.failures).toBeDefined();
    const failures = err.failures!;
    expect(failures).toHaveLength(3);
    expect(failures[0]).toBe(errA);
    expect(failures[1]).toBe(errB);
    const wrapped = failures[2]!;
    expect(wrapped).toBeInstanceOf(SinkError);
    expect(wrapped.sink).toBe('C');
    expect(wrapped.code).toBe(ErrorCode.SINK);
    expect(wrapped.droppedEvents).toBe(0);
    expect(wrapped.cause).toBe(plain);
    expect(wrapped.message).toContain('C is on fire');
  });

  it('a single failure is reported as is', async () => {
    const errA = new SinkError('ringlog: only A', { sink: 'A', code: ErrorCode.WRITE, droppedEvents: 5 });
    const multi = new MultiSink([new FlushingSink('ok', () => Promise.resolve()), new FlushingSink('A', () => Promise.reject(errA))]);
    expect(await failure(() => multi.flush())).toBe(errA);
  });

  it('a sink whose flush throws synchronously does not keep the others from flushing', async () => {
    const before = new FlushingSink('before', () => tick(20));
    const thrower: AgentEventSink & { sinkName: string } = {
      sinkName: 'sync-thrower',
      handleEvent: () => undefined,
      flush(): Promise<void> {
        throw new Error('no promise for you');
      },
    };
    const after = new FlushingSink('after', () => tick(20));
    const multi = new MultiSink([before, thrower, after]);
    let returned: Promise<void> | undefined;
    expect(() => {
      returned = multi.flush();
    }).not.toThrow();
    const err = await sinkFailure(() => returned);
    expect(err.sink).toBe('sync-thrower');
    expect(err.code).toBe(ErrorCode.SINK);
    expect(err.message).toContain('no promise for you');
    expect([before.calls, before.settled, after.calls, after.settled]).toEqual([1, true, 1, true]);
  });
});

describe('MultiSink over real JsonlEventSinks', () => {
  it('1000 events reach both files identically: same indexes, same event fields', async () => {
    const dirA = dirs.make('multi-a');
    const dirB = dirs.make('multi-b');
    const a = JsonlEventSink.open(path.join(dirA, 'events.jsonl'));
    const b = JsonlEventSink.open(path.join(dirB, 'events.jsonl'));
    const multi = new MultiSink([a, b]);
    const N = 1000;
    const events: AgentEvent[] = [];
    for (let i = 0; i < N; i++) {
      const e: AgentEvent = { type: i % 3 === 0 ? 'tool_call' : 'message', i, text: `event ${i} ${'x'.repeat(i % 17)}`, nested: { even: i % 2 === 0, list: [i, -i] } };
      events.push(e);
      multi.handleEvent(e, i % 5 === 0 ? { frameDepth: i % 7, executionId: `exec-${i}` } : undefined);
    }
    await multi.flush();
    // The barrier covered both files before close.
    expect(readLines(dirA, 'events.jsonl').lines).toHaveLength(N);
    expect(readLines(dirB, 'events.jsonl').lines).toHaveLength(N);
    await a.close();
    await b.close();

    const la = readLines(dirA, 'events.jsonl').lines;
    const lb = readLines(dirB, 'events.jsonl').lines;
    expect(la).toHaveLength(N);
    expect(lb).toHaveLength(N);
    const strip = (l: Record<string, unknown>): Record<string, unknown> => {
      const { emitted_at_ms: _ts, ...rest } = l;
      return rest;
    };
    let mismatch = -1;
    let wrongContent = -1;
    for (let i = 0; i < N; i++) {
      const x = la[i]!;
      const y = lb[i]!;
      if (mismatch < 0 && JSON.stringify(strip(x)) !== JSON.stringify(strip(y))) mismatch = i;
      const withCtx = i % 5 === 0;
      const expected = { index: i, frame_depth: withCtx ? i % 7 : null, ...(withCtx ? { execution_id: `exec-${i}` } : {}), ...events[i]! };
      if (wrongContent < 0 && JSON.stringify(strip(x)) !== JSON.stringify(expected)) wrongContent = i;
    }
    expect(mismatch).toBe(-1);
    expect(wrongContent).toBe(-1);
    expect(la.map((l) => l.index)).toEqual([...Array(N).keys()]);
  });
});
