// Session registry and producer handles (issue 5). registerSink(sessionId, sink) and wildcard sinks;
// emitEvent routes by the event's string session_id to that session's sinks and to every wildcard
// sink; flushSessionSinks is a causal barrier over all of them that drains every sink even after a
// failure; clearSessionSinks / flushAndClearSessionSinks forget a session's sinks (the latter even
// when its flush failed, and it reports the failure); routing works on snapshots, so sinks may
// register or emit from inside handleEvent. Producer handles: several worker threads emitting
// into one sink, through registry.handle() + connectRegistry or sinkHandle() + connectSink, lose
// nothing and keep each producer's order; the connected flush() is a round-trip barrier that
// reports the owner's failures as SinkErrors.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  clearSessionSinks,
  connectRegistry,
  connectSink,
  defaultRegistry,
  emitEvent,
  ErrorCode,
  flushAndClearSessionSinks,
  flushSessionSinks,
  JsonlEventSink,
  registerSink,
  registerWildcardSink,
  SessionRegistry,
  SinkError,
  sinkHandle,
  unregisterWildcardSink,
  type AgentEvent,
  type AgentEventSink,
  type EventContext,
  type ProducerHandle,
} from '../dist/src/index.js';
import { failure, fields, lastJson, type EventFields, type Line, readLines, RINGLOG_URL, runChild, sinkFailure, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());


/** Settles with the promise, or rejects if it has not settled in `ms` (a liveness bound, not a speed check). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Records the events it gets; flush settles the way `onFlush` says (resolves by default). */
class RecordingSink implements AgentEventSink {
  readonly events: EventFields[] = [];
  readonly contexts: (EventContext | undefined)[] = [];
  flushes = 0;
  flushed = 0;
  constructor(
    readonly sinkName: string,
    private readonly onFlush: () => Promise<void> = () => Promise.resolve(),
  ) {}
  handleEvent(event: AgentEvent, context?: EventContext): void {
    this.events.push(fields(event));
    this.contexts.push(context);
  }
  flush(): Promise<void> {
    this.flushes++;
    return this.onFlush().then(() => {
      this.flushed++;
    });
  }
  types(): (string | undefined)[] {
    return this.events.map((e) => e.type);
  }
}

describe('SessionRegistry: routing', () => {
  it('routes by string session_id to that session’s sinks (in registration order) and to every wildcard sink', () => {
    const reg = new SessionRegistry();
    const order: string[] = [];
    const tap = (name: string): RecordingSink => {
      const r = new RecordingSink(name);
      const orig = r.handleEvent.bind(r);
      r.handleEvent = (e, c) => {
        order.push(`${name}:${String(fields(e).type)}`);
        orig(e, c);
      };
      return r;
    };
    const s1a = tap('s1a');
    const s1b = tap('s1b');
    const s2 = tap('s2');
    const numeric = tap('numeric');
    const w1 = tap('w1');
    const w2 = tap('w2');
    reg.registerSink('s1', s1a);
    reg.registerSink('s1', s1b);
    reg.registerSink('s2', s2);
    reg.registerSink('42', numeric);
    reg.registerWildcardSink(w1);
    reg.registerWildcardSink(w2);
    expect(reg.sessionSinkCount('s1')).toBe(2);
    expect(reg.sessionSinkCount('s2')).toBe(1);
    expect(reg.sessionSinkCount('nope')).toBe(0);
    expect(reg.wildcardCount).toBe(2);

    const ctx: EventContext = { frameDepth: 3, executionId: 'e' };
    reg.emitEvent({ type: 'to-s1', session_id: 's1' }, ctx);
    reg.emitEvent({ type: 'to-s2', session_id: 's2' });
    reg.emitEvent({ type: 'no-sid' });
    reg.emitEvent({ type: 'numeric-sid', session_id: 42 });
    reg.emitEvent({ type: 'object-sid', session_id: { toString: () => 's1' } });
    reg.emitEvent({ type: 'unknown-sid', session_id: 's3' });

    expect(s1a.types()).toEqual(['to-s1']);
    expect(s1b.types()).toEqual(['to-s1']);
    expect(s1a.contexts).toEqual([ctx]);
    expect(s2.types()).toEqual(['to-s2']);
    expect(numeric.types()).toEqual([]);
    const all = ['to-s1', 'to-s2', 'no-sid', 'numeric-sid', 'object-sid', 'unknown-sid'];
    expect(w1.types()).toEqual(all);
    expect(w2.types()).toEqual(all);
    expect(w1.contexts[0]).toEqual(ctx);
    // Session sinks first, in registration order, then the wildcards in registration order.
    expect(order.slice(0, 4)).toEqual(['s1a:to-s1', 's1b:to-s1', 'w1:to-s1', 'w2:to-s1']);
  });

  it('registerWildcardSink returns a handle; unregisterWildcardSink returns true once, then false', () => {
    const reg = new SessionRegistry();
    const w = new RecordingSink('w');
    const other = new RecordingSink('other');
    const h = reg.registerWildcardSink(w);
    const h2 = reg.registerWildcardSink(other);
    expect(h).not.toBe(h2);
    reg.emitEvent({ type: 'before', session_id: 'x' });
    expect(reg.unregisterWildcardSink(h)).toBe(true);
    expect(reg.unregisterWildcardSink(h)).toBe(false);
    expect(reg.wildcardCount).toBe(1);
    reg.emitEvent({ type: 'after', session_id: 'x' });
    expect(w.types()).toEqual(['before']);
    expect(other.types()).toEqual(['before', 'after']);
    // A handle of another registry does not remove anything here.
    const elsewhere = new SessionRegistry().registerWildcardSink(new RecordingSink('z'));
    expect(reg.unregisterWildcardSink(elsewhere)).toBe(false);
    expect(reg.wildcardCount).toBe(1);
  });

  it('rejects a non-string session id and a non-sink with a TypeError', () => {
    const reg = new SessionRegistry();
    const ok = new RecordingSink('ok');
    expect(() => reg.registerSink(42 as unknown as string, ok)).toThrow(TypeError);
    expect(() => reg.registerSink('s', {} as AgentEventSink)).toThrow(TypeError);
    expect(() => reg.registerSink('s', null as unknown as AgentEventSink)).toThrow(TypeError);
    expect(() => reg.registerWildcardSink({ handleEvent: () => undefined } as unknown as AgentEventSink)).toThrow(TypeError);
    expect(() => reg.flushSessionSinks(undefined as unknown as string)).toThrow(TypeError);
    expect(() => reg.clearSessionSinks(1 as unknown as string)).toThrow(TypeError);
    expect(reg.sessionSinkCount('s')).toBe(0);
    expect(reg.wildcardCount).toBe(0);
  });

  it('a sink whose handleEvent throws does not keep the event from the others; the next flush reports it (ERR_RINGLOG_SINK)', async () => {
    const reg = new SessionRegistry();
    const boom = new Error('bad sink');
    const thrower: AgentEventSink & { sinkName: string } = {
      sinkName: 'thrower',
      handleEvent(): void {
        throw boom;
      },
      flush: () => Promise.resolve(),
    };
    const after = new RecordingSink('after');
    const w = new RecordingSink('w');
    reg.registerSink('s', thrower);
    reg.registerSink('s', after);
    reg.registerWildcardSink(w);
    expect(() => reg.emitEvent({ type: 'one', session_id: 's' })).not.toThrow();
    expect(() => reg.emitEvent({ type: 'two', session_id: 's' })).not.toThrow();
    expect(after.types()).toEqual(['one', 'two']);
    expect(w.types()).toEqual(['one', 'two']);
    const err = await sinkFailure(() => reg.flushSessionSinks('s'));
    expect(err.code).toBe(ErrorCode.SINK);
    expect(err.sink).toBe('thrower');
    expect(err.droppedEvents).toBe(2);
    expect(err.cause).toBe(boom);
    await expect(reg.flushSessionSinks('s')).resolves.toBeUndefined();
  });
});

