// EventLogSink: each event of a session appended to `observability.agent_events.<session>` as
// { kind: type | 'agent_event', payload: { index_hint, session_id, event }, headers: { session_id } },
// off the caller's path, in order, redacted; flush() is a barrier whose failure (first error,
// events dropped) stays visible.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, EventLogErrorCode, EventLogSink, SinkError, openEventLog, type BackendName, type EventLog, type LogEvent, type NewLogEvent, type TopicLike } from '../dist/src/index.js';
import { tempDirs } from './helpers.js';

const dirs = tempDirs();
const opened: EventLog[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
  dirs.cleanup();
});

async function logFor(backend: BackendName, dir = dirs.make(`sink-${backend}`)): Promise<EventLog> {
  const log = await openEventLog({ backend, dir });
  opened.push(log);
  return log;
}

async function readAll(log: EventLog, topic: TopicLike): Promise<LogEvent[]> {
  const out: LogEvent[] = [];
  for (;;) {
    const page = await log.readRange(topic, out.at(-1)?.id ?? 0, 1000);
    if (page.length === 0) return out;
    out.push(...page);
  }
}

/** Every byte the backend keeps on disk under `dir`, as one string (to search for leaked secrets). */
function bytesOnDisk(dir: string): string {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => fs.readFileSync(path.join(d.parentPath, d.name)).toString('latin1'))
    .join('\n');
}

/**
 * A log of the user's own making, over a real memory log: appends can be made to fail, and calls are
 * counted. It exposes only the public EventLog methods, so the sink takes its generic path (JSON
 * payload through append()), not the pre-serialised one ringlog's own backends offer.
 */
function instrumented(inner: EventLog, failWhen: (n: number) => Error | undefined = () => undefined): EventLog & { readonly calls: number } {
  let calls = 0;
  return {
    backend: inner.backend,
    get calls() {
      return calls;
    },
    append(topic: TopicLike, event: NewLogEvent): Promise<number> {
      calls++;
      const err = failWhen(calls);
      return err === undefined ? inner.append(topic, event) : Promise.reject(err);
    },
    flush: () => inner.flush(),
    readRange: (topic, from, limit) => inner.readRange(topic, from, limit),
    subscribe: (topic, from, options) => inner.subscribe(topic, from, options),
    ack: (topic, consumer, upTo) => inner.ack(topic, consumer, upTo),
    consumerCursor: (topic, consumer) => inner.consumerCursor(topic, consumer),
    latest: (topic) => inner.latest(topic),
    topics: () => inner.topics(),
    appendIdempotent: (topic, header, value, event) => inner.appendIdempotent(topic, header, value, event),
    compact: (topic, before) => inner.compact(topic, before),
    describe: () => inner.describe(),
    close: () => inner.close(),
  };
}

