// Issue 15: tamper-evident topics (openEventLog's `provenance`). In-process, the chain's pieces
// (canonical encoding, the check); on the memory, file, SQLite and Redis backends (a real
// redis-server: hashed on the client, checked against the tip in the server's script), every record chained to
// the one before across appends of both kinds, two logs on one store, restarts and compaction; and
// `ringlog verify --topic` naming the first record a change to the file breaks.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { canonicalJson, checkChain, GENESIS, recordHash } from '../dist/src/event-log/provenance.js';
import { openEventLog, type EventLog, type LogEvent } from '../dist/src/index.js';
import { removeDir, tempDir, tempDirs } from './helpers.js';
import { startRedis, type RedisServer } from '../dist/bench/redis-server.js';
import { DEFAULT_KEY_PREFIX } from '../dist/src/event-log/open.js';
import { createClient } from 'redis';

const MAIN = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
const dirs = tempDirs();
const opened: EventLog[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
  dirs.cleanup();
});

type Backend = 'memory' | 'file' | 'sqlite';

async function open(backend: Backend, dir: string): Promise<EventLog> {
  const log = await openEventLog(backend === 'memory' ? { backend, provenance: true } : { backend, dir, provenance: true });
  opened.push(log);
  return log;
}

async function all(log: EventLog, topic: string): Promise<LogEvent[]> {
  return log.readRange(topic, 0, 10_000);
}

describe('the chain, in-process', () => {
  it('encodes canonically (keys sorted at every level) and hashes topic, id, kind, payload, headers and time', () => {
    expect(canonicalJson({ b: 1, a: [{ d: 'x', c: null }], e: { g: true, f: 2.5 } })).toBe('{"a":[{"c":null,"d":"x"}],"b":1,"e":{"f":2.5,"g":true}}');
    const h = recordHash('t', 1, 'k', { b: 1, a: 2 }, { x: 'y', prev_hash: GENESIS }, 5);
    expect(h).toMatch(/^[0-9a-f]{64}$/);
    expect(recordHash('t', 1, 'k', { a: 2, b: 1 }, { prev_hash: GENESIS, x: 'y', record_hash: 'ignored' }, 5)).toBe(h);
    for (const other of [
      recordHash('u', 1, 'k', { a: 2, b: 1 }, { x: 'y', prev_hash: GENESIS }, 5),
      recordHash('t', 2, 'k', { a: 2, b: 1 }, { x: 'y', prev_hash: GENESIS }, 5),
      recordHash('t', 1, 'l', { a: 2, b: 1 }, { x: 'y', prev_hash: GENESIS }, 5),
      recordHash('t', 1, 'k', { a: 2, b: 2 }, { x: 'y', prev_hash: GENESIS }, 5),
      recordHash('t', 1, 'k', { a: 2, b: 1 }, { x: 'z', prev_hash: GENESIS }, 5),
      recordHash('t', 1, 'k', { a: 2, b: 1 }, { x: 'y', prev_hash: '1'.repeat(64) }, 5),
      recordHash('t', 1, 'k', { a: 2, b: 1 }, { x: 'y', prev_hash: GENESIS }, 6),
    ]) {
      expect(other).not.toBe(h);
    }
  });
});

