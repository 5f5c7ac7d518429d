// One writer per path: the sink's lock on its base path, `<basePath>.lock`, taken synchronously at
// open() and held until close() (or process exit). It runs the cross-process protocol of
// lock-protocol.ts (link(2) of a complete owner file, guarded stale-lock breaking); this file only
// drives it synchronously and turns its outcomes into SinkErrors.
//
// Files, next to the set (`<name>` is the base file's name, e.g. event_log.jsonl):
//   <name>.lock                     the lock: a hard link of the owner file, so complete on arrival.
//   <name>.<pid>.<token>.owner      the owner file, only while lockPath() runs.
//   <name>.<token>.break            a guard, only while a stale lock is being broken.
// None of them matches a segment name: segments are `<name>` itself or `<stem>-<6+ digits>.<ext>`,
// each optionally followed by `.gz` or `.gz.tmp` (segments.ts, reader/files.ts, viewer/log-index.ts).
//
// Within this process the lock file alone would refuse a second sink on the path, but a registry
// keyed by the directory's real path gives the clearer message, and still refuses when the lock
// file was deleted behind the holder's back.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { ErrorCode, SinkError } from '../errors.js';
import { sleepSync } from '../ring/wait.js';
import {
  BACKOFF_MAX_MS,
  BACKOFF_START_MS,
  breakStale,
  GUARD_RE,
  holderElsewhere,
  holderStale,
  liveTokens,
  newToken,
  ownerText,
  parseHolder,
  readHolderSync,
  removeDeadGuard,
  type Holder,
} from './lock-protocol.js';

export interface PathLock {
  /** The lock file, `<basePath>.lock` (absolute). */
  readonly lockPath: string;
  /** The token the lock file carries while it is this lock's. */
  readonly token: string;
  /** Removes the lock if it is still ours. Idempotent, synchronous, never throws. */
  release(): void;
}

/**
 * How long lockPath() waits, in total, while another live process is breaking the same stale lock.
 * That process is a few syscalls from done, so it normally takes microseconds; 2 s leaves room for
 * a breaker descheduled on a loaded machine, while bounding how long a synchronous open() can
 * block when the breaker is stopped (SIGSTOP, a debugger).
 */
const BREAK_WAIT_MS = 2000;

const HELD_KEY = Symbol.for('ringlog.path-lock.held');
/** Paths locked by this realm, by canonical path: the token and the time taken. */
function heldHere(): Map<string, { token: string; since: string }> {
  const g = globalThis as unknown as Record<symbol, Map<string, { token: string; since: string }> | undefined>;
  return (g[HELD_KEY] ??= new Map());
}

/** The path with its directory's symlinks resolved, so two spellings of one file compare equal. */
function canonical(abs: string): string {
  try {
    // The native realpath(3): one call, where the JavaScript one stats each component (32 against
    // 9 µs a call, measured here); both resolve the same links.
    return path.join(fs.realpathSync.native(path.dirname(abs)), path.basename(abs));
  } catch {
    return abs;
  }
}

/**
 * Takes `<basePath>.lock`; throws SinkError code ERR_RINGLOG_LOCKED when a live holder has it.
 * `freshDir`: the caller made the directory just now, so no opener can have left anything there.
 */
export function lockPath(basePath: string, freshDir = false): PathLock {
  const abs = path.resolve(basePath);
  const dir = path.dirname(abs);
  const name = path.basename(abs);
  const lockFile = `${abs}.lock`;
  const key = canonical(abs);
  const mine = heldHere().get(key);
  if (mine !== undefined) throw lockedError(abs, lockFile, { pid: process.pid, token: mine.token, since: mine.since });

  const token = newToken();
  const ownerPath = path.join(dir, `${name}.${process.pid}.${token}.owner`);
  let fd: number;
  try {
    fd = fs.openSync(ownerPath, 'wx');
  } catch (err) {
    throw openError(abs, `cannot create its lock file ${lockFile}`, err);
  }
  // Where the thread cannot be named (not Linux), the descriptor stays open on the owner's inode,
  // which becomes the lock's, until release: how another thread of this process recognises the
  // lock as live then (holderStale).
  liveTokens().add(token);
  let text = '';
  try {
    try {
      text = ownerText(token, fs.fstatSync(fd, { bigint: true }));
      fs.writeFileSync(fd, text);
    } catch (err) {
      throw openError(abs, `cannot create its lock file ${lockFile}`, err);
    }
    take(abs, dir, name, lockFile, { ownerPath, token });
  } catch (err) {
    liveTokens().delete(token);
    fs.closeSync(fd);
    removeQuietly(ownerPath);
    throw err;
  }
  // The lock holds the content now; the owner name was only needed to link from.
  removeQuietly(ownerPath);
  const record = parseHolder(text);
  // Where the lock names the holding thread (Linux), that is how other threads of this process
  // tell it is live: no descriptor is kept per lock, so thousands of sinks do not use thousands.
  if (record.tid !== undefined) {
    fs.closeSync(fd);
    fd = -1;
  }
  const since = record.since ?? new Date().toISOString();
  heldHere().set(key, { token, since });
  if (!freshDir) removeLeftovers(dir, name);

  let released = false;
  return {
    lockPath: lockFile,
    token,
    release(): void {
      if (released) return;
      released = true;
      try {
        // Only a lock that still carries our token is ours to remove: if someone removed it by
        // hand and another sink took the path since, that sink's lock stays.
        if (readHolderSync(lockFile)?.token === token) fs.unlinkSync(lockFile);
      } catch {
        // Left in place, it carries a token no longer live here: stale, taken over at the next open.
      }
      try {
        if (fd !== -1) fs.closeSync(fd);
      } catch {
        // Already closed by someone else's mistake: nothing of ours is left to free.
      }
      liveTokens().delete(token);
      if (heldHere().get(key)?.token === token) heldHere().delete(key);
    },
  };
}