describe('SessionRegistry: barriers and clearing', () => {
  it('flushSessionSinks is a barrier over the session’s sinks and the wildcard sinks (real JSONL files)', async () => {
    const dir = dirs.make('registry-barrier');
    const reg = new SessionRegistry();
    const session = JsonlEventSink.open(path.join(dir, 'session.jsonl'));
    const wild = JsonlEventSink.open(path.join(dir, 'wild.jsonl'));
    reg.registerSink('s', session);
    reg.registerWildcardSink(wild);
    let emitted = 0;
    let otherEmitted = 0;
    for (const batch of [1, 500, 3, 4000]) {
      for (let i = 0; i < batch; i++) {
        reg.emitEvent({ type: 'step', session_id: 's', n: emitted++ });
        if (i % 10 === 0) {
          reg.emitEvent({ type: 'elsewhere', session_id: 'other', n: otherEmitted++ });
        }
      }
      await reg.flushSessionSinks('s');
      // Without closing: everything emitted before the barrier is in both files.
      const s = readLines(dir, 'session.jsonl').lines;
      const w = readLines(dir, 'wild.jsonl').lines;
      expect(s).toHaveLength(emitted);
      expect(s.map((l) => l.n)).toEqual([...Array(emitted).keys()]);
      expect(w).toHaveLength(emitted + otherEmitted);
      expect(w.filter((l) => l.session_id === 's').map((l) => l.n)).toEqual([...Array(emitted).keys()]);
    }
    await session.close();
    await wild.close();
  });

  it('flushSessionSinks drains every sink after a failure and rejects with the combined failure', async () => {
    const reg = new SessionRegistry();
    const errA = new SinkError('ringlog: session sink A failed', { sink: 'A', code: ErrorCode.WRITE, droppedEvents: 2 });
    const errW = new SinkError('ringlog: wildcard W failed', { sink: 'W', code: ErrorCode.DROPPED, droppedEvents: 5 });
    const plain = new Error('wildcard P is broken');
    const a = new RecordingSink('A', () => Promise.reject(errA));
    const slow = new RecordingSink('slow', () => tick(50));
    const w = new RecordingSink('W', async () => {
      await tick(10);
      throw errW;
    });
    const slowWild = new RecordingSink('slowWild', () => tick(30));
    const p = new RecordingSink('P', () => Promise.reject(plain));
    const otherSession = new RecordingSink('other');
    reg.registerSink('s', a);
    reg.registerSink('s', slow);
    reg.registerSink('t', otherSession);
    reg.registerWildcardSink(w);
    reg.registerWildcardSink(slowWild);
    reg.registerWildcardSink(p);

    const err = await sinkFailure(() => reg.flushSessionSinks('s'));
    for (const s of [a, slow, w, slowWild, p]) expect(s.flushes, s.sinkName).toBe(1);
    for (const s of [slow, slowWild]) expect(s.flushed, s.sinkName).toBe(1);
    expect(otherSession.flushes).toBe(0);
    expect(err.message).toBe(errA.message);
    expect(err.sink).toBe('A');
    expect(err.code).toBe(ErrorCode.WRITE);
    expect(err.droppedEvents).toBe(7);
    expect(err.failures).toHaveLength(3);
    expect(err.failures![0]).toBe(errA);
    expect(err.failures![1]).toBe(errW);
    expect(err.failures![2]!.sink).toBe('P');
    expect(err.failures![2]!.code).toBe(ErrorCode.SINK);
    expect(err.failures![2]!.cause).toBe(plain);
  });

  it('a sink registered both for the session and as a wildcard is flushed once per barrier', async () => {
    const reg = new SessionRegistry();
    const both = new RecordingSink('both');
    reg.registerSink('s', both);
    reg.registerWildcardSink(both);
    await reg.flushSessionSinks('s');
    expect(both.flushes).toBe(1);
  });

  it('clearSessionSinks forgets the session’s sinks; wildcards stay', async () => {
    const reg = new SessionRegistry();
    const s = new RecordingSink('s');
    const other = new RecordingSink('other');
    const w = new RecordingSink('w');
    reg.registerSink('s', s);
    reg.registerSink('o', other);
    reg.registerWildcardSink(w);
    reg.emitEvent({ type: 'one', session_id: 's' });
    reg.clearSessionSinks('s');
    reg.clearSessionSinks('never-registered');
    expect(reg.sessionSinkCount('s')).toBe(0);
    expect(reg.sessionSinkCount('o')).toBe(1);
    expect(reg.wildcardCount).toBe(1);
    reg.emitEvent({ type: 'two', session_id: 's' });
    expect(s.types()).toEqual(['one']);
    expect(w.types()).toEqual(['one', 'two']);
    await reg.flushSessionSinks('s');
    expect(s.flushes).toBe(0);
    expect(w.flushes).toBe(1);
    reg.emitEvent({ type: 'three', session_id: 'o' });
    expect(other.types()).toEqual(['three']);
  });

  it('flushAndClearSessionSinks flushes, then removes the session’s sinks', async () => {
    const reg = new SessionRegistry();
    const s = new RecordingSink('s', () => tick(20));
    const w = new RecordingSink('w');
    reg.registerSink('s', s);
    reg.registerWildcardSink(w);
    reg.emitEvent({ type: 'one', session_id: 's' });
    await reg.flushAndClearSessionSinks('s');
    expect(s.flushed).toBe(1);
    expect(w.flushed).toBe(1);
    expect(reg.sessionSinkCount('s')).toBe(0);
    expect(reg.wildcardCount).toBe(1);
    reg.emitEvent({ type: 'two', session_id: 's' });
    expect(s.types()).toEqual(['one']);
    expect(w.types()).toEqual(['one', 'two']);
  });

  it('flushAndClearSessionSinks removes the sinks even when the flush failed, and rejects with the failure', async () => {
    const reg = new SessionRegistry();
    const errA = new SinkError('ringlog: A failed', { sink: 'A', code: ErrorCode.WRITE, droppedEvents: 9 });
    const a = new RecordingSink('A', () => Promise.reject(errA));
    const slow = new RecordingSink('slow', () => tick(30));
    const w = new RecordingSink('w');
    reg.registerSink('s', a);
    reg.registerSink('s', slow);
    reg.registerWildcardSink(w);
    const err = await sinkFailure(() => reg.flushAndClearSessionSinks('s'));
    expect(err).toBe(errA);
    expect(err.droppedEvents).toBe(9);
    expect(slow.flushed).toBe(1);
    expect(w.flushed).toBe(1);
    expect(reg.sessionSinkCount('s')).toBe(0);
    expect(reg.wildcardCount).toBe(1);
    reg.emitEvent({ type: 'late', session_id: 's' });
    expect(a.events).toHaveLength(0);
    expect(w.types()).toEqual(['late']);
  });
});