describe.each(['memory', 'file', 'sqlite'] as const)('provenance: %s backend', (backend) => {
  it('chains every record to the one before, from the genesis hash, through append and appendIdempotent', async () => {
    const log = await open(backend, dirs.make(`prov-${backend}`));
    for (let i = 0; i < 30; i++) void log.append('t', { kind: 'step', payload: { i, nested: { z: 1, a: [i] } }, headers: { session_id: 's' } });
    expect(await log.appendIdempotent('t', 'request_id', 'r1', { kind: 'once' })).toEqual({ id: 31, inserted: true });
    expect(await log.appendIdempotent('t', 'request_id', 'r1', { kind: 'once' })).toEqual({ id: 31, inserted: false });
    const records = await all(log, 't');
    expect(records).toHaveLength(31);
    expect(records[0]!.headers.prev_hash).toBe(GENESIS);
    for (let k = 1; k < records.length; k++) expect(records[k]!.headers.prev_hash).toBe(records[k - 1]!.headers.record_hash);
    expect(records[0]!.headers).toMatchObject({ session_id: 's' });
    expect(checkChain('t', records, { prev: null, lastId: 0 })).toBeNull();
    // Each topic is a chain of its own.
    await log.append('u', { kind: 'k' });
    expect((await all(log, 'u'))[0]!.headers.prev_hash).toBe(GENESIS);
  });

  it('refuses events that set prev_hash or record_hash themselves, at the call', async () => {
    const log = await open(backend, dirs.make(`prov-refuse-${backend}`));
    expect(() => log.append('t', { kind: 'k', headers: { prev_hash: 'x' } })).toThrow(new RangeError('ringlog: with provenance on, headers prev_hash and record_hash are the log\'s to set'));
    expect(() => log.appendIdempotent('t', 'h', 'v', { kind: 'k', headers: { record_hash: 'x' } })).toThrow(RangeError);
  });

  it('keeps the chain across compaction, even one that empties the topic', async () => {
    const log = await open(backend, dirs.make(`prov-compact-${backend}`));
    for (let i = 0; i < 10; i++) await log.append('c', { kind: 'k', payload: i });
    const tip = (await all(log, 'c')).at(-1)!.headers.record_hash;
    await log.compact('c', 4);
    await log.append('c', { kind: 'k', payload: 10 });
    const left = await all(log, 'c');
    expect(left.map((r) => r.id)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect(checkChain('c', left, { prev: null, lastId: 0 })).toBeNull();
    await log.compact('c', 1000);
    await log.append('c', { kind: 'k', payload: 11 });
    const [only] = await all(log, 'c');
    expect(only!.id).toBe(12);
    expect(only!.headers.prev_hash).toBe(left.at(-1)!.headers.record_hash);
    expect(left.at(-1)!.headers.prev_hash).toBe(tip);
  });
});

describe.each(['file', 'sqlite'] as const)('provenance across logs: %s backend', (backend) => {
  it('two logs on one store, and a restart, extend one chain', async () => {
    const dir = dirs.make(`prov-two-${backend}`);
    const a = await open(backend, dir);
    const b = await open(backend, dir);
    for (let i = 0; i < 20; i++) {
      await (i % 2 === 0 ? a : b).append('shared', { kind: 'k', payload: i });
      if (i % 5 === 0) await (i % 2 === 0 ? a : b).flush();
    }
    await Promise.all([a.close(), b.close()]);
    const c = await open(backend, dir);
    await c.append('shared', { kind: 'k', payload: 20 });
    const records = await all(c, 'shared');
    expect(records.map((r) => r.payload)).toEqual(Array.from({ length: 21 }, (_, i) => i));
    expect(checkChain('shared', records, { prev: null, lastId: 0 })).toBeNull();
  });
});

describe.each(['file', 'sqlite'] as const)('provenance after compaction and a reopen: %s backend', (backend) => {
  it('a topic compacted empty keeps its tip for the next process, also when the log that compacted had provenance off', async () => {
    const dir = dirs.make(`prov-reopen-${backend}`);
    const first = await open(backend, dir);
    for (let i = 0; i < 5; i++) await first.append('t', { kind: 'k', payload: i });
    const tip = (await all(first, 't')).at(-1)!.headers.record_hash;
    await first.close();
    // Another log, without provenance, empties the topic.
    const plain = await openEventLog({ backend, dir });
    opened.push(plain);
    await plain.compact('t', 1000);
    await plain.close();
    const second = await open(backend, dir);
    await second.append('t', { kind: 'k', payload: 5 });
    const [next] = await all(second, 't');
    expect(next!.id).toBe(6);
    expect(next!.headers.prev_hash).toBe(tip);
  });
});

describe('ringlog verify --topic', () => {
  function verify(dir: string, topic: string, json = false): { code: number | null; stdout: string } {
    const r = spawnSync(process.execPath, [MAIN, 'verify', '--topic', topic, '--dir', dir, ...(json ? ['--json'] : [])], { encoding: 'utf8' });
    return { code: r.status, stdout: r.stdout };
  }

  it('exits 0 when the chain holds, and 1 naming the first record a change to the file breaks', async () => {
    const dir = dirs.make('prov-verify');
    const log = await open('file', dir);
    for (let i = 1; i <= 50; i++) await log.append('audit', { kind: 'k', payload: { i, note: `entry ${i}` } });
    await log.close();
    const ok = verify(dir, 'audit');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toBe('OK — topic audit: 50 records, ids 1 … 50, the provenance chain holds\n');
    const file = path.join(dir, 'audit.jsonl');
    const original = fs.readFileSync(file, 'utf8');
    // A payload edited in place: record 17's own hash no longer matches.
    fs.writeFileSync(file, original.replace('"note":"entry 17"', '"note":"entry 71"'));
    const changed = verify(dir, 'audit');
    expect(changed.code).toBe(1);
    expect(changed.stdout).toBe('BROKEN — topic audit: record 17 its record_hash does not match its contents: the record was changed (16 record(s) before it check out)\n');
    // A record removed and the ids renumbered to hide it: the next one's prev_hash gives it away.
    const lines = original.trimEnd().split('\n');
    const renumbered = [...lines.slice(0, 29), ...lines.slice(30).map((l) => l.replace(/^\{"id":(\d+),/, (_, n: string) => `{"id":${Number(n) - 1},`))];
    fs.writeFileSync(file, renumbered.join('\n') + '\n');
    const removed = JSON.parse(verify(dir, 'audit', true).stdout) as { clean: boolean; broken: { id: number; reason: string } };
    expect(removed.clean).toBe(false);
    expect(removed.broken.id).toBe(30);
    expect(removed.broken.reason).toMatch(/prev_hash is not the record_hash of id 29/);
    const none = verify(dir, 'no-such-topic');
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('NONE — topic no-such-topic has never been written (a misspelt name, or another log?)\n');
  });
});

describe('provenance on Redis', () => {
  const root = tempDir('provenance-redis');
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.allSettled(servers.splice(0).map((s) => s.stop('SIGKILL')));
    removeDir(root);
  });
  let serial = 0;
  async function redisLog(url?: string): Promise<{ log: EventLog; url: string }> {
    if (url === undefined) {
      const s = await startRedis(path.join(root, `server-${++serial}`), []);
      servers.push(s);
      url = s.url;
    }
    const log = await openEventLog({ backend: 'redis', url, provenance: true });
    opened.push(log);
    return { log, url };
  }

  it('chains every record to the one before, from the genesis hash, through append and appendIdempotent', async () => {
    const { log } = await redisLog();
    for (let i = 0; i < 30; i++) void log.append('t', { kind: 'step', payload: { i, nested: { z: 1, a: [i] } }, headers: { session_id: 's' } });
    expect(await log.appendIdempotent('t', 'request_id', 'r1', { kind: 'once' })).toEqual({ id: 31, inserted: true });
    expect(await log.appendIdempotent('t', 'request_id', 'r1', { kind: 'once' })).toEqual({ id: 31, inserted: false });
    await log.append('t', { kind: 'after' });
    const records = await all(log, 't');
    expect(records.map((r) => r.id)).toEqual(Array.from({ length: 32 }, (_, i) => i + 1));
    expect(records[0]!.headers.prev_hash).toBe(GENESIS);
    expect(checkChain('t', records, { prev: null, lastId: 0 })).toBeNull();
    expect(() => log.append('t', { kind: 'x', headers: { record_hash: 'mine' } })).toThrow(RangeError);
    expect(() => log.appendIdempotent('t', 'h', 'v', { kind: 'x', headers: { prev_hash: 'mine' } })).toThrow(RangeError);
  });

  it('two logs (two writers) appending at once to one topic extend one chain', async () => {
    const { log: a, url } = await redisLog();
    const { log: b } = await redisLog(url);
    const appends: Promise<number>[] = [];
    for (let i = 0; i < 300; i++) {
      appends.push(a.append('shared', { kind: 'a', payload: { i } }));
      appends.push(b.append('shared', { kind: 'b', payload: { i } }));
      if (i % 50 === 0) appends.push(b.appendIdempotent('shared', 'k', `v${i}`, { kind: 'once' }).then((r) => r.id));
    }
    const ids = await Promise.all(appends);
    expect(new Set(ids).size).toBe(ids.length);
    const records = await all(a, 'shared');
    expect(records.length).toBe(ids.length);
    expect(checkChain('shared', records, { prev: null, lastId: 0 })).toBeNull();
    // Each writer's own appends keep their call order.
    const order = (kind: string): number[] => records.filter((r) => r.kind === kind).map((r) => (r.payload as { i: number }).i);
    expect(order('a')).toEqual([...order('a')].sort((x, y) => x - y));
    expect(order('b')).toEqual([...order('b')].sort((x, y) => x - y));
  });

  it('keeps the chain across compaction, even one that empties the topic, and across a restart of the log', async () => {
    const { log, url } = await redisLog();
    for (let i = 0; i < 5; i++) await log.append('c', { kind: 'k', payload: { i } });
    const tip = (await all(log, 'c'))[4]!.headers.record_hash;
    await log.compact('c', 5);
    await log.close();
    const { log: again } = await redisLog(url);
    await again.append('c', { kind: 'k', payload: { i: 5 } });
    const [sixth] = await all(again, 'c');
    expect(sixth!.id).toBe(6);
    expect(sixth!.headers.prev_hash).toBe(tip);
  });

  it('ringlog verify --topic checks the chain on Redis and names the record a change breaks', async () => {
    const { log, url } = await redisLog();
    for (let i = 0; i < 10; i++) await log.append('v', { kind: 'k', payload: { i } });
    await log.flush();
    const verify = (): ReturnType<typeof spawnSync> => spawnSync(process.execPath, [MAIN, 'verify', '--topic', 'v', '--backend', 'redis', '--url', url], { encoding: 'utf8' });
    const ok = verify();
    expect(ok.status, String(ok.stderr)).toBe(0);
    // A tamperer with access to the server rewrites record 4's payload: the stream is rebuilt
    // (XADD cannot put an entry below the top id back), every other entry as it was.
    const client = createClient({ url });
    await client.connect();
    try {
      const key = `${DEFAULT_KEY_PREFIX}{v}:events`;
      const entries = (await client.xRange(key, '-', '+')) ?? [];
      expect(entries.length).toBe(10);
      await client.del(key);
      for (const e of entries) await client.xAdd(key, e.id, e.id === '4-0' ? { ...e.message, payload: '{"i":40}' } : e.message);
    } finally {
      await client.quit();
    }
    const bad = verify();
    expect(bad.status).toBe(1);
    expect(String(bad.stdout)).toMatch(/record 4\b|id 4\b/);
  });
});

describe('the provenance option', () => {
  it('is checked and taken from RINGLOG_EVENT_LOG_PROVENANCE', async () => {
    expect(() => openEventLog({ provenance: 'yes' as never })).toThrow(new TypeError('ringlog: option provenance must be a boolean, got string'));
    process.env.RINGLOG_EVENT_LOG_PROVENANCE = 'maybe';
    try {
      expect(() => openEventLog({})).toThrow(/RINGLOG_EVENT_LOG_PROVENANCE must be true, false, 1 or 0/);
      process.env.RINGLOG_EVENT_LOG_PROVENANCE = '1';
      const log = await openEventLog({});
      opened.push(log);
      await log.append('t', { kind: 'k' });
      expect((await all(log, 't'))[0]!.headers.prev_hash).toBe(GENESIS);
    } finally {
      delete process.env.RINGLOG_EVENT_LOG_PROVENANCE;
    }
  });
});
