// The SQLite backend beyond the shared contract (test/event-log.test.ts): restarts, read-only
// opens, several processes on one database, lock waits, a dead worker, and hosts without
// better-sqlite3.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { EventLogError, EventLogErrorCode, openEventLog, type EventLog } from '../dist/src/index.js';
import { lastJson, runChild, runChildWithEnv, spawnScript, tempDirs } from './helpers.js';

const dirs = tempDirs();
const opened: EventLog[] = [];
afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((l) => l.close()));
  dirs.cleanup();
});

async function openSqlite(sqlitePath: string, extra: { readOnly?: boolean; busyTimeoutMs?: number } = {}): Promise<EventLog> {
  const log = await openEventLog({ backend: 'sqlite', sqlitePath, ...extra });
  opened.push(log);
  return log;
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

async function rejection(p: Promise<unknown>): Promise<EventLogError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(EventLogError);
  return err as EventLogError;
}

function fileSize(p: string): number {
  try {
    return fs.statSync(p).size;
  } catch {
    return 0;
  }
}

describe('sqlite backend: restarts', () => {
  it('after close and reopen, ids, cursors and compaction continue; ids are never reused', async () => {
    const db = path.join(dirs.make('sqlite-restart'), 'nested', 'log.sqlite');
    let log = await openSqlite(db);
    expect(await Promise.all(range(1, 5).map((i) => log.append('a', { kind: 'k', payload: i })))).toEqual(range(1, 5));
    expect(await log.append('b', { kind: 'k' })).toBe(1);
    await log.ack('a', 'reader', 3);
    await log.ack('a', 'reader', 2); // never moves back
    expect(await log.compact('a', 2)).toEqual({ removed: 2, remaining: 3, latest: 5 });
    await log.close();

    log = await openSqlite(db);
    expect(await log.latest('a')).toBe(5);
    expect(await log.consumerCursor('a', 'reader')).toBe(3);
    expect(await log.consumerCursor('b', 'reader')).toBeNull();
    expect(await log.append('a', { kind: 'k', payload: 6 })).toBe(6);
    expect(await log.append('b', { kind: 'k' })).toBe(2);
    const events = await log.readRange('a', 0, 100);
    expect(events.map((e) => e.id)).toEqual([3, 4, 5, 6]);
    expect(events.map((e) => e.payload)).toEqual([3, 4, 5, 6]);
    // Everything compacted away: the topic row still remembers the last id.
    expect(await log.compact('a', 1000)).toEqual({ removed: 4, remaining: 0, latest: 6 });
    await log.close();

    log = await openSqlite(db);
    expect(await log.latest('a')).toBe(6);
    expect(await log.readRange('a', 0, 100)).toEqual([]);
    expect(await log.append('a', { kind: 'k' })).toBe(7);
    expect(await log.compact('never-written', 10)).toEqual({ removed: 0, remaining: 0, latest: null });
  });

  it('describe() reports the database path and the bytes of the database, -wal and -shm files', async () => {
    const db = path.join(dirs.make('sqlite-describe'), 'log.sqlite');
    const log = await openSqlite(db);
    for (let i = 0; i < 50; i++) await log.append('t', { kind: 'k', payload: 'x'.repeat(1000) });
    const d = await log.describe();
    // Nothing writes between the describe() and these stats: the worker is idle.
    const expected = fileSize(db) + fileSize(`${db}-wal`) + fileSize(`${db}-shm`);
    expect(d).toEqual({ backend: 'sqlite', location: db, sizeBytes: expected, queueDepth: 1024, readOnly: false });
    expect(fileSize(`${db}-wal`)).toBeGreaterThan(0);
    // 50 events of 1000 bytes each are in there somewhere.
    expect(d.sizeBytes).toBeGreaterThan(50_000);
  });

  it('an event acknowledged by append() survives a process that exits without close()', async () => {
    const db = path.join(dirs.make('sqlite-noclose'), 'log.sqlite');
    const r = await runChild(
      `import { openEventLog } from '%RINGLOG%';
       const log = await openEventLog({ backend: 'sqlite', sqlitePath: process.argv[2] });
       const ids = await Promise.all([1, 2, 3].map((i) => log.append('t', { kind: 'k', payload: i })));
       console.log(JSON.stringify({ ids }));
       // no close(): the idle worker must not keep the process alive`,
      [db],
      { timeoutMs: 30_000 },
    );
    // The process ended on its own: an idle worker holding it would have it killed at the deadline.
    expect(r.timedOut).toBe(false);
    expect(r.code).toBe(0);
    expect(lastJson<{ ids: number[] }>(r).ids).toEqual([1, 2, 3]);
    const log = await openSqlite(db);
    expect((await log.readRange('t', 0, 10)).map((e) => e.payload)).toEqual([1, 2, 3]);
  });
});