/** The retry loop: link until we hold the lock, breaking stale ones; throws when a live process holds it. */
function take(abs: string, dir: string, name: string, lockFile: string, taker: { ownerPath: string; token: string }): void {
  let waited = 0;
  let backoff = BACKOFF_START_MS;
  // Each step says what failed: EACCES on reading the lock differs from EACCES on creating it.
  const step = <T>(what: string, fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw openError(abs, `${what} ${lockFile}`, err);
    }
  };
  for (;;) {
    const linked = step('cannot create its lock file', () => {
      try {
        fs.linkSync(taker.ownerPath, lockFile);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw err;
      }
    });
    if (linked) return;
    const holder = step('cannot read its lock file', () => readHolderSync(lockFile));
    if (holder === null) continue; // released between our link and our read
    if (!holderStale(holder)) throw lockedError(abs, lockFile, holder);
    const breaker = step('cannot remove the stale lock file', () => breakStale(taker, dir, name, holder.token));
    if (breaker === null) continue;
    // Another live process is breaking the same stale lock: it will hold the path in a moment.
    if (waited >= BREAK_WAIT_MS) throw lockedError(abs, lockFile, breaker, true);
    // Jitter keeps racing openers from retrying in lockstep.
    const ms = backoff * (0.5 + Math.random());
    sleepSync(ms);
    waited += ms;
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  }
}

/**
 * Owner files and guards that a process killed inside lockPath() left next to the set. Best
 * effort: one readdir per open, and each leftover is removed only once its holder is gone.
 */
function removeLeftovers(dir: string, name: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  const prefix = `${name}.`;
  for (const e of entries) {
    if (!e.startsWith(prefix)) continue;
    try {
      const owner = /^(\d+)\.([0-9a-f]{16})\.owner$/.exec(e.slice(prefix.length));
      if (owner) {
        // The pid and token come from the name: a live opener may not have written the content yet.
        const file = path.join(dir, e);
        const recorded = readHolderSync(file);
        const holder: Holder = { ...(recorded?.pid != null ? recorded : {}), pid: Number(owner[1]), token: owner[2]! };
        if (holderStale(holder)) removeQuietly(file);
      } else if (GUARD_RE.exec(e)?.[1] === name) removeDeadGuard(dir, e);
    } catch {
      // Another opener is cleaning up too, or the entry is not ours: leave it.
    }
  }
}

function removeQuietly(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch {
    // Gone already, or not removable: a leftover owner file is swept at a later open.
  }
}

function lockedError(abs: string, lockFile: string, h: Holder, breaking = false): SinkError {
  const where = `lock file ${lockFile}`;
  const since = h.since !== undefined ? `since ${h.since}; ` : '';
  let who: string;
  if (breaking) who = `it is being taken over from a dead holder by pid ${h.pid} (${where})`;
  else if (holderElsewhere(h)) {
    who =
      `it is held by pid ${h.pid} on host ${JSON.stringify(h.host)} (${since}${where}). ` +
      `From this host ringlog cannot tell whether that process still runs; if it does not, remove the lock file`;
  } else if (h.pid === process.pid) who = `it is held by this process, pid ${h.pid}, through another sink (${since}${where})`;
  else who = `it is held by pid ${h.pid} (${since}${where})`;
  return new SinkError(`ringlog: cannot open event log "${abs}": ${who}. One writer per path: close the other sink, or use another path.`, {
    sink: abs,
    code: ErrorCode.LOCKED,
    ...(h.pid !== null ? { holderPid: h.pid } : {}),
  });
}

function openError(abs: string, what: string, err: unknown): SinkError {
  return new SinkError(`ringlog: cannot open event log "${abs}": ${what}: ${(err as Error).message}`, { sink: abs, code: ErrorCode.OPEN, cause: err });
}