describe('SessionRegistry: re-entrancy', () => {
  it('a sink registering another sink for its session from inside handleEvent: the new sink gets only later events', () => {
    const reg = new SessionRegistry();
    const late = new RecordingSink('late');
    const lateWild = new RecordingSink('lateWild');
    let registered = false;
    const registrar: AgentEventSink = {
      handleEvent(): void {
        if (!registered) {
          registered = true;
          reg.registerSink('s', late);
          reg.registerWildcardSink(lateWild);
        }
      },
      flush: () => Promise.resolve(),
    };
    reg.registerSink('s', registrar);
    reg.emitEvent({ type: 'first', session_id: 's' });
    reg.emitEvent({ type: 'second', session_id: 's' });
    expect(late.types()).toEqual(['second']);
    expect(lateWild.types()).toEqual(['second']);
    expect(reg.sessionSinkCount('s')).toBe(2);
  });

  it('a sink registering a new sink on every event does not loop forever', () => {
    const reg = new SessionRegistry();
    const all: RecordingSink[] = [];
    const CAP = 1000;
    const spawner = (): AgentEventSink => {
      const rec = new RecordingSink(`r${all.length}`);
      all.push(rec);
      let spawned = false;
      return {
        handleEvent(e: AgentEvent): void {
          rec.handleEvent(e);
          if (!spawned && all.length < CAP) {
            spawned = true;
            reg.registerSink('s', spawner());
          }
        },
        flush: () => rec.flush(),
      };
    };
    reg.registerSink('s', spawner());
    for (let i = 0; i < 5; i++) reg.emitEvent({ type: `e${i}`, session_id: 's' });
    expect(all).toHaveLength(6);
    expect(all.map((r) => r.events.length)).toEqual([5, 4, 3, 2, 1, 0]);
  });

  it('a sink re-emitting once per event: delivered to the session and wildcards, and it ends', async () => {
    const reg = new SessionRegistry();
    const rec = new RecordingSink('rec');
    const w = new RecordingSink('w');
    const relay: AgentEventSink = {
      handleEvent(e: AgentEvent): void {
        const ev = fields(e);
        if (ev.type === 'a') reg.emitEvent({ type: 'b', session_id: 's', from: ev.n });
      },
      flush: () => Promise.resolve(),
    };
    reg.registerSink('s', relay);
    reg.registerSink('s', rec);
    reg.registerWildcardSink(w);
    for (let n = 0; n < 20; n++) reg.emitEvent({ type: 'a', session_id: 's', n });
    for (const r of [rec, w]) {
      expect(r.events.filter((e) => e.type === 'a').map((e) => e.n)).toEqual([...Array(20).keys()]);
      expect(r.events.filter((e) => e.type === 'b').map((e) => e.from)).toEqual([...Array(20).keys()]);
    }
    await expect(reg.flushSessionSinks('s')).resolves.toBeUndefined();
  });

  it('a wildcard sink that ALWAYS re-emits terminates; the next barrier rejects with ERR_RINGLOG_DROPPED', async () => {
    const reg = new SessionRegistry();
    const rec = new RecordingSink('rec');
    const echo: AgentEventSink = {
      handleEvent(e: AgentEvent): void {
        reg.emitEvent({ type: 'echo', session_id: fields(e).session_id });
      },
      flush: () => Promise.resolve(),
    };
    reg.registerSink('s', rec);
    reg.registerWildcardSink(echo);
    const N = 4;
    for (let i = 0; i < N; i++) expect(() => reg.emitEvent({ type: 'seed', session_id: 's' })).not.toThrow();
    expect(rec.events.length).toBeGreaterThan(N);
    const err = await sinkFailure(() => reg.flushSessionSinks('s'));
    expect(err.code).toBe(ErrorCode.DROPPED);
    expect(err.droppedEvents).toBe(N);
    await expect(reg.flushSessionSinks('s')).resolves.toBeUndefined();
  });
});

