// Events declared as TypeScript interfaces go into every kind of sink with no cast, and come back
// typed from the reader. The type checks are `tsc -p test/tsconfig.json` (part of `npm test`): a
// line below that stops compiling, or a `@ts-expect-error` that stops being an error, fails it.
// The runtime assertions check that the events really went through.

import { afterEach, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import {
  connectRegistry,
  connectSink,
  emitEvent,
  eventAt,
  EventLogSink,
  followEvents,
  JsonlEventSink,
  MemoryEventLog,
  MultiSink,
  readEvents,
  registerWildcardSink,
  SessionRegistry,
  sinkHandle,
  unregisterWildcardSink,
  type AgentEvent,
  type AgentEventSink,
  type LogMarker,
  type PersistedEvent,
} from '../dist/src/index.js';
import { BASE_NAME, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

// An interface, not a type alias: it has no index signature, which is what the sinks once refused.
interface MyEvent {
  type: 'x';
  n: number;
}

const mine = (n: number): MyEvent => ({ type: 'x', n });

/** Keeps what it is given, as the value it was handed. */
class Keeper implements AgentEventSink {
  readonly events: AgentEvent[] = [];
  handleEvent(event: AgentEvent): void {
    this.events.push(event);
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

describe('interface events in, typed events out', () => {
  it('JsonlEventSink takes them; readEvents, followEvents and eventAt give them back typed', async () => {
    const base = path.join(dirs.make('types-jsonl'), BASE_NAME);
    const sink = JsonlEventSink.open(base);
    sink.handleEvent(mine(1));
    sink.handleEvent(mine(2), { frameDepth: 1 });
    // @ts-expect-error a number is not an event; at run time it becomes an event_rejected marker
    sink.handleEvent(42);
    await sink.close();

    const events = await collect(readEvents<MyEvent>(base, { types: ['x'] }));
    // Typed fields, no narrowing: `n` is a number, `type` the literal, the envelope is there.
    const ns: number[] = events.map((e) => e.n);
    const types: 'x'[] = events.map((e) => e.type);
    expect(ns).toEqual([1, 2]);
    expect(types).toEqual(['x', 'x']);
    expect(events.map((e) => [e.index, e.frame_depth])).toEqual([
      [0, null],
      [1, 1],
    ]);
    // @ts-expect-error a field MyEvent does not have: the type parameter took effect
    expect(events[0]!.missing).toBeUndefined();

    // With the markers in the type, `type` tells them apart.
    const all = await collect(readEvents<MyEvent | LogMarker>(base));
    const described = all.map((e) => (e.type === 'x' ? `n=${e.n}` : e.type === 'event_rejected' ? `rejected: ${e.reason}` : `dropped ${e.count}`));
    expect(described.slice(0, 2)).toEqual(['n=1', 'n=2']);
    expect(described[2]).toMatch(/^rejected: /);

    const one: PersistedEvent<MyEvent> | undefined = await eventAt<MyEvent>(base, 1);
    expect(one?.n).toBe(2);

    const ac = new AbortController();
    const followed: number[] = [];
    for await (const e of followEvents<MyEvent>(base, { signal: ac.signal, types: ['x'] })) {
      followed.push(e.n);
      if (followed.length === 2) ac.abort();
    }
    expect(followed).toEqual([1, 2]);
  });

  it('without a type parameter the reader gives what it always gave: any field, unknown', async () => {
    const base = path.join(dirs.make('types-untyped'), BASE_NAME);
    const sink = JsonlEventSink.open(base);
    sink.handleEvent(mine(7));
    await sink.close();
    const [e] = await collect(readEvents(base));
    const n: unknown = e!.n;
    const type: string | undefined = e!.type;
    expect([e!.index, type, n]).toEqual([0, 'x', 7]);
  });

  it('MultiSink, EventLogSink, registries (own and default) and connected handles take them', async () => {
    const multiKept = new Keeper();
    const multi = new MultiSink([multiKept]);
    multi.handleEvent(mine(1));

    const log = new MemoryEventLog(16);
    const logSink = new EventLogSink(log, 's');
    logSink.handleEvent(mine(2));
    await logSink.flush();
    const [record] = await log.readRange(logSink.topic, 0, 10);
    expect(record).toMatchObject({ kind: 'x', payload: { event: { type: 'x', n: 2 } } });
    await log.close();

    const reg = new SessionRegistry();
    const regKept = new Keeper();
    reg.registerWildcardSink(regKept);
    reg.emitEvent(mine(3));

    const defaultKept = new Keeper();
    const wildcard = registerWildcardSink(defaultKept);
    try {
      emitEvent(mine(4));
    } finally {
      unregisterWildcardSink(wildcard);
    }

    const handleKept = new Keeper();
    const conn = connectSink(sinkHandle(handleKept));
    const connReg = connectRegistry(reg.handle());
    try {
      conn.handleEvent(mine(5));
      connReg.emitEvent(mine(6));
      await conn.flush();
      await connReg.flush();
    } finally {
      conn.close();
      connReg.close();
    }

    expect(multiKept.events).toEqual([mine(1)]);
    expect(regKept.events).toEqual([mine(3), mine(6)]);
    expect(defaultKept.events).toEqual([mine(4)]);
    expect(handleKept.events).toEqual([mine(5)]);
  });
});

/** Compile-time only (never called): every sink kind still refuses what is not an object. */
export function refusesNonObjects(multi: MultiSink, logSink: EventLogSink, reg: SessionRegistry): void {
  // @ts-expect-error a number is not an event
  multi.handleEvent(1);
  // @ts-expect-error a string is not an event
  logSink.handleEvent('x');
  // @ts-expect-error null is not an event
  reg.emitEvent(null);
  // @ts-expect-error a number is not an event
  emitEvent(2);
  // @ts-expect-error a number is not an event
  connectSink(sinkHandle(multi)).handleEvent(3);
}
