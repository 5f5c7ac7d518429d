// One writer per path: the lock a sink takes on its base path (`<basePath>.lock`), with real
// processes and real files — a second lock in this process or in a worker thread, a live child
// holding it, a SIGKILLed holder, a recycled pid, many processes breaking one stale lock at once,
// an unwritable directory, and the lock's files never read as segments.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ErrorCode, listSegments, SinkError } from '../dist/src/index.js';
import { lockPath, type PathLock } from '../dist/src/files/path-lock.js';
import { listNumberedSegments, listSegmentFiles } from '../dist/src/files/format.js';
import { listSetFiles } from '../dist/src/viewer/log-index.js';
import { BASE_NAME, lastJson, runChild, spawnScript, tempDirs, type ChildResult, type SpawnedChild } from './helpers.js';

const dirs = tempDirs();
const held: PathLock[] = [];
afterEach(() => {
  for (const l of held.splice(0)) l.release();
  dirs.cleanup();
});

function take(base: string): PathLock {
  const l = lockPath(base);
  held.push(l);
  return l;
}

/** What lockPath throws; fails the test if it succeeds or throws something else. */
function lockFailure(base: string): SinkError {
  let err: unknown;
  try {
    take(base);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SinkError);
  return err as SinkError;
}

/** The pid of a process that has certainly exited (it was waited for). */
async function deadPid(): Promise<number> {
  const r = await runChild('console.log(JSON.stringify({ pid: process.pid }));');
  return lastJson<{ pid: number }>(r).pid;
}

/** Field 22 of /proc/<pid>/stat (the process's start time), read independently of the library. */
function startTimeOf(pid: number): string {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

/** Lock, owner and guard files of this test's base (the lock's own names, for leftover checks). */
function lockFiles(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.endsWith('.lock') || f.endsWith('.owner') || f.endsWith('.break'));
}

// A child that waits for `gate` (if not '-'), tries the lock, reports on one JSON line, then holds
// the lock until `releaseFile` exists ('-': releases at once) and exits. path-lock.js is found next
// to the library's index (%RINGLOG%), so an unprivileged child gets the world-readable copy too.
const LOCKER = `
import * as fs from 'node:fs';
const { lockPath } = await import(new URL('./files/path-lock.js', '%RINGLOG%').href);
const [base, gate, releaseFile] = process.argv.slice(2);
const nap = new Int32Array(new SharedArrayBuffer(4));
// Polling a file every 2 ms: the start and end signals come from the parent, never a duration.
const waitFor = (f) => { while (!fs.existsSync(f)) Atomics.wait(nap, 0, 0, 2); };
if (gate !== '-') { console.log(JSON.stringify({ ready: true })); waitFor(gate); }
let lock;
try {
  lock = lockPath(base);
  console.log(JSON.stringify({ ok: true, pid: process.pid }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, pid: process.pid, code: e.code, holderPid: e.holderPid, message: e.message, cause: e.cause?.code }));
}
if (lock) {
  if (releaseFile !== '-') waitFor(releaseFile);
  lock.release();
}
`;

interface Report {
  ok: boolean;
  pid: number;
  code?: string;
  holderPid?: number;
  message?: string;
  cause?: string;
}

/**
 * Starts a LOCKER child: `ready` resolves once it waits at its gate, `reported` with its result
 * line (or a failed report if it exits without one).
 */
function startLocker(args: [base: string, gate: string, releaseFile: string]): SpawnedChild & { ready: Promise<void>; reported: Promise<Report> } {
  let buf = '';
  let ready: () => void = () => undefined;
  let report: (r: Report) => void = () => undefined;
  const readyP = new Promise<void>((r) => (ready = r));
  const reported = new Promise<Report>((r) => (report = r));
  const spawned = spawnScript(LOCKER, args, {
    onStdout: (chunk) => {
      buf += chunk;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const line of lines) {
        const v = JSON.parse(line) as Report & { ready?: boolean };
        if (v.ready) ready();
        else report(v);
      }
    },
  });
  // A child that dies before reporting must fail the test, not hang it.
  void spawned.result.then((r: ChildResult) => report({ ok: false, pid: -1, message: `exited (${r.code}, ${r.signal}) before reporting: ${r.stderr}` }));
  return { ...spawned, ready: readyP, reported };
}