describe('SessionRegistry: execution scope', () => {
  it('a sink registered for one execution gets that execution’s events only; the session’s sinks and wildcards get all, in that order', () => {
    const reg = new SessionRegistry();
    const journal: string[] = [];
    const sink = (name: string): AgentEventSink => ({ handleEvent: (e) => void journal.push(`${name}:${String(fields(e).n)}`), flush: () => Promise.resolve() });
    const session = sink('session');
    const e1 = new RecordingSink('e1');
    const e2 = new RecordingSink('e2');
    reg.registerSink('s', session);
    reg.registerSink('s', e1, { executionId: 'e1' });
    reg.registerSink('s', e2, { executionId: 'e2' });
    reg.registerSink('s', sink('e1-second'), { executionId: 'e1' });
    reg.registerWildcardSink(sink('wild'));
    reg.emitEvent({ type: 'x', n: 1, session_id: 's' }, { executionId: 'e1', frameDepth: 2 });
    reg.emitEvent({ type: 'x', n: 2, session_id: 's' }, { executionId: 'e2' });
    reg.emitEvent({ type: 'x', n: 3, session_id: 's' });
    reg.emitEvent({ type: 'x', n: 4, session_id: 'other' }, { executionId: 'e1' });
    expect(e1.events.map((e) => e.n)).toEqual([1]);
    expect(e1.contexts).toEqual([{ executionId: 'e1', frameDepth: 2 }]);
    expect(e2.events.map((e) => e.n)).toEqual([2]);
    expect(journal).toEqual(['session:1', 'e1-second:1', 'wild:1', 'session:2', 'wild:2', 'session:3', 'wild:3', 'wild:4']);
    expect(reg.sessionSinkCount('s')).toBe(1);
    expect(reg.sessionSinkCount('s', { executionId: 'e1' })).toBe(2);
  });

  it('flushes and clears by execution: its barrier covers the session’s sinks, that execution’s and the wildcards', async () => {
    const reg = new SessionRegistry();
    const session = new RecordingSink('session');
    const e1 = new RecordingSink('e1');
    const e2 = new RecordingSink('e2');
    const wild = new RecordingSink('wild');
    reg.registerSink('s', session);
    reg.registerSink('s', e1, { executionId: 'e1' });
    reg.registerSink('s', e2, { executionId: 'e2' });
    reg.registerWildcardSink(wild);
    await reg.flushSessionSinks('s', { executionId: 'e1' });
    expect([session.flushes, e1.flushes, e2.flushes, wild.flushes]).toEqual([1, 1, 0, 1]);
    await reg.flushSessionSinks('s');
    expect([session.flushes, e1.flushes, e2.flushes, wild.flushes], 'a session barrier covers its executions').toEqual([2, 2, 1, 2]);
    reg.clearSessionSinks('s', { executionId: 'e1' });
    expect(reg.sessionSinkCount('s', { executionId: 'e1' })).toBe(0);
    expect(reg.sessionSinkCount('s', { executionId: 'e2' })).toBe(1);
    expect(reg.sessionSinkCount('s')).toBe(1);
    reg.emitEvent({ type: 'after', session_id: 's' }, { executionId: 'e1' });
    expect(e1.events).toEqual([]);
    await reg.flushAndClearSessionSinks('s', { executionId: 'e2' });
    expect(e2.flushes).toBe(2);
    expect(reg.sessionSinkCount('s', { executionId: 'e2' })).toBe(0);
    reg.registerSink('s', e1, { executionId: 'e3' });
    reg.clearSessionSinks('s');
    expect([reg.sessionSinkCount('s'), reg.sessionSinkCount('s', { executionId: 'e3' })], 'clearing the session clears its executions').toEqual([0, 0]);
  });

  it('a context whose executionId getter throws: the emit does not throw, the session’s sinks get the event', () => {
    const reg = new SessionRegistry();
    const session = new RecordingSink('session');
    const scoped = new RecordingSink('scoped');
    reg.registerSink('s', session);
    reg.registerSink('s', scoped, { executionId: 'e' });
    const hostile = Object.defineProperty({}, 'executionId', { get: () => { throw new Error('no'); }, enumerable: true }) as EventContext;
    expect(() => reg.emitEvent({ type: 'x', session_id: 's' }, hostile)).not.toThrow();
    expect(session.events.length).toBe(1);
    expect(scoped.events.length).toBe(0);
  });

  it('rejects a bad scope with a TypeError naming the call', () => {
    const reg = new SessionRegistry();
    const sink = new RecordingSink('x');
    expect(() => reg.registerSink('s', sink, { executionId: 7 as unknown as string })).toThrow(new TypeError('ringlog: registerSink executionId must be a string, got number'));
    expect(() => reg.registerSink('s', sink, { execution: 'e' } as never)).toThrow(new TypeError("ringlog: registerSink scope has an unknown field 'execution' (known: executionId)"));
    expect(() => reg.clearSessionSinks('s', 'e' as never)).toThrow(new TypeError('ringlog: clearSessionSinks scope must be an object like { executionId }, got string'));
    expect(() => reg.flushSessionSinks('s', null as never)).toThrow(new TypeError('ringlog: flushSessionSinks scope must be an object like { executionId }, got null'));
  });

  it('producer threads route by execution too: into each execution’s JSONL file (its ring) and to a sink on the owner’s thread, and flush by it', async () => {
    const dir = dirs.make('execution-routes');
    const all = JsonlEventSink.open(path.join(dir, 'all.jsonl'));
    const e1 = JsonlEventSink.open(path.join(dir, 'e1.jsonl'));
    const e2 = new RecordingSink('e2');
    const reg = new SessionRegistry();
    reg.registerSink('s', all);
    reg.registerSink('s', e1, { executionId: 'e1' });
    const handle = reg.handle();
    // Registered after the handle was made: reaches the producer as a route update.
    reg.registerSink('s', e2, { executionId: 'e2' });
    const script = path.join(dir, 'producer.mjs');
    fs.writeFileSync(
      script,
      `import { workerData, parentPort } from 'node:worker_threads';
import { connectRegistry } from '${RINGLOG_URL.href}';
const reg = connectRegistry(workerData.handle);
for (let n = 0; n < 300; n++) reg.emitEvent({ type: 'step', n, session_id: 's' }, { executionId: ['e1', 'e2', 'e3'][n % 3] });
await reg.flushSessionSinks('s', { executionId: 'e1' });
parentPort.postMessage('flushed');
reg.close();
`,
    );
    const w = new Worker(script, { workerData: { handle }, transferList: [handle.port] });
    await new Promise<void>((resolve, reject) => {
      w.on('message', () => resolve());
      w.on('error', reject);
    });
    // The producer's barrier over execution e1 covered e1's file: its lines are there already.
    const e1Lines = readLines(dir, 'e1.jsonl').lines;
    expect(e1Lines.map((l) => l.n)).toEqual(Array.from({ length: 100 }, (_, i) => i * 3));
    expect(e1Lines.every((l, i) => l.index === i && l.execution_id === 'e1')).toBe(true);
    await all.close();
    await e1.close();
    expect(readLines(dir, 'all.jsonl').lines.map((l) => l.execution_id)).toEqual(Array.from({ length: 300 }, (_, n) => ['e1', 'e2', 'e3'][n % 3]));
    expect(e2.events.map((e) => e.n)).toEqual(Array.from({ length: 100 }, (_, i) => i * 3 + 1));
    expect(e2.contexts.every((c) => c?.executionId === 'e2')).toBe(true);
  });
});

describe('default registry (module-level functions)', () => {
  it('registerSink / registerWildcardSink / emitEvent / flushSessionSinks / clearSessionSinks / flushAndClearSessionSinks', async () => {
    const sid = `default-registry-test-${process.pid}-${Date.now()}`;
    const s = new RecordingSink('s');
    const w = new RecordingSink('w');
    const wildcardsBefore = defaultRegistry.wildcardCount;
    const h = registerWildcardSink(w);
    try {
      registerSink(sid, s);
      expect(defaultRegistry.sessionSinkCount(sid)).toBe(1);
      emitEvent({ type: 'one', session_id: sid });
      emitEvent({ type: 'wild-only' });
      await flushSessionSinks(sid);
      expect(s.types()).toEqual(['one']);
      expect(w.types()).toEqual(['one', 'wild-only']);
      expect([s.flushed, w.flushed]).toEqual([1, 1]);

      clearSessionSinks(sid);
      expect(defaultRegistry.sessionSinkCount(sid)).toBe(0);
      registerSink(sid, s);
      emitEvent({ type: 'two', session_id: sid });
      await flushAndClearSessionSinks(sid);
      expect(s.types()).toEqual(['one', 'two']);
      expect(s.flushed).toBe(2);
      expect(defaultRegistry.sessionSinkCount(sid)).toBe(0);
    } finally {
      clearSessionSinks(sid);
      expect(unregisterWildcardSink(h)).toBe(true);
    }
    expect(unregisterWildcardSink(h)).toBe(false);
    expect(defaultRegistry.wildcardCount).toBe(wildcardsBefore);
  });
});

// ---------------------------------------------------------------------------------------------
// Producer handles across real worker threads.

const PRODUCERS = 8;
const PER_PRODUCER = 5000;
const SESSION = 'concurrent-session';

const WORKER_SOURCE = `
import { workerData, parentPort } from 'node:worker_threads';
import { connectRegistry, connectSink } from '%RINGLOG%';
const { mode, handle, producer, count, sessionId } = workerData;
if (mode === 'registry') {
  const reg = connectRegistry(handle);
  for (let seq = 0; seq < count; seq++) {
    reg.emitEvent({ type: 'work', producer, seq, session_id: sessionId, payload: 'p'.repeat(seq % 50) });
  }
  await reg.flushSessionSinks(sessionId);
} else {
  const sink = connectSink(handle);
  for (let seq = 0; seq < count; seq++) {
    sink.handleEvent({ type: 'work', producer, seq, session_id: sessionId, payload: 'p'.repeat(seq % 50) }, { frameDepth: producer });
  }
  await sink.flush();
}
parentPort.postMessage({ done: producer });
`;