describe('sqlite backend: read-only', () => {
  it('refuses to create a database', async () => {
    const db = path.join(dirs.make('sqlite-ro-missing'), 'absent.sqlite');
    const err = await rejection(openEventLog({ backend: 'sqlite', sqlitePath: db, readOnly: true }));
    expect(err.code).toBe(EventLogErrorCode.IO);
    expect(err.message).toContain(db);
    expect(fs.existsSync(db)).toBe(false);
  });

  it('appends, acks and compaction reject with READ_ONLY; reads work while a read-write log appends', async () => {
    const db = path.join(dirs.make('sqlite-ro'), 'log.sqlite');
    const rw = await openSqlite(db);
    for (const i of range(1, 3)) await rw.append('t', { kind: 'k', payload: i });
    await rw.ack('t', 'c', 2);
    const ro = await openSqlite(db, { readOnly: true });

    const appendErr = await rejection(ro.append('t', { kind: 'k' }));
    expect(appendErr.code).toBe(EventLogErrorCode.READ_ONLY);
    expect(appendErr.message).toMatch(/read-only/);
    expect(appendErr.message).toContain(db);
    expect((await rejection(ro.ack('t', 'c', 3))).code).toBe(EventLogErrorCode.READ_ONLY);
    expect((await rejection(ro.compact('t', 2))).code).toBe(EventLogErrorCode.READ_ONLY);
    // Misuse is still a synchronous TypeError, read-only or not.
    expect(() => ro.append('t', { kind: '' })).toThrow(TypeError);
    await ro.flush();

    expect((await ro.readRange('t', 0, 10)).map((e) => e.payload)).toEqual([1, 2, 3]);
    expect(await ro.consumerCursor('t', 'c')).toBe(2);
    expect(await ro.describe()).toMatchObject({ backend: 'sqlite', location: db, readOnly: true });

    // The writer appends 200 more while the reader polls: the reader always sees a gap-free prefix.
    const writing = (async () => {
      for (let i = 4; i <= 203; i++) await rw.append('t', { kind: 'k', payload: i });
    })();
    let seen = 3;
    let polls = 0;
    while (seen < 203) {
      const latest = (await ro.latest('t'))!;
      expect(latest).toBeGreaterThanOrEqual(seen);
      const got = await ro.readRange('t', 0, 1000);
      expect(got.map((e) => e.id)).toEqual(range(1, got.length));
      expect(got.length).toBeGreaterThanOrEqual(latest);
      seen = got.length;
      polls++;
    }
    await writing;
    expect(polls).toBeGreaterThan(1);
    expect(await ro.latest('t')).toBe(203);
    await ro.close();
    // The writer is unaffected by the reader closing.
    expect(await rw.append('t', { kind: 'k' })).toBe(204);
  });

  it('reads a database that has no tables yet as empty', async () => {
    const db = path.join(dirs.make('sqlite-ro-empty'), 'empty.sqlite');
    // A zero-byte file is a valid, empty SQLite database.
    fs.writeFileSync(db, '');
    const ro = await openSqlite(db, { readOnly: true });
    expect(await ro.readRange('t', 0, 10)).toEqual([]);
    expect(await ro.latest('t')).toBeNull();
    expect(await ro.consumerCursor('t', 'c')).toBeNull();
    // A writer creates the tables later; the open reader notices.
    const rw = await openSqlite(db);
    await rw.append('t', { kind: 'k' });
    expect(await ro.latest('t')).toBe(1);
  });
});

