// The EventLog contract, one behavioural suite run against every backend (memory, file, SQLite,
// Redis on a real redis-server, Redis Cluster of three real masters), plus restarts of the
// persistent ones and openEventLog's options and environment variables.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { EventLogError, EventLogErrorCode, Topic, openEventLog, sanitizeTopicComponent, type EventLog, type EventLogOptions, type LogEvent } from '../dist/src/index.js';
import { removeDir, tempDir, tempDirs } from './helpers.js';
import { masterPortOf, startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../dist/bench/redis-server.js';

const dirs = tempDirs();
const opened: EventLog[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
  dirs.cleanup();
});

/** The servers live for the whole file; each log gets key prefix of its own (from its temp dir). */
const serverDir = tempDir('event-log-redis');
let redis: RedisServer;
let cluster: RedisCluster;
beforeAll(async () => {
  redis = await startRedis(path.join(serverDir, 'standalone'));
  cluster = await startRedisCluster(path.join(serverDir, 'cluster'));
}, 60_000);
afterAll(async () => {
  await Promise.allSettled([redis?.stop(), cluster?.stop()]);
  removeDir(serverDir);
});

type Contract = 'memory' | 'file' | 'sqlite' | 'redis' | 'redis-cluster';

function optionsFor(backend: Contract, dir: string): EventLogOptions {
  // The same dir gives the same prefix: a reopened log finds its keys again.
  const keyPrefix = `t:${path.basename(dir)}:`;
  if (backend === 'redis') return { backend: 'redis', url: redis.url, keyPrefix };
  if (backend === 'redis-cluster') return { backend: 'redis', url: cluster.url, cluster: true, keyPrefix };
  return { backend, dir };
}

async function open(backend: Contract, dir: string, extra: { queueDepth?: number } = {}): Promise<EventLog> {
  const log = await openEventLog({ ...optionsFor(backend, dir), ...extra });
  opened.push(log);
  return log;
}

async function freshLog(backend: Contract, extra: { queueDepth?: number } = {}): Promise<EventLog> {
  return open(backend, dirs.make(`event-log-${backend}`), extra);
}

function expectedLocation(backend: Contract, dir: string): string | null {
  switch (backend) {
    case 'memory':
      return null;
    case 'file':
      return path.resolve(dir);
    case 'sqlite':
      return path.join(path.resolve(dir), 'events.sqlite');
    case 'redis':
      return redis.url;
    case 'redis-cluster':
      return cluster.url;
  }
}