describe('EventLogSink record shape', () => {
  it('appends to observability.agent_events.<sanitized session> with kind, payload and session header', async () => {
    const log = await logFor('memory');
    const sink = new EventLogSink(log, 'run 7/\u00e9');
    expect(sink.topic.name).toBe('observability.agent_events.run_7__');
    const before = Date.now();
    sink.handleEvent({ type: 'tool_call', tool: 'grep', args: { q: 'x' } });
    sink.handleEvent({ message: 'no type here' });
    sink.handleEvent({ type: '', n: 1 });
    await sink.flush();
    const after = Date.now();
    const got = await readAll(log, sink.topic);
    expect(got.map((e) => e.kind)).toEqual(['tool_call', 'agent_event', 'agent_event']);
    expect(got[0]!.payload).toEqual({ index_hint: got[0]!.occurred_at_ms, session_id: 'run 7/\u00e9', event: { type: 'tool_call', tool: 'grep', args: { q: 'x' } } });
    expect(got[1]!.payload).toMatchObject({ session_id: 'run 7/\u00e9', event: { message: 'no type here' } });
    for (const e of got) {
      expect(e.headers).toEqual({ session_id: 'run 7/\u00e9' });
      expect(e.occurred_at_ms).toBeGreaterThanOrEqual(before);
      expect(e.occurred_at_ms).toBeLessThanOrEqual(after);
    }
    expect(sink.stats()).toEqual({ accepted: 3, appended: 3, dropped: 0, projected: 0, rejected: 0, pending: 0, pendingChars: 0 });
  });

  it('an executionId in the context scopes the record: execution_id in its payload (after session_id) and its headers, on every path', async () => {
    const ours = await logFor('file');
    const mine = instrumented(await logFor('memory'));
    for (const log of [ours, mine]) {
      const sink = new EventLogSink(log, 's1');
      sink.handleEvent({ type: 'tool_call', n: 1 }, { executionId: 'exec-7', frameDepth: 3 });
      sink.handleEvent({ type: 'tool_call', n: 2 });
      await sink.flush();
      const [scoped, plain] = await readAll(log, sink.topic);
      expect(Object.keys(scoped!.payload as object)).toEqual(['index_hint', 'session_id', 'execution_id', 'event']);
      expect(scoped!.payload).toEqual({ index_hint: scoped!.occurred_at_ms, session_id: 's1', execution_id: 'exec-7', event: { type: 'tool_call', n: 1 } });
      expect(scoped!.headers).toEqual({ session_id: 's1', execution_id: 'exec-7' });
      expect(plain!.payload).toEqual({ index_hint: plain!.occurred_at_ms, session_id: 's1', event: { type: 'tool_call', n: 2 } });
      expect(plain!.headers).toEqual({ session_id: 's1' });
    }
  });

  it("any EventLog works: a log of the user's own gets the same records as ringlog's backends", async () => {
    const mine = instrumented(await logFor('memory'));
    const ours = await logFor('memory');
    const events = [{ type: 'tool_call', input: { url: 'https://u:p@h/x?sig=abc' }, n: 1 }, { plain: true, list: [1, 'a', null] }, { type: 'big', n: 10n }];
    const sinks = [new EventLogSink(mine, 's'), new EventLogSink(ours, 's')];
    for (const sink of sinks) for (const e of events) sink.handleEvent(e as never);
    await Promise.all(sinks.map((x) => x.flush()));
    const strip = (list: LogEvent[]): unknown[] => list.map((e) => ({ kind: e.kind, event: (e.payload as { event: unknown }).event, headers: e.headers }));
    const a = await readAll(mine, sinks[0]!.topic);
    expect(mine.calls).toBe(3);
    expect(strip(a)).toEqual(strip(await readAll(ours, sinks[1]!.topic)));
    expect((a[0]!.payload as { event: unknown }).event).toEqual({ type: 'tool_call', input: { url: 'https://[redacted]@h/x?sig=[redacted]' }, n: 1 });
  });

  it('handleEvent never calls the log: appends happen later, off the caller path', async () => {
    const log = instrumented(await logFor('memory'));
    const sink = new EventLogSink(log, 's');
    for (let i = 0; i < 100; i++) sink.handleEvent({ type: 't', i });
    expect(log.calls).toBe(0);
    expect(await log.latest(sink.topic)).toBeNull();
    await sink.flush();
    expect(log.calls).toBe(100);
    expect(await log.latest(sink.topic)).toBe(100);
  });

  it('a long queue goes to the log in slices, one per turn of the event loop', async () => {
    const log = await logFor('memory');
    const sink = new EventLogSink(log, 's');
    for (let i = 0; i < 5000; i++) sink.handleEvent({ type: 't', i });
    await new Promise((r) => setImmediate(r));
    // One turn: the first slice only; the loop got control back with most of the queue still waiting.
    expect(await log.latest(sink.topic)).toBe(1024);
    await sink.flush();
    expect(await log.latest(sink.topic)).toBe(5000);
  });

  it('snapshots the event at the call: later mutation is not seen', async () => {
    const log = await logFor('memory');
    const sink = new EventLogSink(log, 's');
    const event = { type: 't', list: [1] };
    sink.handleEvent(event);
    event.list.push(2);
    event.type = 'changed';
    await sink.flush();
    expect((await readAll(log, sink.topic))[0]).toMatchObject({ kind: 't', payload: { event: { type: 't', list: [1] } } });
  });

  it('values JSON cannot carry: BigInt as digits, cycles as "[Circular]", throwing getters as an event_rejected record', async () => {
    const log = await logFor('memory');
    const sink = new EventLogSink(log, 's');
    const cyclic: Record<string, unknown> = { type: 'cyc' };
    cyclic.self = cyclic;
    sink.handleEvent({ type: 'big', n: 12345678901234567890n });
    sink.handleEvent(cyclic);
    sink.handleEvent({
      type: 'bad',
      get boom(): never {
        throw new Error('getter exploded');
      },
    });
    sink.handleEvent(null as never);
    sink.handleEvent('a string' as never);
    await sink.flush();
    const got = await readAll(log, sink.topic);
    expect(got.map((e) => e.kind)).toEqual(['big', 'cyc', 'event_rejected', 'event_rejected', 'event_rejected']);
    expect((got[0]!.payload as { event: unknown }).event).toEqual({ type: 'big', n: '12345678901234567890' });
    expect((got[1]!.payload as { event: unknown }).event).toEqual({ type: 'cyc', self: '[Circular]' });
    expect((got[2]!.payload as { event: unknown }).event).toEqual({ type: 'event_rejected', reason: 'getter exploded' });
    expect((got[3]!.payload as { event: { reason: string } }).event.reason).toMatch(/null/);
    expect(sink.stats()).toMatchObject({ accepted: 5, appended: 5, rejected: 3, dropped: 0 });
  });

  it('rejects a bad log, session id or option synchronously', async () => {
    const log = await logFor('memory');
    expect(() => new EventLogSink({} as never, 's')).toThrow(TypeError);
    expect(() => new EventLogSink(log, 5 as never)).toThrow(TypeError);
    expect(() => new EventLogSink(log, 'x'.repeat(300))).toThrow(RangeError);
    expect(() => new EventLogSink(log, 's', { maxPendingChars: 0 })).toThrow(RangeError);
    expect(() => new EventLogSink(log, 's', { bogus: true } as never)).toThrow(/unknown EventLogSink option 'bogus'/);
    expect(() => new EventLogSink(log, 's', { redact: 'yes' as never })).toThrow(TypeError);
  });
});