describe('sqlite backend: concurrency and locks', () => {
  it('two processes appending to one new database and topic get ids 1..N exactly once', async () => {
    const db = path.join(dirs.make('sqlite-procs'), 'shared.sqlite');
    const go = path.join(path.dirname(db), 'go');
    const PER_CHILD = 400;
    const child = `
      import * as fs from 'node:fs';
      import { openEventLog } from '%RINGLOG%';
      const [db, go, who, n] = process.argv.slice(2);
      const log = await openEventLog({ backend: 'sqlite', sqlitePath: db });
      console.log('ready');
      while (!fs.existsSync(go)) await new Promise((r) => setTimeout(r, 5));
      const ids = [];
      // Bursts of different sizes, so batches of both processes interleave.
      for (let i = 0; i < Number(n); ) {
        const burst = [];
        for (let k = 0; k < 1 + (i % 7) && i < Number(n); k++, i++) burst.push(log.append('shared', { kind: 'k', payload: { who, i } }));
        ids.push(...(await Promise.all(burst)));
      }
      await log.close();
      console.log(JSON.stringify({ ids }));`;
    let ready = 0;
    const onStdout = (chunk: string): void => {
      ready += chunk.split('\n').filter((l) => l === 'ready').length;
      if (ready === 2) fs.writeFileSync(go, '');
    };
    // Both children create the database at the same moment: the schema setup must be race-free too.
    const a = spawnScript(child, [db, go, 'a', String(PER_CHILD)], { onStdout });
    const b = spawnScript(child, [db, go, 'b', String(PER_CHILD)], { onStdout });
    const [ra, rb] = await Promise.all([a.result, b.result]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const idsA = lastJson<{ ids: number[] }>(ra).ids;
    const idsB = lastJson<{ ids: number[] }>(rb).ids;
    // Each process's own ids rise in call order.
    expect(idsA).toEqual([...idsA].sort((x, y) => x - y));
    expect(idsB).toEqual([...idsB].sort((x, y) => x - y));
    expect([...idsA, ...idsB].sort((x, y) => x - y)).toEqual(range(1, 2 * PER_CHILD));

    const log = await openSqlite(db);
    const all = await log.readRange('shared', 0, 10_000);
    expect(all.map((e) => e.id)).toEqual(range(1, 2 * PER_CHILD));
    for (const [who, ids] of [['a', idsA], ['b', idsB]] as const) {
      const mine = all.filter((e) => (e.payload as { who: string }).who === who);
      expect(mine.map((e) => e.id)).toEqual(ids);
      expect(mine.map((e) => (e.payload as { i: number }).i)).toEqual(range(0, PER_CHILD - 1));
    }
  });

  it('an append waits for another connection’s write lock (busy timeout) without blocking the caller', async () => {
    const db = path.join(dirs.make('sqlite-busy'), 'log.sqlite');
    // A busy timeout far beyond the test's span: while the lock is held the append can only wait.
    const log = await openSqlite(db, { busyTimeoutMs: 600_000 });
    await log.append('t', { kind: 'k' });
    const other = new Database(db);
    try {
      other.exec('BEGIN IMMEDIATE');
      let settled = false;
      const appended = log.append('t', { kind: 'k' }).finally(() => {
        settled = true;
      });
      // Enough turns of the caller's loop for the worker to reach the lock. That they happen at
      // all, and that the COMMIT below runs on this thread, shows the caller is not blocked.
      for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 20));
      expect(settled, 'the append cannot finish while the lock is held').toBe(false);
      other.exec('COMMIT');
      expect(await appended).toBe(2);
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
    }
    expect((await log.readRange('t', 0, 10)).map((e) => e.id)).toEqual([1, 2]);
  });

  it('an append that outwaits busyTimeoutMs rejects with IO naming SQLITE_BUSY; the next one gets the next id', async () => {
    const db = path.join(dirs.make('sqlite-busy-fail'), 'log.sqlite');
    const log = await openSqlite(db, { busyTimeoutMs: 50 });
    // A second connection with a long busy timeout, blocked by the same lock: the option of each
    // log decides whether it gives up or waits.
    const patient = await openSqlite(db, { busyTimeoutMs: 600_000 });
    await log.append('t', { kind: 'k' });
    const other = new Database(db);
    let patientSettled = false;
    let patientAppend: Promise<number> | undefined;
    try {
      other.exec('BEGIN IMMEDIATE');
      patientAppend = patient.append('t', { kind: 'p' }).finally(() => {
        patientSettled = true;
      });
      const err = await rejection(log.append('t', { kind: 'k' }));
      expect(err.code).toBe(EventLogErrorCode.IO);
      expect(err.message).toMatch(/SQLITE_BUSY/);
      expect(err.topic).toBe('t');
      // It gave up while the lock was still held, and the patient one is still waiting.
      expect(other.inTransaction).toBe(true);
      expect(patientSettled).toBe(false);
      other.exec('COMMIT');
    } finally {
      if (other.inTransaction) other.exec('ROLLBACK');
      other.close();
    }
    expect(await patientAppend).toBe(2);
    expect(await log.append('t', { kind: 'k' })).toBe(3);
    expect((await log.readRange('t', 0, 10)).map((e) => e.kind)).toEqual(['k', 'p', 'k']);
  });

  it('flush() resolves while another connection pins an old snapshot (the WAL is then synced directly)', async () => {
    const db = path.join(dirs.make('sqlite-flush'), 'log.sqlite');
    const log = await openSqlite(db);
    await log.append('t', { kind: 'k' });
    const reader = new Database(db, { readonly: true });
    try {
      reader.exec('BEGIN');
      expect(reader.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 1 });
      for (let i = 0; i < 20; i++) await log.append('t', { kind: 'k' });
      await log.flush();
      // The reader's snapshot is unchanged; a fresh read sees everything.
      expect(reader.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 1 });
      reader.exec('COMMIT');
      expect(reader.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: 21 });
    } finally {
      reader.close();
    }
    await log.flush();
    // With no reader in the way the checkpoint copies the whole WAL into the database file.
    const check = new Database(db, { readonly: true });
    try {
      expect(check.prepare('SELECT latest FROM topics WHERE topic = ?').pluck().get('t')).toBe(21);
    } finally {
      check.close();
    }
  });

  it('when the worker dies, pending and later calls reject with IO', async () => {
    const db = path.join(dirs.make('sqlite-dead'), 'log.sqlite');
    const log = await openSqlite(db);
    await log.append('t', { kind: 'k' });
    // Reaching into the implementation is the only way to kill the thread from outside. It is
    // idle here: terminating it inside a better-sqlite3 call that then throws aborts the whole
    // process (WiseLibs/better-sqlite3#842), one more reason the library itself never terminates it.
    const worker = (log as unknown as { worker: { terminate(): Promise<number> } }).worker;
    const terminated = worker.terminate();
    // Posted after the thread was told to stop: no JavaScript runs there any more to answer them.
    const read = log.readRange('t', 0, 10);
    const pending = log.append('t', { kind: 'k' });
    await terminated;
    expect((await rejection(pending)).code).toBe(EventLogErrorCode.IO);
    expect((await rejection(read)).code).toBe(EventLogErrorCode.IO);
    const later = await rejection(log.latest('t'));
    expect(later.code).toBe(EventLogErrorCode.IO);
    expect(later.message).toMatch(/worker .* stopped/);
    await log.close();
    expect((await rejection(log.latest('t'))).code).toBe(EventLogErrorCode.CLOSED);
  });
});

