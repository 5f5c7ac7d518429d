// The Redis backend beyond the shared contract (event-log.test.ts runs that one against a real
// server and a real cluster): several processes appending to one topic, server restarts (SIGTERM,
// SIGKILL), a server killed under a streaming EventLogSink, subscriptions across a restart, a
// read-only replica, a key of another type, and an installation without the redis package.

import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EventLogError, EventLogErrorCode, EventLogSink, openEventLog, SinkError, type EventLog, type LogEvent } from '../dist/src/index.js';
import { failure, lastJson, removeDir, runChild, runChildWithEnv, tempDir, tempDirs } from './helpers.js';
import { rawCommand, startRedis, type RedisServer } from '../dist/bench/redis-server.js';
import { checkChain } from '../dist/src/event-log/provenance.js';

const dirs = tempDirs();
const opened: EventLog[] = [];
const servers: RedisServer[] = [];
const root = tempDir('event-log-redis-extra');

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
  await Promise.allSettled(servers.splice(0).map((s) => s.stop('SIGKILL')));
  dirs.cleanup();
});
afterAll(() => removeDir(root));

let serial = 0;
async function server(extra: readonly string[] = []): Promise<RedisServer> {
  const s = await startRedis(path.join(root, `server-${++serial}`), extra);
  servers.push(s);
  return s;
}

async function open(url: string, extra: { retryTimeoutMs?: number; keyPrefix?: string; provenance?: boolean } = {}): Promise<EventLog> {
  const log = await openEventLog({ backend: 'redis', url, ...extra });
  opened.push(log);
  return log;
}