/** Collects `n` events from an iterator (fails the test if it ends first). */
async function take(it: AsyncIterator<LogEvent>, n: number): Promise<LogEvent[]> {
  const out: LogEvent[] = [];
  while (out.length < n) {
    const r = await it.next();
    if (r.done === true) throw new Error(`iterator ended after ${out.length} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(['memory', 'file', 'sqlite', 'redis', 'redis-cluster'] as const)('EventLog contract: %s backend', (backend) => {
  it('gives ids per topic from 1, gap-free, in call order, even for concurrent appends', async () => {
    const log = await freshLog(backend);
    const ids = await Promise.all(range(1, 300).map((i) => log.append('a.topic', { kind: 'k', payload: i })));
    expect(ids).toEqual(range(1, 300));
    expect(await log.append('other_topic', { kind: 'k' })).toBe(1);
    expect(await log.append('a.topic', { kind: 'k' })).toBe(301);
    const all = await log.readRange('a.topic', 0, 1000);
    expect(all.map((e) => e.id)).toEqual(range(1, 301));
    expect(all.slice(0, 300).map((e) => e.payload)).toEqual(range(1, 300));
  });

  it('stores kind, payload, headers and occurred_at_ms as given, with defaults, snapshotted at the call', async () => {
    const log = await freshLog(backend);
    const payload = { nested: { list: [1, 'two', null, true, { x: 1.5 }] }, text: 'line\nbreak "quoted" \u2028 \u{1F600}', empty: '' };
    const before = Date.now();
    const id = await log.append(new Topic('t-1'), { kind: 'tool_call', payload, headers: { session_id: 's1', 'x-odd key': 'v\u00e9' }, occurred_at_ms: 1700000000123 });
    const id2 = await log.append('t-1', { kind: 'bare' });
    const after = Date.now();
    payload.nested.list.push('mutated after append');
    const [e1, e2] = await log.readRange('t-1', null, 10);
    expect(e1).toEqual({ id, kind: 'tool_call', payload: { nested: { list: [1, 'two', null, true, { x: 1.5 }] }, text: 'line\nbreak "quoted" \u2028 \u{1F600}', empty: '' }, headers: { session_id: 's1', 'x-odd key': 'v\u00e9' }, occurred_at_ms: 1700000000123 });
    expect(e2!.id).toBe(id2);
    expect(e2!.payload).toBeNull();
    expect(e2!.headers).toEqual({});
    expect(e2!.occurred_at_ms).toBeGreaterThanOrEqual(before);
    expect(e2!.occurred_at_ms).toBeLessThanOrEqual(after);
  });

  it('round-trips a 1 MB payload and every JSON value type', async () => {
    const log = await freshLog(backend);
    const big = 'x'.repeat(1 << 20);
    for (const p of [big, 0, -1.25e-300, 'string', [], {}, false, [[[]]]]) await log.append('values', { kind: 'v', payload: p });
    const got = await log.readRange('values', 0, 100);
    expect(got.map((e) => e.payload)).toEqual([big, 0, -1.25e-300, 'string', [], {}, false, [[[]]]]);
  });

  it('readRange returns events strictly after `from`, at most `limit`', async () => {
    const log = await freshLog(backend);
    for (const i of range(1, 20)) await log.append('r', { kind: 'k', payload: i });
    expect((await log.readRange('r', 5, 3)).map((e) => e.id)).toEqual([6, 7, 8]);
    expect((await log.readRange('r', undefined, 2)).map((e) => e.id)).toEqual([1, 2]);
    expect((await log.readRange('r', 19, 100)).map((e) => e.id)).toEqual([20]);
    expect(await log.readRange('r', 20, 100)).toEqual([]);
    expect(await log.readRange('r', 1000, 100)).toEqual([]);
    expect(await log.readRange('never.written', 0, 100)).toEqual([]);
  });

  it('latest() is null for an unknown topic, then the last id', async () => {
    const log = await freshLog(backend);
    expect(await log.latest('x')).toBeNull();
    await log.append('x', { kind: 'k' });
    await log.append('x', { kind: 'k' });
    expect(await log.latest('x')).toBe(2);
  });

  it('rejects bad topics, events and arguments synchronously with TypeError/RangeError', async () => {
    const log = await freshLog(backend);
    for (const bad of ['', 'a b', 'a/b', 'caf\u00e9', 'tab\t', '..', 'x'.repeat(201)]) expect(() => log.append(bad, { kind: 'k' })).toThrow(RangeError);
    expect(() => new Topic('has:colon')).toThrow(/character ":" is not allowed/);
    expect(() => log.append('t', { kind: '' })).toThrow(TypeError);
    expect(() => log.append('t', null as never)).toThrow(TypeError);
    expect(() => log.append('t', { kind: 'k', payload: 1n })).toThrow(TypeError);
    expect(() => log.append('t', { kind: 'k', payload: () => 1 })).toThrow(TypeError);
    expect(() => log.append('t', { kind: 'k', headers: { a: 1 as never } })).toThrow(TypeError);
    expect(() => log.append('t', { kind: 'k', occurred_at_ms: 1.5 })).toThrow(TypeError);
    expect(() => log.readRange('t', -1, 10)).toThrow(RangeError);
    expect(() => log.readRange('t', 0, 0)).toThrow(RangeError);
    expect(() => log.readRange('t', 0.5, 10)).toThrow(RangeError);
    expect(() => log.ack('t', '', 1)).toThrow(TypeError);
    expect(() => log.ack('t', 'c', -1)).toThrow(RangeError);
    expect(() => log.compact('t', Number.NaN)).toThrow(RangeError);
    expect(() => log.subscribe('bad topic')).toThrow(RangeError);
    // Nothing was appended by the failed calls.
    expect(await log.latest('t')).toBeNull();
  });

  it('subscribe yields history then live events with no gap and no duplicate at the seam', async () => {
    const log = await freshLog(backend);
    for (const i of range(1, 700)) void log.append('s', { kind: 'k', payload: i });
    await log.flush();
    const it = log.subscribe('s', 0);
    // Appends race the subscriber's history reads and its switch to live delivery.
    const writer = (async () => {
      for (const i of range(701, 1500)) {
        await log.append('s', { kind: 'k', payload: i });
        if (i % 50 === 0) await new Promise((r) => setImmediate(r));
      }
    })();
    const got = await take(it, 1500);
    await writer;
    await it.return!();
    expect(got.map((e) => e.id)).toEqual(range(1, 1500));
    expect(got.map((e) => e.payload)).toEqual(range(1, 1500));
  });

  it('subscribe from an id starts strictly after it; a live-only subscriber sees appends as they happen', async () => {
    const log = await freshLog(backend);
    for (const i of range(1, 10)) await log.append('f', { kind: 'k', payload: i });
    const fromMiddle = log.subscribe('f', 7);
    expect((await take(fromMiddle, 3)).map((e) => e.id)).toEqual([8, 9, 10]);
    const pending = fromMiddle.next();
    await log.append('f', { kind: 'late', payload: 11 });
    const r = await pending;
    expect(r.done).toBe(false);
    expect(r.value).toMatchObject({ id: 11, kind: 'late', payload: 11 });
    await fromMiddle.return!();
  });

  it('a subscriber more than queueDepth events behind fails with a lag error naming the last id seen', async () => {
    const log = await freshLog(backend, { queueDepth: 8 });
    const it = log.subscribe('lag');
    const first = it.next();
    await log.append('lag', { kind: 'k' });
    expect((await first).value).toMatchObject({ id: 1 });
    // The subscriber is live now and reads nothing while 20 more arrive.
    for (let i = 0; i < 20; i++) await log.append('lag', { kind: 'k' });
    const err = await it.next().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EventLogError);
    expect(err).toMatchObject({ code: EventLogErrorCode.LAGGED, lastSeenId: 1, topic: 'lag' });
    expect((err as Error).message).toMatch(/last id seen 1/);
    // After the failure the iterator is finished; resubscribing from lastSeenId continues without a gap.
    expect(await it.next()).toEqual({ done: true, value: undefined });
    const again = log.subscribe('lag', 1);
    expect((await take(again, 20)).map((e) => e.id)).toEqual(range(2, 21));
    await again.return!();
  });

  it('a slow subscriber within queueDepth loses nothing', async () => {
    const log = await freshLog(backend, { queueDepth: 64 });
    const it = log.subscribe('slow');
    const first = it.next();
    await log.append('slow', { kind: 'k' });
    await first;
    for (let i = 0; i < 64; i++) await log.append('slow', { kind: 'k' });
    expect((await take(it, 64)).map((e) => e.id)).toEqual(range(2, 65));
    await it.return!();
  });

  it('an AbortSignal, return() and close() end a subscription', async () => {
    const log = await freshLog(backend);
    const ac = new AbortController();
    const aborted = log.subscribe('end', 0, { signal: ac.signal });
    const pending = aborted.next();
    ac.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    const returned = log.subscribe('end');
    await returned.return!();
    expect(await returned.next()).toEqual({ done: true, value: undefined });
    const open = log.subscribe('end');
    const waiting = open.next();
    await new Promise((r) => setTimeout(r, 20));
    await log.close();
    expect(await waiting).toEqual({ done: true, value: undefined });
  });

  it('consumer cursors: null until acked, move forward only, kept per topic and consumer', async () => {
    const log = await freshLog(backend);
    for (let i = 0; i < 10; i++) await log.append('c', { kind: 'k' });
    expect(await log.consumerCursor('c', 'replay')).toBeNull();
    await log.ack('c', 'replay', 5);
    expect(await log.consumerCursor('c', 'replay')).toBe(5);
    await log.ack('c', 'replay', 3);
    expect(await log.consumerCursor('c', 'replay')).toBe(5);
    await log.ack('c', 'replay', 9);
    await log.ack('c', 'viewer / \u00e9 odd name', 2);
    expect(await log.consumerCursor('c', 'replay')).toBe(9);
    expect(await log.consumerCursor('c', 'viewer / \u00e9 odd name')).toBe(2);
    expect(await log.consumerCursor('other', 'replay')).toBeNull();
  });

  it('compact removes events with id up to and including `before` (as the reference does), reports removed, remaining and latest; ids are never reused', async () => {
    const log = await freshLog(backend);
    for (let i = 1; i <= 10; i++) await log.append('cp', { kind: 'k', payload: i });
    expect(await log.compact('cp', 0)).toEqual({ removed: 0, remaining: 10, latest: 10 });
    expect(await log.compact('cp', 3)).toEqual({ removed: 3, remaining: 7, latest: 10 });
    expect((await log.readRange('cp', 0, 100)).map((e) => e.id)).toEqual(range(4, 10));
    expect(await log.compact('cp', 3)).toEqual({ removed: 0, remaining: 7, latest: 10 });
    expect(await log.compact('cp', 4)).toEqual({ removed: 1, remaining: 6, latest: 10 });
    expect((await log.readRange('cp', 0, 100)).map((e) => e.id)).toEqual(range(5, 10));
    expect(await log.compact('cp', 1000)).toEqual({ removed: 6, remaining: 0, latest: 10 });
    expect(await log.readRange('cp', 0, 100)).toEqual([]);
    expect(await log.latest('cp')).toBe(10);
    expect(await log.append('cp', { kind: 'k' })).toBe(11);
    expect(await log.compact('unknown', 5)).toEqual({ removed: 0, remaining: 0, latest: null });
  });

  it('topics() lists the topics appended to, sorted, also when compacted empty; reading or acking makes none', async () => {
    const log = await freshLog(backend);
    expect(await log.topics()).toEqual([]);
    const names = ['session.b', 'a_topic', 'Z-9', 'session.a', 'values', 'other'];
    for (const t of names) await log.append(t, { kind: 'k' });
    await log.compact('values', 100);
    await log.ack('acked.only', 'c', 3);
    await log.readRange('read.only', 0, 10);
    expect(await log.latest('latest.only')).toBeNull();
    expect(await log.topics()).toEqual([...names].sort());
  });

  it('appendIdempotent appends once per header value, whichever kind of append holds it; concurrent calls insert once; compaction forgets; misuse throws', async () => {
    const log = await freshLog(backend);
    const idem = (value: string, payload: unknown = null, header = 'request_id'): Promise<unknown> => log.appendIdempotent('idem', header, value, { kind: 'k', payload });
    expect(await idem('r1', 1)).toEqual({ id: 1, inserted: true });
    expect(await log.append('idem', { kind: 'k', headers: { request_id: 'r2', other: 'x' } })).toBe(2);
    expect(await idem('r1', 'retry')).toEqual({ id: 1, inserted: false });
    expect(await idem('r2')).toEqual({ id: 2, inserted: false });
    // Once the header is indexed, later plain appends are seen too.
    expect(await log.append('idem', { kind: 'k', headers: { request_id: 'r3' } })).toBe(3);
    expect(await idem('r3')).toEqual({ id: 3, inserted: false });
    // In call order among plain appends made in the same turn (one queue, or a hold on the batches).
    const order = await Promise.all([log.append('ordered', { kind: 'a' }), log.appendIdempotent('ordered', 'k', 'x', { kind: 'i' }), log.append('ordered', { kind: 'b' }), log.appendIdempotent('ordered', 'k', 'y', { kind: 'j' }), log.append('ordered', { kind: 'c' })]);
    expect(order).toEqual([1, { id: 2, inserted: true }, 3, { id: 4, inserted: true }, 5]);
    expect((await log.readRange('ordered', 0, 10)).map((e) => e.kind)).toEqual(['a', 'i', 'b', 'j', 'c']);
    const racing = await Promise.all(range(1, 6).map(() => idem('r4')));
    expect(racing).toEqual(range(1, 6).map((k) => ({ id: 4, inserted: k === 1 })));
    // Another header name is another key space; its first use indexes the topic as it stands.
    expect(await idem('x', null, 'other')).toEqual({ id: 2, inserted: false });
    expect(await idem('r1', null, 'other')).toEqual({ id: 5, inserted: true });
    const stored = await log.readRange('idem', 0, 100);
    expect(stored.map((e) => [e.id, e.headers, e.payload])).toEqual([
      [1, { request_id: 'r1' }, 1],
      [2, { request_id: 'r2', other: 'x' }, null],
      [3, { request_id: 'r3' }, null],
      [4, { request_id: 'r4' }, null],
      [5, { other: 'r1' }, null],
    ]);
    // An event compaction removed no longer holds its value.
    await log.compact('idem', 1);
    expect(await idem('r1')).toEqual({ id: 6, inserted: true });
    expect(await idem('r2')).toEqual({ id: 2, inserted: false });
    expect(() => log.appendIdempotent('idem', 'bad header', 'v', { kind: 'k' })).toThrow(RangeError);
    expect(() => log.appendIdempotent('idem', 'h', 5 as never, { kind: 'k' })).toThrow(TypeError);
    expect(() => log.appendIdempotent('idem', 'h', 'v', { kind: 'k', headers: { h: 'w' } })).toThrow(RangeError);
    expect(() => log.appendIdempotent('bad topic', 'h', 'v', { kind: 'k' })).toThrow(RangeError);
  });

  it('describe() names the backend, its location, size on disk and queue depth', async () => {
    const dir = dirs.make(`describe-${backend}`);
    const log = await open(backend, dir, { queueDepth: 77 });
    const empty = await log.describe();
    for (let i = 0; i < 50; i++) await log.append('d', { kind: 'k', payload: 'p'.repeat(100) });
    await log.flush();
    const d = await log.describe();
    expect(d).toMatchObject({ backend: backend === 'redis-cluster' ? 'redis' : backend, queueDepth: 77, readOnly: false });
    expect(d.location).toBe(expectedLocation(backend, dir));
    expect(d.sizeBytes).toBeGreaterThan(empty.sizeBytes);
    expect(d.sizeBytes).toBeGreaterThan(50 * 100);
  });

  it('after close() every call rejects with ERR_RINGLOG_EVENT_LOG_CLOSED; close() twice is fine', async () => {
    const log = await freshLog(backend);
    await log.append('z', { kind: 'k' });
    await log.close();
    await log.close();
    await expect(log.append('z', { kind: 'k' })).rejects.toMatchObject({ code: EventLogErrorCode.CLOSED });
    await expect(log.readRange('z', 0, 1)).rejects.toMatchObject({ code: EventLogErrorCode.CLOSED });
    await expect(log.flush()).rejects.toMatchObject({ code: EventLogErrorCode.CLOSED });
    await expect(log.topics()).rejects.toMatchObject({ code: EventLogErrorCode.CLOSED });
  });
});

describe('Redis Cluster', () => {
  it("spreads the contract suite's topics over all three masters", () => {
    const topics = ['session.b', 'a_topic', 'Z-9', 'session.a', 'a.topic', 'other_topic', 't-1', 'values', 'r', 'x', 't', 's', 'f', 'lag', 'slow', 'end', 'c', 'other', 'cp', 'unknown', 'd', 'z'];
    const ports = new Set(topics.map((t) => masterPortOf(cluster, `t:any:{${t}}:events`)));
    expect(ports).toEqual(new Set(cluster.nodes.map((n) => n.port)));
  });
});

describe.each(['file', 'sqlite', 'redis', 'redis-cluster'] as const)('EventLog appendIdempotent across logs: %s backend', (backend) => {
  it('two logs on one store (two processes, or a restart) append a value once; each sees what the other appended', async () => {
    const dir = dirs.make(`idem-${backend}`);
    const a = await open(backend, dir);
    const b = await open(backend, dir);
    expect(await a.appendIdempotent('shared', 'req', 'v1', { kind: 'k' })).toEqual({ id: 1, inserted: true });
    expect(await b.appendIdempotent('shared', 'req', 'v1', { kind: 'k' })).toEqual({ id: 1, inserted: false });
    await b.append('shared', { kind: 'k', headers: { req: 'v2' } });
    await b.flush();
    expect(await a.appendIdempotent('shared', 'req', 'v2', { kind: 'k' })).toEqual({ id: 2, inserted: false });
    const both = await Promise.all([a.appendIdempotent('shared', 'req', 'v3', { kind: 'k' }), b.appendIdempotent('shared', 'req', 'v3', { kind: 'k' })]);
    expect(both.filter((r) => r.inserted)).toHaveLength(1);
    expect(both[0]!.id).toBe(both[1]!.id);
    await a.close();
    await b.close();
    const c = await open(backend, dir);
    expect(await c.appendIdempotent('shared', 'req', 'v1', { kind: 'k' })).toEqual({ id: 1, inserted: false });
    expect(await c.appendIdempotent('shared', 'req', 'v4', { kind: 'k' })).toEqual({ id: 4, inserted: true });
  });
});

describe.each(['file', 'sqlite', 'redis', 'redis-cluster'] as const)('EventLog restart: %s backend', (backend) => {
  it('after close and reopen, ids, events, cursors and compaction continue', async () => {
    const dir = dirs.make(`restart-${backend}`);
    const first = await open(backend, dir);
    for (let i = 1; i <= 25; i++) await first.append('session.a', { kind: 'k', payload: i });
    await first.append('session.b', { kind: 'k' });
    await first.ack('session.a', 'replayer', 20);
    await first.compact('session.a', 5);
    await first.close();

    const second = await open(backend, dir);
    expect(await second.topics()).toEqual(['session.a', 'session.b']);
    expect(await second.latest('session.a')).toBe(25);
    expect(await second.latest('session.b')).toBe(1);
    expect(await second.consumerCursor('session.a', 'replayer')).toBe(20);
    expect((await second.readRange('session.a', 0, 100)).map((e) => e.payload)).toEqual(range(6, 25));
    expect(await second.append('session.a', { kind: 'k', payload: 26 })).toBe(26);
    await second.compact('session.a', 1000);
    await second.close();

    const third = await open(backend, dir);
    expect(await third.append('session.a', { kind: 'k' })).toBe(27);
    expect(await third.readRange('session.a', 0, 100)).toHaveLength(1);
  });
});

describe('Topic and sanitizeTopicComponent', () => {
  it('accepts ASCII letters, digits, dot, underscore and dash', () => {
    expect(new Topic('observability.agent_events.Run-42').toString()).toBe('observability.agent_events.Run-42');
    expect(JSON.stringify({ t: new Topic('a.b') })).toBe('{"t":"a.b"}');
  });

  it('maps every other character to an underscore, one per code point', () => {
    expect(sanitizeTopicComponent('user@example.com/run 1')).toBe('user_example.com_run_1');
    expect(sanitizeTopicComponent('caf\u00e9\u{1F600}')).toBe('caf__');
    expect(sanitizeTopicComponent('ok-_.9')).toBe('ok-_.9');
    expect(() => new Topic(`x.${sanitizeTopicComponent('a/b:c d')}`)).not.toThrow();
    expect(() => sanitizeTopicComponent(5 as never)).toThrow(TypeError);
  });
});

describe('openEventLog options and environment', () => {
  const saved = { ...process.env };
  afterEach(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('RINGLOG_EVENT_LOG_')) delete process.env[k];
    Object.assign(process.env, saved);
  });

  it('defaults to the memory backend and queue depth 1024', async () => {
    const log = await openEventLog();
    opened.push(log);
    expect(await log.describe()).toMatchObject({ backend: 'memory', queueDepth: 1024, location: null });
  });

  it('falls back to RINGLOG_EVENT_LOG_* variables for missing options', async () => {
    const dir = dirs.make('env');
    process.env.RINGLOG_EVENT_LOG_BACKEND = 'file';
    process.env.RINGLOG_EVENT_LOG_DIR = dir;
    process.env.RINGLOG_EVENT_LOG_QUEUE_DEPTH = '33';
    const log = await openEventLog();
    opened.push(log);
    expect(await log.describe()).toMatchObject({ backend: 'file', location: path.resolve(dir), queueDepth: 33 });
    // Options win over the environment.
    const mem = await openEventLog({ backend: 'memory', queueDepth: 5 });
    opened.push(mem);
    expect(await mem.describe()).toMatchObject({ backend: 'memory', queueDepth: 5 });
    process.env.RINGLOG_EVENT_LOG_BACKEND = 'sqlite';
    process.env.RINGLOG_EVENT_LOG_SQLITE_PATH = path.join(dir, 'custom.db');
    const sq = await openEventLog();
    opened.push(sq);
    expect(await sq.describe()).toMatchObject({ backend: 'sqlite', location: path.join(path.resolve(dir), 'custom.db'), queueDepth: 33 });
  });

  it('rejects bad options and bad environment values synchronously, naming them', () => {
    expect(() => openEventLog({ backend: 'postgres' as never })).toThrow(/option backend must be one of memory, file, sqlite/);
    expect(() => openEventLog({ backend: 'file' })).toThrow(TypeError);
    expect(() => openEventLog({ backend: 'file' })).toThrow(/RINGLOG_EVENT_LOG_DIR/);
    expect(() => openEventLog({ queueDepth: 0 })).toThrow(RangeError);
    expect(() => openEventLog({ queueDepth: 1.5 })).toThrow(RangeError);
    expect(() => openEventLog({ dir: '' })).toThrow(TypeError);
    expect(() => openEventLog({ backend: 'memory', readOnly: true })).toThrow(RangeError);
    expect(() => openEventLog({ bogus: 1 } as never)).toThrow(/unknown openEventLog option 'bogus'/);
    process.env.RINGLOG_EVENT_LOG_BACKEND = 'nope';
    expect(() => openEventLog()).toThrow(/RINGLOG_EVENT_LOG_BACKEND must be one of/);
    process.env.RINGLOG_EVENT_LOG_BACKEND = 'memory';
    process.env.RINGLOG_EVENT_LOG_QUEUE_DEPTH = '12abc';
    expect(() => openEventLog()).toThrow(/RINGLOG_EVENT_LOG_QUEUE_DEPTH must be a positive integer/);
  });

  it('redis: a url is required and checked, as are cluster, keyPrefix and the timeouts, from options or environment', () => {
    expect(() => openEventLog({ backend: 'redis' })).toThrow(TypeError);
    expect(() => openEventLog({ backend: 'redis' })).toThrow(/pass the option 'url' or set RINGLOG_EVENT_LOG_REDIS_URL/);
    expect(() => openEventLog({ backend: 'redis', url: 'http://127.0.0.1:6379' })).toThrow(/option url must be a redis:\/\/ or rediss:\/\/ URL/);
    expect(() => openEventLog({ backend: 'redis', url: 'redis://user:hunter2@' })).toThrow(RangeError);
    expect(() => openEventLog({ backend: 'redis', url: 'redis://user:hunter2@' })).not.toThrow(/hunter2/);
    expect(() => openEventLog({ backend: 'redis', url: 5 as never })).toThrow(TypeError);
    expect(() => openEventLog({ backend: 'redis', url: 'redis://h', keyPrefix: 'app{1}:' })).toThrow(/keyPrefix must not contain '\{' or '\}'/);
    expect(() => openEventLog({ backend: 'redis', url: 'redis://h', cluster: 'yes' as never })).toThrow(TypeError);
    expect(() => openEventLog({ backend: 'redis', url: 'redis://h', retryTimeoutMs: -1 })).toThrow(/option retryTimeoutMs must be a non-negative integer/);
    expect(() => openEventLog({ backend: 'redis', url: 'redis://h', connectTimeoutMs: 1.5 })).toThrow(/option connectTimeoutMs/);
    expect(() => openEventLog({ backend: 'redis', url: 'redis://h', readOnly: true })).toThrow(/readOnly needs a file or sqlite backend \(not redis\)/);
    process.env.RINGLOG_EVENT_LOG_BACKEND = 'redis';
    expect(() => openEventLog()).toThrow(/RINGLOG_EVENT_LOG_REDIS_URL/);
    process.env.RINGLOG_EVENT_LOG_REDIS_URL = 'localhost:6379';
    expect(() => openEventLog()).toThrow(/RINGLOG_EVENT_LOG_REDIS_URL must be a redis:\/\/ or rediss:\/\/ URL/);
    process.env.RINGLOG_EVENT_LOG_REDIS_URL = 'redis://h';
    process.env.RINGLOG_EVENT_LOG_REDIS_CLUSTER = 'maybe';
    expect(() => openEventLog()).toThrow(/RINGLOG_EVENT_LOG_REDIS_CLUSTER must be true, false, 1 or 0/);
    delete process.env.RINGLOG_EVENT_LOG_REDIS_CLUSTER;
    process.env.RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX = '{x}';
    expect(() => openEventLog()).toThrow(/RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX must not contain/);
  });

  it('redis: selected and located by the environment; an unreachable server fails the open, naming it', async () => {
    process.env.RINGLOG_EVENT_LOG_BACKEND = 'redis';
    process.env.RINGLOG_EVENT_LOG_REDIS_URL = redis.url;
    process.env.RINGLOG_EVENT_LOG_REDIS_KEY_PREFIX = `t:env-${process.pid}:`;
    const log = await openEventLog();
    opened.push(log);
    expect(await log.describe()).toMatchObject({ backend: 'redis', location: redis.url, server: { mode: 'standalone', appendonly: true } });
    expect(await log.append('env', { kind: 'k' })).toBe(1);
    // A port nothing listens on: refused at once, not retried forever.
    const closed = await startRedis(path.join(serverDir, 'gone'));
    await closed.stop();
    const err = await openEventLog({ backend: 'redis', url: closed.url }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EventLogError);
    expect(err).toMatchObject({ code: EventLogErrorCode.IO });
    expect((err as Error).message).toContain(`cannot reach redis at ${closed.url}`);
  });
});