describe('sqlite backend: without better-sqlite3', () => {
  it('an installed copy without node_modules/better-sqlite3: memory and file work, sqlite rejects with UNAVAILABLE and the install hint', async () => {
    const root = dirs.make('sqlite-missing');
    const pkg = path.join(root, 'ringlog');
    const dist = new URL('../dist/', import.meta.url);
    for (const sub of ['src']) fs.cpSync(new URL(sub, dist), path.join(pkg, 'dist', sub), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'ringlog', type: 'module', main: './dist/src/index.js' }));
    const r = await runChildWithEnv(
      `import { createRequire } from 'node:module';
       const [entry, dir] = process.argv.slice(2);
       const out = {};
       try {
         createRequire(entry).resolve('better-sqlite3');
         out.resolvable = true;
       } catch {
         out.resolvable = false;
       }
       const { openEventLog } = await import(entry);
       const mem = await openEventLog({ backend: 'memory' });
       out.memory = [await mem.append('t', { kind: 'k' }), (await mem.readRange('t', 0, 10)).length];
       await mem.close();
       const file = await openEventLog({ backend: 'file', dir: dir + '/files' });
       out.file = [await file.append('t', { kind: 'k' }), (await file.readRange('t', 0, 10)).length];
       await file.close();
       try {
         await openEventLog({ backend: 'sqlite', sqlitePath: dir + '/x.sqlite' });
         out.sqlite = 'opened';
       } catch (err) {
         out.sqlite = { name: err.name, code: err.code, message: err.message };
       }
       console.log(JSON.stringify(out));`,
      [pathToFileURL(path.join(pkg, 'dist', 'src', 'index.js')).href, root],
      // NODE_PATH would let resolution escape the copy.
      { env: { NODE_PATH: '' }, cwd: root },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<{ resolvable: boolean; memory: number[]; file: number[]; sqlite: { name: string; code: string; message: string } | string }>(r);
    expect(out.resolvable).toBe(false);
    expect(out.memory).toEqual([1, 1]);
    expect(out.file).toEqual([1, 1]);
    expect(out.sqlite).toEqual({
      name: 'EventLogError',
      code: EventLogErrorCode.UNAVAILABLE,
      message: 'ringlog: the sqlite backend needs the optional dependency better-sqlite3: npm install better-sqlite3',
    });
    expect(fs.existsSync(path.join(root, 'x.sqlite'))).toBe(false);
  });

  it('a better-sqlite3 that resolves but does not load (its native binding broken) also rejects with UNAVAILABLE', async () => {
    const root = dirs.make('sqlite-broken');
    // The built library in a directory of its own, beside a better-sqlite3 whose entry throws as a
    // missing or mismatched native binding does: the owner's resolve succeeds, the thread's load fails.
    const pkg = path.join(root, 'ringlog');
    fs.cpSync(new URL('../dist/src', import.meta.url), path.join(pkg, 'dist', 'src'), { recursive: true });
    fs.writeFileSync(path.join(pkg, 'package.json'), JSON.stringify({ name: 'ringlog', type: 'module', main: './dist/src/index.js' }));
    const stub = path.join(root, 'node_modules', 'better-sqlite3');
    fs.mkdirSync(stub, { recursive: true });
    fs.writeFileSync(path.join(stub, 'package.json'), JSON.stringify({ name: 'better-sqlite3', main: 'index.js' }));
    fs.writeFileSync(
      path.join(stub, 'index.js'),
      `const err = new Error('Could not locate the bindings file (broken on purpose by the test)');\nerr.code = 'ERR_DLOPEN_FAILED';\nthrow err;\n`,
    );
    const r = await runChildWithEnv(
      `const { openEventLog } = await import(process.argv[2]);
       try {
         await openEventLog({ backend: 'sqlite', sqlitePath: process.argv[3] });
         console.log(JSON.stringify({ opened: true }));
       } catch (err) {
         console.log(JSON.stringify({ code: err.code, message: err.message }));
       }`,
      [pathToFileURL(path.join(pkg, 'dist', 'src', 'index.js')).href, path.join(root, 'x.sqlite')],
      { env: { NODE_PATH: '' }, cwd: root },
    );
    expect(r.code, r.stderr).toBe(0);
    const out = lastJson<{ code?: string; message?: string }>(r);
    expect(out.code).toBe(EventLogErrorCode.UNAVAILABLE);
    expect(out.message).toMatch(/needs the optional dependency better-sqlite3.*broken on purpose by the test.*npm install better-sqlite3/);
  });
});