/** Runs one worker per handle; resolves once every worker reported done and exited with code 0. */
async function runProducers(mode: 'registry' | 'sink', handles: readonly ProducerHandle[]): Promise<void> {
  const dir = dirs.make('producers');
  const script = path.join(dir, 'producer.mjs');
  fs.writeFileSync(script, WORKER_SOURCE.replaceAll('%RINGLOG%', RINGLOG_URL.href));
  const runs = handles.map(
    (handle, producer) =>
      new Promise<void>((resolve, reject) => {
        const w = new Worker(script, {
          workerData: { mode, handle, producer, count: PER_PRODUCER, sessionId: SESSION },
          transferList: [handle.port],
        });
        let done = false;
        w.on('message', (m: { done?: number }) => {
          if (m.done === producer) done = true;
        });
        w.on('error', reject);
        w.on('exit', (code) => {
          if (code === 0 && done) resolve();
          else reject(new Error(`producer ${producer} exited with code ${code} (done: ${done})`));
        });
      }),
  );
  await Promise.all(runs);
}

/** Every producer's events exactly once, indexes gap-free from 0, each producer's seqs increasing. */
function checkProducerLines(lines: readonly Line[]): void {
  const total = PRODUCERS * PER_PRODUCER;
  expect(lines).toHaveLength(total);
  let badIndex = -1;
  const nextSeq = new Array<number>(PRODUCERS).fill(0);
  const problems: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (badIndex < 0 && l.index !== i) badIndex = i;
    const p = l.producer as number;
    const seq = l.seq as number;
    if (!Number.isInteger(p) || p < 0 || p >= PRODUCERS) {
      if (problems.length < 5) problems.push(`line ${i}: bad producer ${String(p)}`);
      continue;
    }
    // Each producer's seqs arrive as 0, 1, 2, …: in order, none lost, none twice.
    if (seq !== nextSeq[p] && problems.length < 5) problems.push(`line ${i}: producer ${p} seq ${seq}, expected ${nextSeq[p]}`);
    nextSeq[p] = seq + 1;
    if (l.session_id !== SESSION && problems.length < 5) problems.push(`line ${i}: session_id ${String(l.session_id)}`);
    if (l.payload !== 'p'.repeat(seq % 50) && problems.length < 5) problems.push(`line ${i}: wrong payload`);
  }
  expect(badIndex).toBe(-1);
  expect(problems).toEqual([]);
  expect(nextSeq).toEqual(new Array<number>(PRODUCERS).fill(PER_PRODUCER));
}

describe('producer handles: 8 worker threads into one sink', () => {
  it(`through registry.handle() + connectRegistry: ${PRODUCERS} × ${PER_PRODUCER} events reach the session sink and the wildcard sink`, async () => {
    const dir = dirs.make('registry-producers');
    const reg = new SessionRegistry();
    const session = JsonlEventSink.open(path.join(dir, 'session.jsonl'));
    const wild = JsonlEventSink.open(path.join(dir, 'wild.jsonl'));
    reg.registerSink(SESSION, session);
    reg.registerWildcardSink(wild);
    const handles = Array.from({ length: PRODUCERS }, () => reg.handle());
    await runProducers('registry', handles);

    // Each producer's barrier already covered its events: both files are complete before close.
    const total = PRODUCERS * PER_PRODUCER;
    expect(readLines(dir, 'session.jsonl').lines).toHaveLength(total);
    expect(readLines(dir, 'wild.jsonl').lines).toHaveLength(total);
    await reg.flushAndClearSessionSinks(SESSION);
    await session.close();
    await wild.close();

    const s = readLines(dir, 'session.jsonl').lines;
    const w = readLines(dir, 'wild.jsonl').lines;
    // Each sink on its own: gap-free, each producer in its order. Producers claim each ring
    // separately, so how two threads' events interleave may differ between the two files.
    checkProducerLines(s);
    checkProducerLines(w);
  });

  it(`through sinkHandle() + connectSink: ${PRODUCERS} × ${PER_PRODUCER} events reach the JSONL sink`, async () => {
    const dir = dirs.make('sink-producers');
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'));
    const handles = Array.from({ length: PRODUCERS }, () => sinkHandle(sink));
    await runProducers('sink', handles);
    expect(readLines(dir, 'events.jsonl').lines).toHaveLength(PRODUCERS * PER_PRODUCER);
    await sink.close();
    const lines = readLines(dir, 'events.jsonl').lines;
    checkProducerLines(lines);
    // The context crossed the thread boundary with the event.
    expect(lines.every((l) => l.frame_depth === l.producer)).toBe(true);
  });
});

// A producer thread driven step by step through a shared Int32Array `gate` (the owner's loop need
// not turn for it): it waits for gate[0] to reach each step number, runs that step, then sets
// gate[1] to it. Steps: emit `count` events for `session` (one per n), or flush.
const STEPPER = `
import { workerData, parentPort } from 'node:worker_threads';
import { connectRegistry, connectSink } from '%RINGLOG%';
const { handle, gate: gateSab, steps, through } = workerData;
const gate = new Int32Array(gateSab);
const out = through === 'registry' ? connectRegistry(handle) : connectSink(handle);
const errors = [];
for (let i = 0; i < steps.length; i++) {
  while (Atomics.load(gate, 0) < i + 1) Atomics.wait(gate, 0, Atomics.load(gate, 0), 1000);
  const st = steps[i];
  if (st.kind === 'emit') {
    for (let n = 0; n < st.count; n++) {
      const ev = { type: st.type, n, session_id: st.session, pad: 'x'.repeat(st.pad ?? 0) };
      if (through === 'registry') out.emitEvent(ev); else out.handleEvent(ev);
    }
  } else {
    try { await out.flush(); } catch (err) { errors.push({ code: err.code, droppedEvents: err.droppedEvents }); }
  }
  Atomics.store(gate, 1, i + 1);
  Atomics.notify(gate, 1);
}
parentPort.postMessage({ errors });
`;

type Step = { kind: 'emit'; type: string; session: string; count: number; pad?: number } | { kind: 'flush' };