async function readAll(log: EventLog, topic: string): Promise<LogEvent[]> {
  const out: LogEvent[] = [];
  for (;;) {
    const page = await log.readRange(topic, out.length > 0 ? out[out.length - 1]!.id : 0, 5000);
    if (page.length === 0) return out;
    out.push(...page);
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Makes the server stop answering for 5 s (DEBUG SLEEP; it needs --enable-debug-command) and
 * returns once it is asleep (a PING goes unanswered): what is sent from then on waits, unrun.
 */
async function putToSleep(s: RedisServer): Promise<void> {
  void rawCommand(s.port, 'DEBUG SLEEP 5', 10_000).catch(() => undefined);
  for (;;) {
    const answered = await rawCommand(s.port, 'PING', 100).then(
      () => true,
      () => false,
    );
    if (!answered) return;
  }
}

describe('Redis backend', () => {
  it('4 processes × 5,000 appends to one topic: ids 1..20,000, each event exactly once, each process in its order', async () => {
    const s = await server();
    const child = `
      import { openEventLog } from '%RINGLOG%';
      const [url, who] = process.argv.slice(2);
      const log = await openEventLog({ backend: 'redis', url });
      const ids = [];
      for (let i = 0; i < 5000; i += 250) {
        // 250 appends at a time: several batches in flight, as a busy process makes them.
        ids.push(...await Promise.all(Array.from({ length: 250 }, (_, k) => log.append('shared', { kind: 'k', payload: { who: Number(who), i: i + k } }))));
      }
      await log.close();
      console.log(JSON.stringify(ids));`;
    const results = await Promise.all([0, 1, 2, 3].map((who) => runChild(child, [s.url, String(who)], { timeoutMs: 120_000 })));
    const all: number[] = [];
    for (const r of results) {
      expect(r.code, r.stderr).toBe(0);
      const ids = lastJson<number[]>(r);
      expect(ids).toHaveLength(5000);
      // In call order within a process.
      for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]!);
      all.push(...ids);
    }
    expect(new Set(all).size).toBe(20_000);
    expect(Math.min(...all)).toBe(1);
    expect(Math.max(...all)).toBe(20_000);
    const log = await open(s.url);
    const events = await readAll(log, 'shared');
    expect(events.map((e) => e.id)).toEqual(Array.from({ length: 20_000 }, (_, i) => i + 1));
    const seen = new Set(events.map((e) => JSON.stringify(e.payload)));
    expect(seen.size).toBe(20_000);
    expect(await log.latest('shared')).toBe(20_000);
  }, 180_000);

  it('a live subscriber sees what other processes append at once, with no gap and no duplicate', async () => {
    const s = await server();
    const log = await open(s.url);
    await log.append('multi', { kind: 'k', payload: 'first' });
    const it = log.subscribe('multi', 0);
    expect((await it.next()).value).toMatchObject({ id: 1 });
    const child = `
      import { openEventLog } from '%RINGLOG%';
      const [url, who] = process.argv.slice(2);
      const log = await openEventLog({ backend: 'redis', url });
      for (let i = 0; i < 2000; i += 100) await Promise.all(Array.from({ length: 100 }, (_, k) => log.append('multi', { kind: 'k', payload: who + ':' + (i + k) })));
      await log.close();`;
    const children = [0, 1].map((who) => runChild(child, [s.url, String(who)], { timeoutMs: 60_000 }));
    const got: LogEvent[] = [];
    while (got.length < 4000) got.push((await it.next()).value!);
    await it.return!();
    for (const r of await Promise.all(children)) expect(r.code, r.stderr).toBe(0);
    expect(got.map((e) => e.id)).toEqual(Array.from({ length: 4000 }, (_, i) => i + 2));
    expect(new Set(got.map((e) => e.payload)).size).toBe(4000);
  }, 90_000);

  it.each(['SIGTERM', 'SIGKILL'] as const)('a server restarted after %s (appendonly): ids continue, cursors and compaction kept', async (signal) => {
    const s = await server();
    const first = await open(s.url);
    for (let i = 1; i <= 100; i += 10) await Promise.all(Array.from({ length: 10 }, (_, k) => first.append('restart', { kind: 'k', payload: i + k })));
    await first.ack('restart', 'replayer', 50);
    await first.compact('restart', 9);
    await first.flush();
    await first.close();
    await s.stop(signal);
    await s.restart();
    const second = await open(s.url);
    expect(await second.latest('restart')).toBe(100);
    expect(await second.consumerCursor('restart', 'replayer')).toBe(50);
    expect((await readAll(second, 'restart')).map((e) => e.payload)).toEqual(Array.from({ length: 91 }, (_, i) => i + 10));
    expect(await second.append('restart', { kind: 'k' })).toBe(101);
  }, 60_000);

  it('a server killed under a stream of appends and back within retryTimeoutMs: every append resolves, nothing twice, in order', async () => {
    const s = await server();
    const log = await open(s.url, { retryTimeoutMs: 30_000 });
    const appends: Promise<number>[] = [];
    let restarted: Promise<void> | undefined;
    for (let i = 0; i < 3000; i++) {
      appends.push(log.append('through', { kind: 'k', payload: i }));
      if (i % 100 === 99) await sleep(5);
      if (i === 1500) {
        // Mid-stream, batches in flight: the server dies (its AOF holds what it acknowledged).
        await s.stop('SIGKILL');
        restarted = sleep(300).then(() => s.restart());
      }
    }
    await restarted;
    const ids = await Promise.all(appends);
    await log.flush();
    for (let i = 1; i < ids.length; i++) expect(ids[i]).toBeGreaterThan(ids[i - 1]!);
    const events = await readAll(log, 'through');
    expect(events.map((e) => e.payload)).toEqual(Array.from({ length: 3000 }, (_, i) => i));
    expect(events.map((e) => e.id)).toEqual(ids);
  }, 60_000);

  it('a server gone longer than retryTimeoutMs under an EventLogSink: the loss is counted exactly, the sink resumes when it returns, nothing twice', async () => {
    const s = await server();
    const log = await open(s.url, { retryTimeoutMs: 800 });
    const sink = new EventLogSink(log, 'outage');
    let seq = 0;
    const stream = async (ms: number): Promise<void> => {
      const end = Date.now() + ms;
      while (Date.now() < end) {
        for (let k = 0; k < 50; k++) sink.handleEvent({ type: 'tick', seq: seq++ });
        await sleep(5);
      }
    };
    await stream(300);
    await s.stop('SIGKILL');
    // Past the retry timeout: appends made now certainly fail; the ones in flight at the kill wait
    // for the server to say whether it has them.
    await stream(1500);
    await s.restart();
    // Once the log's connection is back, the sink's appends go through again.
    while ((await log.latest(sink.topic).then(() => true, () => false)) === false) await sleep(20);
    await stream(300);
    const err = await failure(() => sink.flush());
    const stats = sink.stats();
    expect(stats.accepted).toBe(seq);
    expect(stats.dropped).toBeGreaterThan(0);
    expect(err).toBeInstanceOf(SinkError);
    expect((err as SinkError).droppedEvents).toBe(stats.dropped);
    expect(stats.appended + stats.dropped).toBe(seq);
    const events = await readAll(log, sink.topic.name);
    const seqs = events.map((e) => (e.payload as { event: { seq: number } }).event.seq);
    // Exactly what was not reported lost is in the log, once, in order.
    expect(seqs.length).toBe(stats.appended);
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!);
    // And the stream resumed: the last events made after the restart are there.
    expect(seqs[seqs.length - 1]).toBe(seq - 1);
  }, 60_000);

  it('an append in flight when the server dies waits for it past retryTimeoutMs (it may have run); later ones fail; nothing is lost or doubled', async () => {
    const s = await server(['--enable-debug-command', 'local']);
    // 2 s: the append in flight is given 6 × that (12 s) to be answered, room for a restarted server
    // to come back and the client's reconnection backoff to find it on a loaded machine.
    const log = await open(s.url, { retryTimeoutMs: 2000 });
    expect(await log.append('held', { kind: 'k', payload: 'before' })).toBe(1);
    // The server stops answering, with the append sent: its fate is the server's to tell.
    await putToSleep(s);
    const held = log.append('held', { kind: 'k', payload: 'in flight' });
    await sleep(50);
    await s.stop('SIGKILL');
    await sleep(2300);
    // The connection has been gone past retryTimeoutMs: a new append fails at once (it never ran).
    const late = await failure(() => log.append('held', { kind: 'k', payload: 'late' }));
    expect(late).toMatchObject({ code: EventLogErrorCode.IO, message: expect.stringMatching(/lost for more than 2000 ms/) });
    let settled = false;
    void held.finally(() => (settled = true));
    await sleep(100);
    expect(settled).toBe(false);
    await s.restart();
    expect(await held).toBe(2);
    await expect(log.flush()).rejects.toMatchObject({ message: expect.stringMatching(/^ringlog: 1 append\(s\) to redis failed/) });
    expect((await readAll(log, 'held')).map((e) => e.payload)).toEqual(['before', 'in flight']);
  }, 30_000);

  it('a server gone for good: an append in flight when it died fails too, after 6 × retryTimeoutMs, as "may or may not be in the log"; flush() and close() return', async () => {
    const s = await server(['--enable-debug-command', 'local']);
    const log = await open(s.url, { retryTimeoutMs: 200 });
    await putToSleep(s);
    const held = log.append('gone', { kind: 'k' });
    await sleep(50);
    await s.stop('SIGKILL');
    const err = await failure(() => held);
    expect(err).toBeInstanceOf(EventLogError);
    expect((err as Error).message).toMatch(/lost for more than 1200 ms; 1 append\(s\) to gone sent before it broke may or may not be in the log/);
    await expect(log.flush()).rejects.toMatchObject({ code: EventLogErrorCode.IO, message: expect.stringMatching(/^ringlog: 1 append\(s\) to redis failed/) });
    await log.close();
  }, 30_000);

  it('the append script: a batch number seen before appends nothing and answers the same first id; batches apply in number order only', async () => {
    const s = await server();
    const { APPEND_SCRIPT, topicKeys } = await import('../dist/src/event-log/redis-keys.js');
    const k = topicKeys('p:', 'order', 'w1');
    const client = createClient({ url: s.url });
    await client.connect();
    const evalScript = (args: string[]): Promise<string> =>
      client.sendCommand(['EVAL', APPEND_SCRIPT, '6', k.events, k.last, k.writer, k.headerNames, k.headerValues, k.tip, ...args]).then(
        (v) => String(v),
        (err: Error) => err.message,
      );
    // One event per batch: kind `kind`, payload `payload`, headers {}, at 5.
    const run = (batch: number, floor: number, kind: string, payload: string): Promise<string> =>
      evalScript([String(batch), '60000', '1', `${kind}${payload}\u0000{}\u00005`, `${kind.length},1,`, String(floor), '', '', '']);
    try {
      expect(await run(2, 1, 'b', '2')).toMatch(/^RINGLOG_EARLY batch 2 waits for batch 1/);
      expect(await run(1, 1, 'a', '1')).toBe('1');
      expect(await run(1, 1, 'a', '1')).toBe('1');
      expect(await run(2, 1, 'b', '2')).toBe('2');
      // Batch 3 given up by its writer (floor 4): batch 4 goes, and 3 can no longer.
      expect(await run(4, 4, 'd', '4')).toBe('3');
      expect(await run(3, 3, 'c', '3')).toMatch(/^RINGLOG_GIVEN_UP batch 3/);
      // A batch whose fields do not match its lengths is refused whole.
      expect(await evalScript(['5', '60000', '1', 'e5\u0000{}5', '1,1,', '5', '', '', ''])).toMatch(/^RINGLOG_BAD_BATCH/);
      expect(await evalScript(['5', '60000', '2', 'e5\u0000{}\u00005', '1,1,', '5', '', '', ''])).toMatch(/^RINGLOG_BAD_BATCH/);
      // Chained (provenance): refused whole when the topic is not at the id the client chained after…
      expect(await evalScript(['5', '60000', '1', 'e5\u0000{}\u00005', '1,1,', '5', '1', 'h', 'g'])).toMatch(/^RINGLOG_CHAIN_MOVED the topic moved on to id 3/);
      expect(await evalScript(['5', '60000', '1', 'e5\u0000{}\u00005', '1,1,', '5', '3', 'h', 'g'])).toBe('4');
      expect(String(await client.get(k.tip))).toBe('4 h');
      // …or when that id has another hash than the one it chained after (its writes were lost and
      // another writer reused the ids).
      expect(await evalScript(['6', '60000', '1', 'f6\u0000{}\u00006', '1,1,', '6', '4', 'i', 'stale'])).toMatch(/^RINGLOG_CHAIN_MOVED/);
      expect(await evalScript(['6', '60000', '1', 'f6\u0000{}\u00006', '1,1,', '6', '4', 'i', 'h'])).toBe('5');
    } finally {
      await client.close();
    }
    const log = await open(s.url, { keyPrefix: 'p:' });
    expect((await readAll(log, 'order')).map((e) => [e.id, e.kind, e.payload])).toEqual([
      [1, 'a', 1],
      [2, 'b', 2],
      [3, 'd', 4],
      [4, 'e', 5],
      [5, 'f', 6],
    ]);
    expect(await log.latest('order')).toBe(5);
  }, 30_000);

  it.each([false, true])('a batch that ran but whose reply was lost is sent again and answered with its ids, not appended twice (provenance %s)', async (provenance) => {
    const s = await server();
    // A proxy between the log and the server that, when told, closes the connection instead of
    // passing on the next reply: the append ran, the client never hears it.
    let cutNextReply = false;
    const sockets = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect(s.port, '127.0.0.1');
      sockets.add(client).add(upstream);
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => {
        if (cutNextReply) {
          cutNextReply = false;
          client.destroy();
          upstream.destroy();
        } else client.write(d);
      });
      for (const sock of [client, upstream]) sock.on('error', () => undefined).on('close', () => (client.destroy(), upstream.destroy()));
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const log = await open(`redis://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`, { retryTimeoutMs: 20_000, provenance });
      expect(await log.append('reply', { kind: 'k', payload: 'a' })).toBe(1);
      cutNextReply = true;
      expect(await log.append('reply', { kind: 'k', payload: 'b' })).toBe(2);
      expect(await log.append('reply', { kind: 'k', payload: 'c' })).toBe(3);
      await log.flush();
      expect((await readAll(log, 'reply')).map((e) => [e.id, e.payload])).toEqual([
        [1, 'a'],
        [2, 'b'],
        [3, 'c'],
      ]);
      // Chained: the retry was answered from the first run's record, and the chain goes on from it.
      if (provenance) expect(checkChain('reply', await readAll(log, 'reply'), { prev: null, lastId: 0 })).toBeNull();
    } finally {
      for (const sock of sockets) sock.destroy();
      await new Promise((r) => proxy.close(r));
    }
  }, 30_000);

  it('a subscription rides out a server restart: no gap, no duplicate', async () => {
    const s = await server();
    const log = await open(s.url, { retryTimeoutMs: 20_000 });
    for (let i = 1; i <= 50; i++) await log.append('follow', { kind: 'k', payload: i });
    const it = log.subscribe('follow');
    const got: number[] = [];
    for (let i = 0; i < 50; i++) got.push((await it.next()).value!.id);
    const more = it.next();
    await s.stop('SIGTERM');
    await s.restart();
    // The log's own connection comes back too; appends made now reach the subscriber.
    for (let i = 51; i <= 100; i++) {
      for (;;) {
        const ok = await log.append('follow', { kind: 'k', payload: i }).then(
          () => true,
          () => false,
        );
        if (ok) break;
        await sleep(50);
      }
    }
    got.push((await more).value!.id);
    for (let i = 0; i < 49; i++) got.push((await it.next()).value!.id);
    await it.return!();
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => i + 1));
  }, 60_000);

  it('on a read-only replica appends, acks and compaction reject with ERR_RINGLOG_EVENT_LOG_READ_ONLY; reads work', async () => {
    // Diskless sync at once: Redis 7.0 waits 5 s by default for more replicas before it starts.
    const primary = await server(['--repl-diskless-sync-delay', '0']);
    const writer = await open(primary.url);
    for (let i = 1; i <= 5; i++) await writer.append('ro', { kind: 'k', payload: i });
    const replica = await server(['--replicaof', '127.0.0.1', String(primary.port)]);
    const deadline = Date.now() + 45_000;
    while (!/master_link_status:up/.test(execFileSync('redis-cli', ['-p', String(replica.port), 'info', 'replication'], { encoding: 'utf8' }))) {
      if (Date.now() > deadline) throw new Error('the replica did not sync');
      await sleep(50);
    }
    const log = await open(replica.url);
    for (const op of [() => log.append('ro', { kind: 'k' }), () => log.ack('ro', 'c', 1), () => log.compact('ro', 3)]) {
      const err = await failure(op);
      expect(err).toBeInstanceOf(EventLogError);
      expect(err).toMatchObject({ code: EventLogErrorCode.READ_ONLY });
      expect((err as Error).message).toMatch(/read-only replica/);
    }
    expect((await readAll(log, 'ro')).map((e) => e.payload)).toEqual([1, 2, 3, 4, 5]);
    // The failed append is reported by flush() too, with its count.
    await expect(log.flush()).rejects.toMatchObject({ code: EventLogErrorCode.IO, message: expect.stringMatching(/1 append\(s\) to redis failed/) });
  }, 60_000);

  it('a process that never calls close() still exits once its appends are in', async () => {
    const s = await server();
    const r = await runChild(
      `import { openEventLog } from '%RINGLOG%';
       const log = await openEventLog({ backend: 'redis', url: process.argv[2], keyPrefix: 'nc:' });
       for (let i = 0; i < 1000; i++) void log.append('noclose', { kind: 'k', payload: i });`,
      [s.url],
      { timeoutMs: 20_000 },
    );
    expect(r.timedOut).toBe(false);
    expect(r.code, r.stderr).toBe(0);
    const log = await open(s.url, { keyPrefix: 'nc:' });
    expect((await readAll(log, 'noclose')).map((e) => e.payload)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  }, 30_000);

  it("describe() states what flush() guarantees under the server's persistence settings", async () => {
    const cases: [readonly string[], RegExp][] = [
      [[], /appendfsync everysec/],
      [['--appendfsync', 'always'], /fsynced its append-only file \(appendfsync always\)/],
      [['--appendonly', 'no'], /appendonly is off/],
    ];
    for (const [args, durability] of cases) {
      const s = await server(args);
      const d = await (await open(s.url)).describe();
      expect(d.server).toMatchObject({ version: expect.stringMatching(/^\d+\.\d+/), mode: 'standalone' });
      expect(d.durability).toMatch(durability);
    }
  }, 30_000);

  it('a key of the log holding another type: a typed error, and nothing appended', async () => {
    const s = await server();
    const log = await open(s.url, { keyPrefix: 'app:' });
    expect(await rawCommand(s.port, 'SET app:{typed}:events not-a-stream')).toBe('+OK');
    const err = await failure(() => log.append('typed', { kind: 'k' }));
    expect(err).toBeInstanceOf(EventLogError);
    expect(err).toMatchObject({ code: EventLogErrorCode.CORRUPT, topic: 'typed' });
    expect((err as Error).message).toMatch(/holds another type/);
    expect(await log.latest('typed')).toBeNull();
    await expect(log.readRange('typed', 0, 10)).rejects.toMatchObject({ code: EventLogErrorCode.CORRUPT });
  }, 30_000);

  it('an installed copy without the redis package: other backends work, redis rejects with UNAVAILABLE and the install hint', async () => {
    const dir = dirs.make('redis-missing');
    const pkg = path.join(dir, 'ringlog');
    fs.cpSync(new URL('../dist/src', import.meta.url), path.join(pkg, 'dist', 'src'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'ringlog', type: 'module', main: './dist/src/index.js' }));
    const r = await runChildWithEnv(
      `const [entry] = process.argv.slice(2);
       const { openEventLog } = await import(entry);
       const out = {};
       const mem = await openEventLog({ backend: 'memory' });
       out.memory = await mem.append('t', { kind: 'k' });
       try {
         await openEventLog({ backend: 'redis', url: 'redis://127.0.0.1:1' });
         out.redis = 'opened';
       } catch (err) {
         out.redis = { name: err.name, code: err.code, message: err.message };
       }
       console.log(JSON.stringify(out));`,
      [pathToFileURL(path.join(pkg, 'dist', 'src', 'index.js')).href],
      { env: { NODE_PATH: '' }, cwd: dir },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(lastJson(r)).toEqual({
      memory: 1,
      redis: { name: 'EventLogError', code: EventLogErrorCode.UNAVAILABLE, message: 'ringlog: the redis backend needs the optional dependency redis (node-redis): npm install redis' },
    });
  }, 30_000);
});

beforeAll(() => {
  // Fail early and clearly where redis-server is missing (.ci/run installs it).
  execFileSync('redis-server', ['--version']);
});
