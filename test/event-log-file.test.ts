// The file backend's own guarantees, beyond the contract every backend meets (event-log.test.ts):
// restarts, two processes appending to one topic, torn last lines, crashes during compaction and
// stale locks, read-only mode, a bad directory, and damaged files.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { EventLogErrorCode, openEventLog, type EventLog } from '../dist/src/index.js';
import { lastJson, runChild, spawnScript, tempDirs, type ChildResult } from './helpers.js';

const dirs = tempDirs();
const opened: EventLog[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
  dirs.cleanup();
});

async function open(dir: string, readOnly = false): Promise<EventLog> {
  const log = await openEventLog({ backend: 'file', dir, readOnly });
  opened.push(log);
  return log;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

function fileLines(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  expect(text === '' || text.endsWith('\n'), `${file} ends with a whole line`).toBe(true);
  return text === '' ? [] : text.slice(0, -1).split('\n');
}

/** The pid of a process that has certainly exited (it was waited for). */
async function deadPid(): Promise<number> {
  const r = await runChild('console.log(JSON.stringify({ pid: process.pid }));');
  return lastJson<{ pid: number }>(r).pid;
}

describe('file event log: restart', () => {
  it('ids, events and cursors continue after close and reopen, also after compaction removed everything', async () => {
    const dir = dirs.make('file-restart');
    const a = await open(dir);
    expect(await Promise.all(range(1, 10).map((i) => a.append('t', { kind: 'k', payload: i })))).toEqual(range(1, 10));
    await a.ack('t', 'reader', 4);
    await a.ack('t', 'odd name/with "quotes" and ünïcode', 7);
    await a.close();

    const b = await open(dir);
    expect(await b.latest('t')).toBe(10);
    expect(await b.consumerCursor('t', 'reader')).toBe(4);
    expect(await b.consumerCursor('t', 'odd name/with "quotes" and ünïcode')).toBe(7);
    expect(await b.consumerCursor('t', 'never')).toBeNull();
    expect((await b.readRange('t', 4, 3)).map((e) => e.payload)).toEqual([5, 6, 7]);
    expect(await b.append('t', { kind: 'k', payload: 11 })).toBe(11);
    await b.ack('t', 'reader', 11);
    expect(await b.compact('t', 100)).toEqual({ removed: 11, remaining: 0, latest: 11 });
    expect(fs.readFileSync(path.join(dir, 't.jsonl'), 'utf8')).toBe('');
    await b.close();

    const c = await open(dir);
    expect(await c.latest('t')).toBe(11);
    expect(await c.readRange('t', 0, 100)).toEqual([]);
    expect(await c.consumerCursor('t', 'reader')).toBe(11);
    expect(await c.append('t', { kind: 'k', payload: 12 })).toBe(12);
    expect((await c.readRange('t', 0, 100)).map((e) => e.id)).toEqual([12]);
    // Only the documented files are left behind: no lock, owner or temp file of a closed log.
    await c.close();
    expect(fs.readdirSync(dir).sort()).toEqual(['t.cursors.json', 't.jsonl', 't.meta.json']);
  });

  it('flush() resolves after earlier appends are written; the lines are exactly eventLine()', async () => {
    const dir = dirs.make('file-flush');
    const log = await open(dir);
    const pending = [log.append('f', { kind: 'a', payload: { x: 1 }, headers: { h: 'v' }, occurred_at_ms: 5 }), log.append('f', { kind: 'b', occurred_at_ms: 6 })];
    await log.flush();
    expect(await Promise.all(pending)).toEqual([1, 2]);
    expect(fileLines(path.join(dir, 'f.jsonl'))).toEqual([
      '{"id":1,"kind":"a","payload":{"x":1},"headers":{"h":"v"},"occurred_at_ms":5}',
      '{"id":2,"kind":"b","payload":null,"headers":{},"occurred_at_ms":6}',
    ]);
  });
});

const APPENDER = `
import * as fs from 'node:fs';
import { openEventLog } from '%RINGLOG%';
const [dir, who, count, gate] = process.argv.slice(2);
const n = Number(count);
const log = await openEventLog({ backend: 'file', dir });
console.log('ready');
while (!fs.existsSync(gate)) await new Promise((r) => setTimeout(r, 2));
const ids = [];
const append = (i) => log.append('shared', { kind: 'append', payload: { who, i } });
let i = 0;
// Alternating blocks: 100 appends one at a time, then 100 issued at once (one batch per lock).
for (let block = 0; i < n; block++) {
  const end = Math.min(n, i + 100);
  if (block % 2 === 0) for (; i < end; i++) ids.push(await append(i));
  else {
    const batch = [];
    for (; i < end; i++) batch.push(append(i));
    ids.push(...(await Promise.all(batch)));
  }
}
await log.flush();
await log.close();
console.log(JSON.stringify({ ids }));
`;

describe('file event log: two processes', () => {
  it('two processes appending to one topic get unique, gap-free ids and leave a whole file', async () => {
    const dir = dirs.make('file-two-procs');
    fs.mkdirSync(dir, { recursive: true });
    const gate = path.join(dir, '..', `${path.basename(dir)}.gate`);
    const perChild = 2000;
    let ready = 0;
    let markReady: () => void = () => undefined;
    const bothReady = new Promise<void>((r) => (markReady = r));
    const onStdout = (chunk: string): void => {
      if (chunk.includes('ready') && ++ready === 2) markReady();
    };
    const children = ['A', 'B'].map((who) => spawnScript(APPENDER, [dir, who, String(perChild), gate], { onStdout, timeoutMs: 110_000 }));
    try {
      await bothReady;
      fs.writeFileSync(gate, '');
      const results: ChildResult[] = await Promise.all(children.map((c) => c.result));
      for (const r of results) expect(r.code, r.stderr).toBe(0);
      const idsOf = { A: lastJson<{ ids: number[] }>(results[0]!).ids, B: lastJson<{ ids: number[] }>(results[1]!).ids };

      const events = fileLines(path.join(dir, 'shared.jsonl')).map((l) => JSON.parse(l) as { id: number; payload: { who: 'A' | 'B'; i: number } });
      expect(events.map((e) => e.id)).toEqual(range(1, 2 * perChild));
      for (const who of ['A', 'B'] as const) {
        const mine = events.filter((e) => e.payload.who === who);
        expect(mine.map((e) => e.payload.i), `${who}'s events in its own order`).toEqual(range(0, perChild - 1));
        expect(mine.map((e) => e.id), `${who}'s returned ids`).toEqual(idsOf[who]);
      }
      // A third reader sees the same.
      const log = await open(dir, true);
      expect((await log.readRange('shared', 0, 10_000)).map((e) => e.id)).toEqual(range(1, 2 * perChild));
    } finally {
      fs.rmSync(gate, { force: true });
    }
  });

  it('two threads of one process appending to one topic get unique, gap-free ids', async () => {
    // Each thread has its own globalThis, so neither knows the other's tokens: a lock held by the
    // other thread carries our pid and must still be seen as live.
    const dir = dirs.make('file-two-threads');
    const script = path.join(dir, '..', `${path.basename(dir)}.worker.mjs`);
    fs.writeFileSync(
      script,
      `
import { parentPort, workerData } from 'node:worker_threads';
const { openEventLog } = await import(workerData.url);
const log = await openEventLog({ backend: 'file', dir: workerData.dir });
const ids = [];
for (let i = 0; i < workerData.n; i += 5) {
  const batch = [];
  for (let j = i; j < i + 5; j++) batch.push(log.append('shared', { kind: 'k', payload: { who: workerData.who, i: j } }));
  ids.push(...(await Promise.all(batch)));
}
await log.close();
parentPort.postMessage(ids);
`,
    );
    // 400 small batches (one lock each) per thread: the two threads' lock holds interleave hundreds
    // of times, which made the threads break each other's locks in most runs before owners were
    // recognised across threads.
    const perThread = 2000;
    const url = new URL('../dist/src/index.js', import.meta.url).href;
    try {
      const results = await Promise.all(
        ['A', 'B'].map(
          (who) =>
            new Promise<number[]>((resolve, reject) => {
              const w = new Worker(script, { workerData: { url, dir, who, n: perThread } });
              w.once('message', (ids: number[]) => resolve(ids));
              w.once('error', reject);
            }),
        ),
      );
      const lines = fileLines(path.join(dir, 'shared.jsonl')).map((l) => (JSON.parse(l) as { id: number }).id);
      expect(lines).toEqual(range(1, 2 * perThread));
      expect([...results[0]!, ...results[1]!].sort((x, y) => x - y)).toEqual(range(1, 2 * perThread));
    } finally {
      fs.rmSync(script, { force: true });
    }
  });

  it('a log notices another one compacting the file under it before its next append and read', async () => {
    const dir = dirs.make('file-compact-elsewhere');
    const a = await open(dir);
    const b = await open(dir);
    for (let i = 1; i <= 10; i++) await a.append('c', { kind: 'k', payload: i });
    expect((await a.readRange('c', 0, 100)).map((e) => e.id)).toEqual(range(1, 10));
    expect(await b.compact('c', 5)).toEqual({ removed: 5, remaining: 5, latest: 10 });
    expect(await a.append('c', { kind: 'k', payload: 11 })).toBe(11);
    expect((await a.readRange('c', 0, 100)).map((e) => e.id)).toEqual(range(6, 11));
    expect((await b.readRange('c', 0, 100)).map((e) => e.id)).toEqual(range(6, 11));
    expect(await b.compact('c', 1000)).toEqual({ removed: 6, remaining: 0, latest: 11 });
    expect(await a.latest('c')).toBe(11);
    expect(await a.append('c', { kind: 'k' })).toBe(12);
    expect(fileLines(path.join(dir, 'c.jsonl')).map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([12]);
  });
});

describe('file event log: crashes', () => {
  it('a torn last line left by a killed writer is not read, and is cut by the next append', async () => {
    const dir = dirs.make('file-torn');
    const a = await open(dir);
    for (let i = 1; i <= 3; i++) await a.append('torn', { kind: 'k', payload: i });
    await a.close();
    const file = path.join(dir, 'torn.jsonl');
    fs.appendFileSync(file, '{"id":4,"kind":"k","payl');

    const b = await open(dir);
    expect((await b.readRange('torn', 0, 100)).map((e) => e.id)).toEqual([1, 2, 3]);
    expect(await b.latest('torn')).toBe(3);
    expect(await b.append('torn', { kind: 'k', payload: 4 })).toBe(4);
    const lines = fileLines(file);
    expect(lines).toHaveLength(4);
    expect(JSON.parse(lines[3]!)).toMatchObject({ id: 4, payload: 4 });
    expect((await b.readRange('torn', 0, 100)).map((e) => e.payload)).toEqual([1, 2, 3, 4]);
  });

  it('a crash during compaction (temp file and lock of a dead process left) leaves a readable, appendable topic', async () => {
    const dir = dirs.make('file-compact-crash');
    const a = await open(dir);
    for (let i = 1; i <= 5; i++) await a.append('cc', { kind: 'k', payload: i });
    await a.close();
    const pid = await deadPid();
    const token = '0123456789abcdef';
    const tmp = path.join(dir, `cc.jsonl.${pid}.${token}.tmp`);
    fs.writeFileSync(tmp, '{"id":3,"kind":"k","payload":3,"headers":{},"occurred_at_ms":1}\n{"id":4,"ki');
    fs.writeFileSync(path.join(dir, 'cc.lock'), JSON.stringify({ pid, token }));

    const b = await open(dir);
    expect(fs.existsSync(tmp), 'the dead process’s temp file is removed at open').toBe(false);
    expect((await b.readRange('cc', 0, 100)).map((e) => e.payload)).toEqual([1, 2, 3, 4, 5]);
    // The stale lock is broken by the next writer.
    expect(await b.append('cc', { kind: 'k', payload: 6 })).toBe(6);
    expect(await b.compact('cc', 3)).toEqual({ removed: 3, remaining: 3, latest: 6 });
    expect((await b.readRange('cc', 0, 100)).map((e) => e.id)).toEqual([4, 5, 6]);
    expect(fs.readdirSync(dir).filter((f) => f.endsWith('.lock') || f.endsWith('.break') || f.endsWith('.tmp'))).toEqual([]);
  });

  it('several writers meeting one stale lock break it once and never share the lock', async () => {
    const dir = dirs.make('file-stale-race');
    const pid = await deadPid();
    fs.writeFileSync(path.join(dir, 'race.lock'), JSON.stringify({ pid, token: 'fedcba9876543210' }));
    const logs = await Promise.all(range(1, 4).map(() => open(dir)));
    const ids = (await Promise.all(logs.flatMap((log, k) => range(1, 50).map((i) => log.append('race', { kind: 'k', payload: k * 100 + i }))))).sort((x, y) => x - y);
    expect(ids).toEqual(range(1, 200));
    expect(fileLines(path.join(dir, 'race.jsonl'))).toHaveLength(200);
  });

  it('a damaged line in the middle of the file is reported as CORRUPT, naming the file and line', async () => {
    const dir = dirs.make('file-corrupt');
    const a = await open(dir);
    for (let i = 1; i <= 3; i++) await a.append('bad', { kind: 'k', payload: i });
    await a.close();
    const file = path.join(dir, 'bad.jsonl');
    const lines = fileLines(file);
    lines[1] = lines[1]!.replace('"kind"', '"kind');
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const b = await open(dir);
    expect((await b.readRange('bad', 0, 1)).map((e) => e.id)).toEqual([1]);
    const err = await b.readRange('bad', 0, 10).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: EventLogErrorCode.CORRUPT, topic: 'bad' });
    expect((err as Error).message).toContain(`${file} line 2`);
    // The damaged line still starts with its id, so the id sequence is intact and appends go on.
    await expect(b.append('bad', { kind: 'k' })).resolves.toBe(4);

    fs.writeFileSync(file, 'not json at all\n');
    const c = await open(dir);
    await expect(c.latest('bad')).rejects.toMatchObject({ code: EventLogErrorCode.CORRUPT, message: expect.stringContaining(`${file} line 1`) });
    // Without an id to continue from, nothing is appended (an id could be reused).
    await expect(c.append('bad', { kind: 'k' })).rejects.toMatchObject({ code: EventLogErrorCode.CORRUPT });
    expect(fs.readFileSync(file, 'utf8')).toBe('not json at all\n');
  });
});