/** Starts a STEPPER thread; step(n) lets it run step n and waits (blocking this thread) until it has. */
function stepper(handle: ProducerHandle, steps: readonly Step[], through: 'registry' | 'sink') {
  const dir = dirs.make('stepper');
  const script = path.join(dir, 'stepper.mjs');
  fs.writeFileSync(script, STEPPER.replaceAll('%RINGLOG%', RINGLOG_URL.href));
  const gate = new Int32Array(new SharedArrayBuffer(8));
  const w = new Worker(script, { workerData: { handle, gate: gate.buffer, steps, through }, transferList: [handle.port] });
  let report: { errors: { code: string; droppedEvents: number }[] } | undefined;
  const ended = new Promise<void>((resolve, reject) => {
    w.on('message', (m: typeof report) => (report = m));
    w.on('error', reject);
    w.on('exit', () => resolve());
  });
  return {
    /** Blocks this thread (its loop does not turn) until the producer has run step n (from 1). */
    stepBlocking(n: number): void {
      Atomics.store(gate, 0, n);
      Atomics.notify(gate, 0);
      const deadline = Date.now() + 60_000;
      while (Atomics.load(gate, 1) < n) {
        if (Date.now() > deadline) throw new Error(`the producer did not finish step ${n}`);
        Atomics.wait(gate, 1, Atomics.load(gate, 1), 100);
      }
    },
    /** Lets it run step n and waits without blocking (a flush needs this thread's loop). */
    async step(n: number): Promise<void> {
      Atomics.store(gate, 0, n);
      Atomics.notify(gate, 0);
      for (let waited = 0; Atomics.load(gate, 1) < n; waited += 5) {
        if (waited > 60_000) throw new Error(`the producer did not finish step ${n}`);
        await tick(5);
      }
    },
    async report() {
      await ended;
      return report;
    },
  };
}

/** Lines in `file` once there are `count` of them, waiting with this thread blocked (no loop turn). */
function linesBlocking(file: string, count: number): number {
  const nap = new Int32Array(new SharedArrayBuffer(4));
  let n = 0;
  for (const deadline = Date.now() + 60_000; Date.now() < deadline; Atomics.wait(nap, 0, 0, 10)) {
    n = fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').length - 1 : 0;
    if (n >= count) break;
  }
  return n;
}

describe('registry handles write into JsonlEventSinks themselves', () => {
  it.each(['registry', 'sink'] as const)('through a %s handle, events reach the file while the owner’s thread is blocked: no postMessage, no turn of its loop', async (through) => {
    const dir = dirs.make(`direct-${through}`);
    const file = path.join(dir, 'events.jsonl');
    const sink = JsonlEventSink.open(file);
    const reg = new SessionRegistry();
    reg.registerSink('s1', sink);
    const p = stepper(through === 'registry' ? reg.handle() : sinkHandle(sink), [{ kind: 'emit', type: 'w', session: 's1', count: 3000 }], through);
    p.stepBlocking(1);
    expect(linesBlocking(file, 3000)).toBe(3000);
    await p.report();
    await sink.close();
    const lines = readLines(dir, 'events.jsonl').lines;
    expect(lines.map((l) => l.n)).toEqual(Array.from({ length: 3000 }, (_, n) => n));
    expect(lines.every((l, i) => l.index === i && l.session_id === 's1')).toBe(true);
  });

  it('routes follow the registry: a sink registered after the handle was made gets the producer’s later events, a cleared session none, and a sink served on the owner’s thread gets each event once', async () => {
    const dir = dirs.make('direct-routes');
    const a = JsonlEventSink.open(path.join(dir, 'a.jsonl'));
    const b = JsonlEventSink.open(path.join(dir, 'b.jsonl'));
    const rec = new RecordingSink('rec');
    const reg = new SessionRegistry();
    reg.registerSink('s', a);
    const p = stepper(
      reg.handle(),
      [
        { kind: 'emit', type: 'one', session: 's', count: 100 },
        { kind: 'emit', type: 'two', session: 's', count: 100 },
        { kind: 'emit', type: 'three', session: 's', count: 100 },
        { kind: 'flush' },
      ],
      'registry',
    );
    p.stepBlocking(1);
    // Registered while the producer runs: its next emit (step 2) must see it, loop turn or not.
    reg.registerSink('s', b);
    reg.registerSink('s', rec);
    p.stepBlocking(2);
    reg.clearSessionSinks('s');
    p.stepBlocking(3);
    await p.step(4);
    expect((await p.report())?.errors).toEqual([]);
    await a.close();
    await b.close();
    const types = (f: string): (string | undefined)[] => readLines(dir, f).lines.map((l) => l.type as string);
    expect(types('a.jsonl')).toEqual([...new Array(100).fill('one'), ...new Array(100).fill('two')]);
    expect(types('b.jsonl')).toEqual(new Array(100).fill('two'));
    expect(rec.types()).toEqual(new Array(100).fill('two'));
  });

  it('a handle whose producer leaves routing changes unread (never connected, idle) stops being routed after 4,096 of them and posts instead: what piles up in its port stays bounded, nothing is lost', async () => {
    const dir = dirs.make('direct-stale');
    for (const [changes, direct] of [[100, true], [5000, false]] as const) {
      const reg = new SessionRegistry();
      const handle = reg.handle();
      const churn = new RecordingSink('churn');
      for (let i = 0; i < changes; i++) {
        reg.registerSink('x', churn);
        reg.clearSessionSinks('x');
      }
      const sink = JsonlEventSink.open(path.join(dir, `s${changes}.jsonl`));
      reg.registerSink('s', sink);
      // Connected here, on this thread: what it writes itself is accepted at the call; what it
      // posts only once this thread's loop has turned.
      const conn = connectRegistry(handle);
      try {
        for (let n = 0; n < 10; n++) conn.emitEvent({ type: 'late', n, session_id: 's' });
        expect(sink.stats().accepted, `${changes} changes`).toBe(direct ? 10 : 0);
        await within(conn.flushSessionSinks('s'), 30_000, 'flush');
      } finally {
        conn.close();
      }
      await sink.close();
      expect(readLines(dir, `s${changes}.jsonl`).lines.map((l) => l.n)).toEqual(Array.from({ length: 10 }, (_, n) => n));
    }
  });

  it('a producer’s barrier covers a sink its events were routed to even if the owner unregistered it before they arrived', async () => {
    const reg = new SessionRegistry();
    const rec = new RecordingSink('rec');
    reg.registerSink('s', rec);
    const conn = connectRegistry(reg.handle());
    try {
      conn.emitEvent({ type: 'routed', session_id: 's' });
      // Before this thread's loop turns, so before the event reaches the owner's side.
      reg.clearSessionSinks('s');
      await within(conn.flushSessionSinks('s'), 30_000, 'flush');
      expect(rec.types()).toEqual(['routed']);
      expect(rec.flushed).toBe(1);
      // The next barrier no longer covers it: nothing of this producer's went to it since.
      await within(conn.flushSessionSinks('s'), 30_000, 'second flush');
      expect(rec.flushed).toBe(1);
    } finally {
      conn.close();
    }
  });

  it('an event whose session_id getter throws: emitEvent does not throw, the event is counted lost by the next flush, the others go through', async () => {
    const dir = dirs.make('direct-getter');
    const reg = new SessionRegistry();
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'));
    reg.registerWildcardSink(sink);
    const conn = connectRegistry(reg.handle());
    try {
      const hostile = Object.defineProperty({ type: 'hostile' }, 'session_id', {
        get() {
          throw new Error('no session here');
        },
        enumerable: true,
      });
      expect(() => conn.emitEvent(hostile)).not.toThrow();
      conn.emitEvent({ type: 'fine' });
      const err = await sinkFailure(() => within(conn.flush(), 30_000, 'flush'));
      expect(err.code).toBe(ErrorCode.DROPPED);
      expect(err.droppedEvents).toBe(1);
      expect(err.message).toMatch(/session_id could not be read: no session here/);
    } finally {
      conn.close();
    }
    await sink.close();
    expect(readLines(dir, 'events.jsonl').lines.map((l) => l.type)).toEqual(['fine']);
  });

  it('an event too big for a sink’s ring goes to that sink through the owner, whole and once; the others in the route write it themselves', async () => {
    const dir = dirs.make('direct-big');
    const small = JsonlEventSink.open(path.join(dir, 'small.jsonl'), { ringBytes: 64 * 1024 });
    const large = JsonlEventSink.open(path.join(dir, 'large.jsonl'));
    const reg = new SessionRegistry();
    reg.registerSink('s', small);
    reg.registerWildcardSink(large);
    const p = stepper(reg.handle(), [{ kind: 'emit', type: 'big', session: 's', count: 3, pad: 40_000 }, { kind: 'flush' }], 'registry');
    await p.step(1);
    await p.step(2);
    expect((await p.report())?.errors).toEqual([]);
    await small.close();
    await large.close();
    for (const f of ['small.jsonl', 'large.jsonl']) {
      const lines = readLines(dir, f).lines;
      expect(lines.map((l) => [l.index, l.n, (l.pad as string).length])).toEqual([0, 1, 2].map((n) => [n, n, 40_000]));
    }
  });
});