describe('path lock: in this process', () => {
  it('a second lock on the path fails with ERR_RINGLOG_LOCKED naming our pid; after release it can be taken again', () => {
    const dir = dirs.make('pl-self');
    const base = path.join(dir, BASE_NAME);
    const first = take(base);
    expect(first.lockPath).toBe(`${base}.lock`);
    const content = JSON.parse(fs.readFileSync(first.lockPath, 'utf8')) as Record<string, unknown>;
    expect(content).toMatchObject({ pid: process.pid, token: expect.stringMatching(/^[0-9a-f]{16}$/), host: os.hostname() });
    if (process.platform === 'linux') expect(content.start).toBe(startTimeOf(process.pid));

    const err = lockFailure(path.join(dir, '.', 'x', '..', BASE_NAME));
    expect(err).toMatchObject({ code: ErrorCode.LOCKED, holderPid: process.pid, sink: base });
    expect(err.message).toBe(
      `ringlog: cannot open event log "${base}": it is held by this process, pid ${process.pid}, through another sink ` +
        `(since ${String(content.since)}; lock file ${base}.lock). One writer per path: close the other sink, or use another path.`,
    );
    // The owner file it linked from is gone; only the lock remains.
    expect(lockFiles(dir)).toEqual([`${BASE_NAME}.lock`]);

    first.release();
    first.release();
    expect(fs.existsSync(`${base}.lock`)).toBe(false);
    const second = take(base);
    second.release();
    expect(lockFiles(dir)).toEqual([]);
  });

  it('two spellings of the path through a symlinked directory collide', () => {
    const dir = dirs.make('pl-symlink');
    const real = path.join(dir, 'real');
    fs.mkdirSync(real);
    fs.symlinkSync(real, path.join(dir, 'alias'));
    take(path.join(real, BASE_NAME));
    expect(lockFailure(path.join(dir, 'alias', BASE_NAME))).toMatchObject({ code: ErrorCode.LOCKED, holderPid: process.pid });
  });

  it('a lock held by a worker thread of this process is live for the main thread, and the other way round', async () => {
    const dir = dirs.make('pl-thread');
    const base = path.join(dir, BASE_NAME);
    const script = path.join(dir, 'worker.mjs');
    fs.writeFileSync(
      script,
      `
import { parentPort, workerData } from 'node:worker_threads';
const { lockPath } = await import(workerData.url);
let lock;
parentPort.on('message', (m) => {
  if (m === 'take') {
    try { lock = lockPath(workerData.base); parentPort.postMessage({ ok: true }); }
    catch (e) { parentPort.postMessage({ ok: false, code: e.code, holderPid: e.holderPid }); }
  } else { lock?.release(); lock = undefined; parentPort.postMessage({ released: true }); }
});
parentPort.postMessage({ ready: true });
`,
    );
    const url = new URL('../dist/src/files/path-lock.js', import.meta.url).href;
    const worker = new Worker(pathToFileURL(script), { workerData: { url, base } });
    const replies: unknown[] = [];
    let wake: () => void = () => undefined;
    worker.on('message', (m) => {
      replies.push(m);
      wake();
    });
    const next = async (): Promise<unknown> => {
      while (replies.length === 0) await new Promise<void>((r) => (wake = r));
      return replies.shift();
    };
    const ask = async (m: string): Promise<unknown> => {
      worker.postMessage(m);
      return next();
    };
    try {
      expect(await next()).toEqual({ ready: true });
      // Each thread has its own globalThis, so only the holding thread's task id in the lock (Linux)
      // tells the other thread that the lock is live.
      expect(await ask('take')).toEqual({ ok: true });
      expect(lockFailure(base)).toMatchObject({ code: ErrorCode.LOCKED, holderPid: process.pid });
      expect(await ask('release')).toEqual({ released: true });
      const mine = take(base);
      expect(await ask('take')).toEqual({ ok: false, code: ErrorCode.LOCKED, holderPid: process.pid });
      mine.release();
      expect(await ask('take')).toEqual({ ok: true });
      expect(await ask('release')).toEqual({ released: true });
      // Terminated while it holds the lock: its thread is gone, so the lock is stale here.
      expect(await ask('take')).toEqual({ ok: true });
      await worker.terminate();
      expect(take(base).lockPath).toBe(`${base}.lock`);
    } finally {
      await worker.terminate();
    }
  });

  it('a worker terminated while it holds the lock frees it at once for the main thread, every time (60 terminations)', async () => {
    // pthread_join (so terminate()) returns while the kernel still lists the ended thread's task,
    // about 1 time in 10 here: the lock must be judged by whether the task is exiting, not only there.
    const dir = dirs.make('pl-terminated');
    const script = path.join(dir, 'worker.mjs');
    fs.writeFileSync(
      script,
      `
import { parentPort, workerData } from 'node:worker_threads';
const { lockPath } = await import(workerData.url);
lockPath(workerData.base);
parentPort.postMessage('held');
setInterval(() => undefined, 1000);
`,
    );
    const url = new URL('../dist/src/files/path-lock.js', import.meta.url).href;
    for (let i = 0; i < 60; i++) {
      const base = path.join(dir, `set-${i}.jsonl`);
      const worker = new Worker(pathToFileURL(script), { workerData: { url, base } });
      try {
        await new Promise((resolve, reject) => {
          worker.once('message', resolve);
          worker.once('error', reject);
        });
      } finally {
        await worker.terminate();
      }
      expect(take(base).lockPath).toBe(`${base}.lock`);
    }
  });
});