describe('file event log: read-only mode and bad directories', () => {
  it('read-only: reads work and follow a writer; appends, acks and compaction reject with READ_ONLY', async () => {
    const dir = dirs.make('file-ro');
    const w = await open(dir);
    await w.append('ro', { kind: 'k', payload: 1 });
    await w.ack('ro', 'c', 1);
    const r = await open(dir, true);
    expect((await r.readRange('ro', 0, 10)).map((e) => e.payload)).toEqual([1]);
    expect(await r.consumerCursor('ro', 'c')).toBe(1);
    await w.append('ro', { kind: 'k', payload: 2 });
    expect(await r.latest('ro')).toBe(2);
    expect((await r.readRange('ro', 1, 10)).map((e) => e.payload)).toEqual([2]);
    expect(await r.readRange('missing', 0, 10)).toEqual([]);
    for (const call of [() => r.append('ro', { kind: 'k' }), () => r.ack('ro', 'c', 2), () => r.compact('ro', 2)]) {
      await expect(call()).rejects.toMatchObject({ code: EventLogErrorCode.READ_ONLY, message: expect.stringContaining('read-only') });
    }
    expect(await r.describe()).toMatchObject({ backend: 'file', readOnly: true, location: path.resolve(dir) });
    const before = fs.readdirSync(dir).sort();
    await r.close();
    expect(fs.readdirSync(dir).sort()).toEqual(before);
  });

  it('read-only does not create the directory; read-write creates it with its parents', async () => {
    const base = dirs.make('file-mkdir');
    await expect(open(path.join(base, 'nope'), true)).rejects.toMatchObject({ code: EventLogErrorCode.IO, message: expect.stringContaining('nope') });
    expect(fs.existsSync(path.join(base, 'nope'))).toBe(false);
    const log = await open(path.join(base, 'a', 'b'));
    expect(await log.append('x', { kind: 'k' })).toBe(1);
    expect(fs.existsSync(path.join(base, 'a', 'b', 'x.jsonl'))).toBe(true);
  });

  it('a path that is a file, or below a file, rejects at open with IO and the original error as cause', async () => {
    const base = dirs.make('file-baddir');
    const file = path.join(base, 'plain');
    fs.writeFileSync(file, 'x');
    for (const [dir, readOnly] of [
      [file, false],
      [file, true],
      [path.join(file, 'sub'), false],
    ] as const) {
      const err = await open(dir, readOnly).catch((e: unknown) => e);
      expect(err, dir).toMatchObject({ code: EventLogErrorCode.IO, message: expect.stringContaining(dir) });
    }
    const below = (await open(path.join(file, 'sub')).catch((e: unknown) => e)) as Error;
    expect((below.cause as NodeJS.ErrnoException).code).toMatch(/^(ENOTDIR|EEXIST)$/);
  });

  it('a directory that is not writable rejects at open with IO', async () => {
    const dir = dirs.make('file-unwritable');
    fs.chmodSync(dir, 0o555);
    const source = `
import { openEventLog } from '%RINGLOG%';
const [dir] = process.argv.slice(2);
const out = await openEventLog({ backend: 'file', dir }).then(() => ({ ok: true }), (e) => ({ code: e.code, message: e.message }));
const ro = await openEventLog({ backend: 'file', dir, readOnly: true }).then(async (l) => { await l.close(); return 'opened'; }, (e) => e.code);
console.log(JSON.stringify({ ...out, ro }));
`;
    // root ignores permissions, so the check runs as an unprivileged user there.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = await runChild(source, [dir], asNobody);
    const out = lastJson<{ ok?: boolean; code?: string; message?: string; ro: string }>(r);
    expect(out).toMatchObject({ code: EventLogErrorCode.IO, ro: 'opened' });
    expect(out.message).toContain('not writable');
    fs.chmodSync(dir, 0o755);
  });
});