describe('producer handles: edge cases', () => {
  it('an event postMessage cannot clone (a function property) still arrives, as JSON (the function dropped)', async () => {
    const rec = new RecordingSink('rec');
    const handle = sinkHandle(rec);
    const conn = connectSink(handle);
    try {
      conn.handleEvent({ type: 'with-fn', n: 1, fn: () => 'not cloneable', nested: { ok: true, m: () => 0 } }, { frameDepth: 4 });
      conn.handleEvent({ type: 'plain', n: 2 });
      await within(conn.flush(), 30_000, 'flush');
      expect(rec.events).toEqual([{ type: 'with-fn', n: 1, nested: { ok: true } }, { type: 'plain', n: 2 }]);
      expect(rec.contexts).toEqual([{ frameDepth: 4 }, undefined]);
      expect(rec.flushed).toBe(1);
    } finally {
      conn.close();
    }
  });

  it('an event neither postMessage nor JSON can carry is reported as dropped by the next flush', async () => {
    const rec = new RecordingSink('rec');
    const conn = connectSink(sinkHandle(rec));
    try {
      conn.handleEvent({ type: 'hopeless', fn: () => 1, big: 10n });
      conn.handleEvent({ type: 'fine' });
      const err = await sinkFailure(() => within(conn.flush(), 30_000, 'flush'));
      expect(err.code).toBe(ErrorCode.DROPPED);
      expect(err.droppedEvents).toBe(1);
      expect(rec.types()).toEqual(['fine']);
      await expect(within(conn.flush(), 30_000, 'second flush')).resolves.toBeUndefined();
    } finally {
      conn.close();
    }
  });

  it('a connected sink’s flush rejects with a SinkError when the owner’s sink flush fails', async () => {
    const errOwner = new SinkError('ringlog: owner sink lost events', { sink: 'owner-sink', code: ErrorCode.WRITE, droppedEvents: 6 });
    const failing = new RecordingSink('owner-sink', () => Promise.reject(errOwner));
    const conn = connectSink(sinkHandle(failing));
    const plainFailing = new RecordingSink('plain-owner', () => Promise.reject(new Error('disk gone')));
    const conn2 = connectSink(sinkHandle(plainFailing));
    try {
      conn.handleEvent({ type: 'x' });
      const err = await sinkFailure(() => within(conn.flush(), 30_000, 'flush'));
      expect(err.message).toBe(errOwner.message);
      expect(err.sink).toBe('owner-sink');
      expect(err.code).toBe(ErrorCode.WRITE);
      expect(err.droppedEvents).toBe(6);
      expect(failing.types()).toEqual(['x']);

      const err2 = await sinkFailure(() => within(conn2.flush(), 30_000, 'flush'));
      expect(err2.code).toBe(ErrorCode.SINK);
      expect(err2.sink).toBe('plain-owner');
      expect(err2.message).toContain('disk gone');
    } finally {
      conn.close();
      conn2.close();
    }
  });

  it('a connected registry’s flushSessionSinks rejects with a SinkError when a session sink’s flush fails', async () => {
    const reg = new SessionRegistry();
    const errOwner = new SinkError('ringlog: session sink lost events', { sink: 'sess', code: ErrorCode.DROPPED, droppedEvents: 2 });
    const failing = new RecordingSink('sess', () => Promise.reject(errOwner));
    const fine = new RecordingSink('fine');
    reg.registerSink('bad', failing);
    reg.registerSink('good', fine);
    const conn = connectRegistry(reg.handle());
    try {
      conn.emitEvent({ type: 'g', session_id: 'good' });
      await within(conn.flushSessionSinks('good'), 30_000, 'good flush');
      expect(fine.types()).toEqual(['g']);
      conn.emitEvent({ type: 'b', session_id: 'bad' });
      const err = await sinkFailure(() => within(conn.flushSessionSinks('bad'), 30_000, 'bad flush'));
      expect(err.code).toBe(ErrorCode.DROPPED);
      expect(err.sink).toBe('sess');
      expect(err.droppedEvents).toBe(2);
      expect(failing.types()).toEqual(['b']);
      // flush() without a session covers every sink of the registry, the failing one included.
      expect(await failure(() => within(conn.flush(), 30_000, 'flush all'))).toBeInstanceOf(SinkError);
    } finally {
      conn.close();
    }
  });

  it('connectSink / connectRegistry reject what is not a handle of their kind with a TypeError', () => {
    const regHandle = new SessionRegistry().handle();
    const sHandle = sinkHandle(new RecordingSink('x'));
    try {
      for (const bad of [undefined, null, 42, 'handle', {}, { kind: 'ringlog.sink' }, regHandle]) {
        expect(() => connectSink(bad as unknown as ProducerHandle), String(bad)).toThrow(TypeError);
      }
      expect(() => connectRegistry(sHandle)).toThrow(TypeError);
      expect(() => connectRegistry({} as ProducerHandle)).toThrow(TypeError);
      expect(() => sinkHandle({} as AgentEventSink)).toThrow(TypeError);
    } finally {
      regHandle.port.close();
      sHandle.port.close();
    }
  });

  // The owner's sink is user code: when it throws (from handleEvent, or from flush before returning
  // a promise), the owner's thread must survive and the producer's barrier must settle with a
  // SinkError, as in MultiSink and the registry. Each runs in a child process, so a crash or an
  // uncaught exception in the owner is observable instead of taking the test runner down.
  const OWNER_CHILD = `
    import { sinkHandle, connectSink } from '%RINGLOG%';
    let uncaught = 0;
    process.on('uncaughtException', () => { uncaught++; });
    // A liveness bound: 'hung' means the barrier never settled.
    const settle = (p) => Promise.race([
      p.then(() => ({ settled: 'resolved' }), (e) => ({ settled: 'rejected', name: e?.name, code: e?.code, dropped: e?.droppedEvents })),
      new Promise((r) => setTimeout(() => r({ settled: 'hung' }), 15000)),
    ]);
    const got = [];
    const sinks = {
      handler: { handleEvent(e) { if (e.type === 'bad') throw new Error('boom'); got.push(e.type); }, flush: () => Promise.resolve() },
      syncFlush: { handleEvent(e) { got.push(e.type); }, flush() { throw new Error('sync flush failure'); } },
    };
    const conn = connectSink(sinkHandle(sinks[process.argv[2]]));
    conn.handleEvent({ type: 'bad' });
    conn.handleEvent({ type: 'good' });
    const result = await settle(conn.flush());
    conn.close();
    console.log(JSON.stringify({ result, got, uncaught }));
    process.exit(0);
  `;
  interface OwnerChildResult {
    result: { settled: string; name?: string; code?: string; dropped?: number };
    got: string[];
    uncaught: number;
  }

  it('an owner sink throwing from handleEvent: the owner survives, the other events arrive, the producer’s flush reports the loss', async () => {
    const r = await runChild(OWNER_CHILD, ['handler'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<OwnerChildResult>(r);
    expect(out.got).toEqual(['good']);
    expect(out.uncaught, 'uncaught exceptions in the owner thread').toBe(0);
    expect(out.result).toEqual({ settled: 'rejected', name: 'SinkError', code: 'ERR_RINGLOG_SINK', dropped: 1 });
  });

  it('an owner sink whose flush throws synchronously: the producer’s flush rejects instead of hanging', async () => {
    const r = await runChild(OWNER_CHILD, ['syncFlush'], { timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<OwnerChildResult>(r);
    expect(out.got).toEqual(['bad', 'good']);
    expect(out.uncaught, 'uncaught exceptions in the owner thread').toBe(0);
    expect(out.result).toMatchObject({ settled: 'rejected', name: 'SinkError', code: 'ERR_RINGLOG_SINK' });
  });
});

// A child whose producer threads log through handles, then the process ends in the way named by
// argv[3]; the owner's side of a handle does not keep the process alive, so whatever the producers
// sent must be delivered at the end. Producers post as fast as they can; no barrier is awaited.
const ENDING_PRODUCERS = `
import { Worker } from 'node:worker_threads';
import { JsonlEventSink, sinkHandle, SessionRegistry } from '%RINGLOG%';
const [dir, how, through] = process.argv.slice(2);
const sink = JsonlEventSink.open(dir + '/event_log.jsonl');
const registry = new SessionRegistry();
registry.registerSink('s', sink);
const PER = 20000;
const producer = (i, crash) => {
  const handle = through === 'registry' ? registry.handle() : sinkHandle(sink);
  return new Worker(\`
    const { workerData } = require('node:worker_threads');
    import(workerData.lib).then(({ connectSink, connectRegistry }) => {
      const out = workerData.through === 'registry' ? connectRegistry(workerData.handle) : connectSink(workerData.handle);
      for (let n = 0; n < workerData.per; n++) {
        const ev = { type: 'p', producer: workerData.i, n, session_id: 's' };
        if (workerData.through === 'registry') out.emitEvent(ev); else out.handleEvent(ev);
      }
      if (workerData.crash) throw new Error('producer crashed after logging');
    });\`, { eval: true, workerData: { lib: '%RINGLOG%', handle, per: PER, i, crash, through }, transferList: [handle.port] });
};
const workers = [producer(0, how === 'crash'), producer(1, false)];
let exited = 0;
for (const w of workers) {
  w.on('error', () => {});
  w.on('exit', () => {
    if (++exited < workers.length) return;
    if (how === 'exit') process.exit(3);
    if (how === 'sigterm') {
      // Signal handles do not keep a loop alive: a live process is what a signal ends.
      setInterval(() => {}, 1000);
      process.kill(process.pid, 'SIGTERM');
    }
    // 'natural' and 'crash': nothing more to do; the loop runs dry and the process ends.
  });
}
`;

describe('producer handles: every event sent is written, however the process ends', () => {
  const cases = [
    ['natural', 'sink', 0],
    ['exit', 'sink', 3],
    ['crash', 'sink', 0],
    ['sigterm', 'sink', null],
    ['natural', 'registry', 0],
    ['exit', 'registry', 3],
    ['crash', 'registry', 0],
    ['sigterm', 'registry', null],
  ] as const;
  it.each(cases)('the process ends by %s, events through a %s handle: 2 × 20,000 events, gap-free, each producer in its order', async (how, through, code) => {
    const dir = dirs.make(`ending-${how}-${through}`);
    const r = await runChild(ENDING_PRODUCERS, [dir, how, through]);
    expect(r.timedOut).toBe(false);
    if (code === null) expect(r.signal).toBe('SIGTERM');
    else expect(r.code, r.stderr).toBe(code);
    const { lines } = readLines(dir);
    expect(lines).toHaveLength(40_000);
    expect(lines.every((l, i) => l.index === i)).toBe(true);
    for (const p of [0, 1]) {
      const mine = lines.filter((l) => l.producer === p).map((l) => l.n);
      expect(mine).toEqual(Array.from({ length: 20_000 }, (_, n) => n));
    }
  });

  it.each(['registry', 'sink'] as const)('a producer still sending flat out through a %s handle when the process exits does not hold it: the end takes what it can for a bounded time, gap-free', async (through) => {
    const dir = dirs.make('ending-endless');
    const r = await runChild(
      `import { Worker } from 'node:worker_threads';
       import { JsonlEventSink, sinkHandle, SessionRegistry } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2] + '/event_log.jsonl');
       const registry = new SessionRegistry();
       registry.registerWildcardSink(sink);
       const handle = process.argv[3] === 'registry' ? registry.handle() : sinkHandle(sink);
       new Worker(\`
         const { workerData, parentPort } = require('node:worker_threads');
         import(workerData.lib).then(({ connectSink, connectRegistry }) => {
           const out = workerData.through === 'registry' ? connectRegistry(workerData.handle) : connectSink(workerData.handle);
           for (let n = 0; ; n++) {
             if (workerData.through === 'registry') out.emitEvent({ type: 'p', n }); else out.handleEvent({ type: 'p', n });
             if (n === 1000) parentPort.postMessage('under way');
           }
         });\`, { eval: true, workerData: { lib: '%RINGLOG%', handle, through: process.argv[3] }, transferList: [handle.port] })
         // Once it is under way however slowly the machine started it, the process ends mid-stream.
         .on('message', () => setTimeout(() => process.exit(0), 100));`,
      [dir, through],
    );
    expect(r.timedOut).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    // Written straight into the ring (a JsonlEventSink, through either handle), the final drain
    // shuts the ring to producers first, so everything placed before is written, nothing to say.
    expect(r.stderr).toBe('');
    const { lines } = readLines(dir);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every((l, i) => l.index === i && l.n === i)).toBe(true);
  });
});