describe('path lock: other processes', () => {
  it('a live child holding the path makes lockPath fail with its pid; SIGKILLed, its lock is taken over', async () => {
    const dir = dirs.make('pl-child');
    const base = path.join(dir, BASE_NAME);
    const holder = startLocker([base, '-', path.join(dir, 'never')]);
    try {
      const rep = await holder.reported;
      expect(rep, rep.message).toMatchObject({ ok: true, pid: holder.child.pid });
      const err = lockFailure(base);
      expect(err).toMatchObject({ code: ErrorCode.LOCKED, holderPid: holder.child.pid });
      expect(err.message).toContain(`it is held by pid ${holder.child.pid} (since `);
      expect(err.message).toContain(`lock file ${base}.lock). One writer per path`);
    } finally {
      holder.child.kill('SIGKILL');
    }
    const r = await holder.result;
    expect(r.signal).toBe('SIGKILL');
    // The dead holder's lock is still on disk, and is taken over.
    expect(JSON.parse(fs.readFileSync(`${base}.lock`, 'utf8'))).toMatchObject({ pid: holder.child.pid });
    const l = take(base);
    expect(JSON.parse(fs.readFileSync(l.lockPath, 'utf8'))).toMatchObject({ pid: process.pid });
    l.release();
    expect(lockFiles(dir)).toEqual([]);
  });

  it('release leaves alone a lock that is no longer ours', async () => {
    const dir = dirs.make('pl-not-ours');
    const base = path.join(dir, BASE_NAME);
    const mine = take(base);
    fs.unlinkSync(mine.lockPath); // removed by hand behind the holder's back
    const other = startLocker([base, '-', path.join(dir, 'release')]);
    try {
      expect(await other.reported).toMatchObject({ ok: true });
      mine.release();
      expect(JSON.parse(fs.readFileSync(`${base}.lock`, 'utf8'))).toMatchObject({ pid: other.child.pid });
    } finally {
      fs.writeFileSync(path.join(dir, 'release'), '');
    }
    expect((await other.result).code).toBe(0);
    expect(lockFiles(dir)).toEqual([]);
  });

  it.skipIf(process.platform !== 'linux')('a lock whose pid is alive but started at another time (a recycled pid) is taken over', () => {
    const dir = dirs.make('pl-recycled');
    const base = path.join(dir, BASE_NAME);
    const pid = process.ppid;
    const record = { pid, token: '0123456789abcdef', host: os.hostname(), since: '2026-01-01T00:00:00.000Z' };
    // The same pid with its real start time is a live holder: the start time alone decides.
    fs.writeFileSync(`${base}.lock`, JSON.stringify({ ...record, start: startTimeOf(pid) }));
    expect(lockFailure(base)).toMatchObject({ code: ErrorCode.LOCKED, holderPid: pid });
    fs.writeFileSync(`${base}.lock`, JSON.stringify({ ...record, start: String(Number(startTimeOf(pid)) + 1) }));
    const l = take(base);
    expect(JSON.parse(fs.readFileSync(l.lockPath, 'utf8'))).toMatchObject({ pid: process.pid });
    l.release();
    expect(lockFiles(dir)).toEqual([]);
  });

  it.skipIf(process.platform !== 'linux')('a lock naming this very pid and thread, from a process that started at another time (a restarted container\'s pid 1), is taken over', () => {
    const dir = dirs.make('pl-same-pid');
    const base = path.join(dir, BASE_NAME);
    // The main thread's task id is the pid: an earlier process with our pid recorded the thread
    // that is our main thread now.
    const record = { pid: process.pid, token: '0123456789abcdef', host: os.hostname(), since: '2026-01-01T00:00:00.000Z', tid: String(process.pid) };
    fs.writeFileSync(`${base}.lock`, JSON.stringify({ ...record, start: String(Number(startTimeOf(process.pid)) + 1) }));
    const l = take(base);
    expect(JSON.parse(fs.readFileSync(l.lockPath, 'utf8'))).toMatchObject({ pid: process.pid, token: l.token });
    l.release();
    expect(lockFiles(dir)).toEqual([]);
  });

  it('a holder on another host is treated as live, and the message says it cannot be checked', () => {
    const dir = dirs.make('pl-host');
    const base = path.join(dir, BASE_NAME);
    // Any pid: a holder on another host is never looked up here.
    const pid = 4242;
    fs.writeFileSync(`${base}.lock`, JSON.stringify({ pid, token: '0123456789abcdef', host: `not-${os.hostname()}` }));
    const err = lockFailure(base);
    expect(err).toMatchObject({ code: ErrorCode.LOCKED, holderPid: pid });
    expect(err.message).toContain(`held by pid ${pid} on host "not-${os.hostname()}"`);
    expect(err.message).toContain('cannot tell whether that process still runs');
  });

  it('many processes breaking one stale lock at once: exactly one wins, the others get ERR_RINGLOG_LOCKED naming it', async () => {
    const dir = dirs.make('pl-race');
    const base = path.join(dir, BASE_NAME);
    // Six openers on a machine with few cores: enough to interleave link, read and break calls.
    const children = 6;
    const rounds = 3;
    for (let round = 0; round < rounds; round++) {
      const stalePid = await deadPid();
      fs.writeFileSync(`${base}.lock`, JSON.stringify({ pid: stalePid, token: 'fedcba987654321' + round, host: os.hostname() }));
      const gate = path.join(dir, `gate-${round}`);
      const release = path.join(dir, `release-${round}`);
      const lockers = Array.from({ length: children }, () => startLocker([base, gate, release]));
      try {
        await Promise.all(lockers.map((l) => l.ready));
        fs.writeFileSync(gate, '');
        const reports = await Promise.all(lockers.map((l) => l.reported));
        const winners = reports.filter((r) => r.ok);
        expect(winners, JSON.stringify(reports)).toHaveLength(1);
        const winner = winners[0]!.pid;
        for (const r of reports.filter((x) => !x.ok)) expect(r, r.message).toMatchObject({ code: ErrorCode.LOCKED, holderPid: winner });
        expect(JSON.parse(fs.readFileSync(`${base}.lock`, 'utf8'))).toMatchObject({ pid: winner });
      } finally {
        fs.writeFileSync(release, '');
      }
      for (const r of await Promise.all(lockers.map((l) => l.result))) expect(r.code, r.stderr).toBe(0);
      // No lock, owner file or guard outlives the round.
      expect(lockFiles(dir)).toEqual([]);
    }
  });

  it('an unwritable directory fails with ERR_RINGLOG_OPEN and the system error as cause', async () => {
    const dir = dirs.make('pl-unwritable');
    fs.chmodSync(dir, 0o555);
    // root ignores permissions, so the check runs as an unprivileged user there.
    const asNobody = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const r = await runChild(LOCKER, [path.join(dir, BASE_NAME), '-', '-'], asNobody);
    const rep = lastJson<Report>(r);
    expect(rep).toMatchObject({ ok: false, code: ErrorCode.OPEN, cause: 'EACCES' });
    expect(rep.message).toContain(`cannot create its lock file ${path.join(dir, BASE_NAME)}.lock`);
    fs.chmodSync(dir, 0o755);
    expect(fs.readdirSync(dir)).toEqual([]);
  });
});