describe.each(['memory', 'file', 'sqlite'] as const)('EventLogSink over the %s backend', (backend) => {
  it('appends every event in handleEvent order; flush is a barrier', async () => {
    const log = await logFor(backend);
    const sink = new EventLogSink(log, 'session-1');
    for (let i = 0; i < 3000; i++) {
      sink.handleEvent({ type: i % 2 === 0 ? 'model_turn' : 'tool_call', seq: i });
      if (i % 500 === 0) await new Promise((r) => setImmediate(r));
    }
    await sink.flush();
    const got = await readAll(log, sink.topic);
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(got.map((e) => (e.payload as { event: { seq: number } }).event.seq)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(sink.stats()).toMatchObject({ accepted: 3000, appended: 3000, pending: 0 });
  });

  it('secrets in tool inputs, outputs and nested URLs never reach storage; other data is unchanged', async () => {
    const dir = dirs.make(`redact-${backend}`);
    const log = await logFor(backend, dir);
    const sink = new EventLogSink(log, 'secure');
    sink.handleEvent({
      type: 'tool_call',
      input: { headers: { Authorization: 'Bearer sk-live-SECRET1' }, url: 'https://alice:SECRET2@api.example.com/v1?access_token=SECRET3&page=2', api_key: 'SECRET4' },
    });
    sink.handleEvent({ type: 'tool_result', output: { nested: [{ link: 'see https://cdn.example.com/f?sig=SECRET5&x=1 now' }], client_secret: { value: 'SECRET6' } } });
    const plain = { type: 'model_turn', max_tokens: 512, input_tokens: 40, text: 'no secrets, a=b and https://example.com/x?page=1' };
    sink.handleEvent(plain);
    await sink.flush();
    await log.flush();
    const got = await readAll(log, sink.topic);
    const all = JSON.stringify(got);
    for (let i = 1; i <= 6; i++) expect(all).not.toContain(`SECRET${i}`);
    expect((got[0]!.payload as { event: unknown }).event).toEqual({
      type: 'tool_call',
      input: { headers: { Authorization: '[redacted]' }, url: 'https://[redacted]@api.example.com/v1?access_token=[redacted]&page=2', api_key: '[redacted]' },
    });
    expect((got[2]!.payload as { event: unknown }).event).toEqual(plain);
    if (backend !== 'memory') {
      const disk = bytesOnDisk(dir);
      expect(disk).toContain('model_turn');
      for (let i = 1; i <= 6; i++) expect(disk).not.toContain(`SECRET${i}`);
    }
  });
});

describe('EventLogSink redaction options', () => {
  it('redact: false appends secrets as they are; extra keys and patterns apply', async () => {
    const log = await logFor('memory');
    const open = new EventLogSink(log, 'a', { redact: false });
    const strict = new EventLogSink(log, 'b', { redact: { keys: ['ssn'], patterns: [/\b\d{4}-\d{4}-\d{4}-\d{4}\b/] } });
    const ev = { type: 't', password: 'hunter2', ssn: '123-45-6789', note: 'card 4111-1111-1111-1111 on file' };
    open.handleEvent(ev);
    strict.handleEvent(ev);
    await Promise.all([open.flush(), strict.flush()]);
    expect(((await readAll(log, open.topic))[0]!.payload as { event: unknown }).event).toEqual(ev);
    expect(((await readAll(log, strict.topic))[0]!.payload as { event: unknown }).event).toEqual({ type: 't', password: '[redacted]', ssn: '[redacted]', note: 'card [redacted] on file' });
  });

  it('a custom function runs last on the event', async () => {
    const log = await logFor('memory');
    const sink = new EventLogSink(log, 'c', { redact: { custom: (e) => ({ ...e, user: 'anon' }) } });
    sink.handleEvent({ type: 't', user: 'alice@example.com', token: 'x' });
    await sink.flush();
    expect(((await readAll(log, sink.topic))[0]!.payload as { event: unknown }).event).toEqual({ type: 't', user: 'anon', token: '[redacted]' });
  });
});

describe('EventLogSink failures', () => {
  it('flush rejects with a SinkError carrying the first append error and the count dropped, and keeps reporting it', async () => {
    const inner = await logFor('memory');
    const log = instrumented(inner, (n) => (n % 3 === 0 ? new Error(`disk said no to append ${n}`) : undefined));
    const sink = new EventLogSink(log, 'f');
    for (let i = 0; i < 9; i++) sink.handleEvent({ type: 't', i });
    const err = await sink.flush().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(SinkError);
    expect(err).toMatchObject({ sink: 'event_log', code: ErrorCode.WRITE, droppedEvents: 3 });
    expect((err as Error).message).toMatch(/disk said no to append 3/);
    expect(((err as Error).cause as Error).message).toBe('disk said no to append 3');
    expect(await inner.latest(sink.topic)).toBe(6);
    // Sticky: a later flush with nothing new still reports, with the count so far.
    for (let i = 0; i < 3; i++) sink.handleEvent({ type: 't', i });
    await expect(sink.flush()).rejects.toMatchObject({ sink: 'event_log', droppedEvents: 4 });
    expect(sink.stats()).toMatchObject({ accepted: 12, appended: 8, dropped: 4, pending: 0 });
  });

  it('over a read-only log every event is dropped and flush says why', async () => {
    const dir = dirs.make('readonly');
    const rw = await logFor('file', dir);
    await rw.append('seed', { kind: 'k' });
    await rw.close();
    const ro = await openEventLog({ backend: 'file', dir, readOnly: true });
    opened.push(ro);
    const sink = new EventLogSink(ro, 'r');
    sink.handleEvent({ type: 't' });
    sink.handleEvent({ type: 't' });
    const err = (await sink.flush().catch((e: unknown) => e)) as SinkError;
    expect(err).toBeInstanceOf(SinkError);
    expect(err.droppedEvents).toBe(2);
    expect((err.cause as { code: string }).code).toBe(EventLogErrorCode.READ_ONLY);
  });

  it('beyond maxPendingChars events are dropped, counted and reported', async () => {
    const log = await logFor('memory');
    const sink = new EventLogSink(log, 'p', { maxPendingChars: 1000 });
    for (let i = 0; i < 50; i++) sink.handleEvent({ type: 't', pad: 'x'.repeat(80) });
    const err = (await sink.flush().catch((e: unknown) => e)) as SinkError;
    expect(err).toMatchObject({ code: ErrorCode.DROPPED, sink: 'event_log' });
    const kept = (await log.latest(sink.topic)) ?? 0;
    expect(kept).toBeGreaterThan(0);
    expect(err.droppedEvents).toBe(50 - kept);
    // The queue drained, so the sink accepts again.
    sink.handleEvent({ type: 'after' });
    await sink.flush().catch(() => undefined);
    expect(await log.latest(sink.topic)).toBe(kept + 1);
  });
});