describe('path lock: files', () => {
  it('leftovers of openers killed mid-lock are swept once their holders are gone; live ones stay', async () => {
    const dir = dirs.make('pl-leftovers');
    const base = path.join(dir, BASE_NAME);
    const dead = await deadPid();
    const host = os.hostname();
    // The names lockPath and the break protocol use: <name>.<pid>.<token>.owner, <name>.<token>.break.
    const deadOwner = `${BASE_NAME}.${dead}.1111111111111111.owner`;
    const liveOwner = `${BASE_NAME}.${process.ppid}.2222222222222222.owner`;
    const deadGuard = `${BASE_NAME}.3333333333333333.break`;
    fs.writeFileSync(path.join(dir, deadOwner), JSON.stringify({ pid: dead, token: '1111111111111111', host }));
    fs.writeFileSync(path.join(dir, liveOwner), ''); // an opener that has not written its record yet
    fs.writeFileSync(path.join(dir, deadGuard), JSON.stringify({ pid: dead, token: '1111111111111111', host }));
    take(base);
    expect(lockFiles(dir).sort()).toEqual([`${BASE_NAME}.lock`, liveOwner].sort());
  });

  it('the lock, owner and guard files are never taken for segments', async () => {
    const dir = dirs.make('pl-segments');
    const base = path.join(dir, BASE_NAME);
    const line = '{"index":0,"emitted_at_ms":1,"frame_depth":null}\n';
    fs.writeFileSync(base, line);
    fs.writeFileSync(path.join(dir, 'event_log-000001.jsonl'), line);
    fs.writeFileSync(path.join(dir, 'event_log-000002.jsonl.gz'), '');
    take(base);
    // What an opener or breaker has next to the lock while it works (live: this process's pid).
    fs.writeFileSync(path.join(dir, `${BASE_NAME}.${process.pid}.4444444444444444.owner`), '');
    fs.writeFileSync(path.join(dir, `${BASE_NAME}.5555555555555555.break`), '');
    const set = [base, path.join(dir, 'event_log-000001.jsonl'), path.join(dir, 'event_log-000002.jsonl.gz')];
    expect(listSegmentFiles(base).map((s) => s.path)).toEqual(set);
    expect(listNumberedSegments(base).map((s) => s.n)).toEqual([1]);
    expect((await listSegments(base)).map((s) => s.path)).toEqual(set);
    expect((await listSetFiles(base)).map((s) => s.path)).toEqual(set);
  });
});
