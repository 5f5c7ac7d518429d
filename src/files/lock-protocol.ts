// The cross-process lock protocol, built only from atomic directory operations (no native flock),
// so any process that can write the directory takes part. Two drivers run it: the event-log file
// backend (event-log/file-lock.ts, asynchronous, one lock per topic, retried with backoff) and the
// sink's path lock (path-lock.ts, synchronous, taken once at open). Everything that decides who
// holds a lock and whether it may be removed lives here, once.
//
// A process writes an "owner" file holding its holder record (ownerText) and takes the lock
// `<name>.lock` with link(owner, lock): link() fails with EEXIST when the lock exists, like
// open(..., 'wx'), but the lock appears with its content already complete, so a reader never sees
// a half-written (empty) lock file. Releasing is unlink(`<name>.lock`).
//
// A lock whose holder is gone is stale (holderStale). Unlinking it must not be a plain
// check-then-unlink: two breakers could both see the stale lock, the first removes it, a third
// process takes a fresh lock, and the second breaker would remove that one. So breaking the lock of
// token T first takes the guard `<name>.<T>.break` (again by link(), exactly one winner), then
// re-reads the lock and unlinks it only if it still carries T. Only a holder of T or the guard of T
// ever removes a lock carrying T, and tokens are never reused, so the re-read cannot be outdated by
// the unlink. A guard whose own holder died is handled the same way one level up (guard
// `<name>.<U>.break` for the dead guard holder's token U).
//
// breakStale is synchronous, and the asynchronous driver calls it as is: a stale lock is met only
// after a crash, and breaking it is a handful of small syscalls, so blocking the event loop for
// them once is cheaper than keeping a second, asynchronous copy of the algorithm in step.

import { createHash, randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { currentOsThreadId, osThreadExists, statField } from '../threads/os-thread.js';

/** What a lock, guard or owner file says about its holder; `token` doubles as the guard name. */
export interface Holder {
  /** null when the file is not a holder record (foreign or damaged): such a lock is stale. */
  readonly pid: number | null;
  readonly token: string;
  /** os.hostname() of the holder; absent in records written before it was recorded. */
  readonly host?: string;
  /** Field 22 of /proc/<pid>/stat (start time, clock ticks after boot); Linux only. */
  readonly start?: string;
  /** /proc/sys/kernel/random/boot_id of the holder's machine; Linux only. */
  readonly boot?: string;
  /** ISO time the owner file was written (for a sink's path lock: when it was taken). */
  readonly since?: string;
  /**
   * Device and inode of the owner file (decimal strings: inode numbers may exceed 2^53), which the
   * holder keeps open while it holds: how another thread of the same process tells it is live.
   */
  readonly dev?: string;
  readonly ino?: string;
  /** Kernel task id of the holding thread (Linux): another thread of the same process tells the
   *  lock is live by that thread being there, with no descriptor kept open per lock. */
  readonly tid?: string;
}

/** 8 random bytes: collisions between live instances are out of reach (2^64). */
const TOKEN_BYTES = 8;
export const TOKEN_RE = /^[0-9a-f]{16}$/;

/**
 * Backoff while another live process holds what we wait for. First retry after 1 ms: a topic lock
 * is held for one batched write or one small file rewrite, and a break guard for a few syscalls,
 * typically well under a millisecond to a few ms. Doubling up to 32 ms keeps waiters responsive
 * under contention without spinning.
 */
export const BACKOFF_START_MS = 1;
export const BACKOFF_MAX_MS = 32;

/**
 * Tokens of the locks and owners alive in this JavaScript realm. Kept on globalThis so two copies
 * of this code in one process (e.g. the package loaded from two paths) still recognise each
 * other's locks as live. The key predates the sink's path lock and is kept so that a copy of the
 * older event-log module in the same process shares the set.
 */
const LIVE_KEY = Symbol.for('ringlog.event-log.file.liveTokens');
export function liveTokens(): Set<string> {
  const g = globalThis as unknown as Record<symbol, Set<string> | undefined>;
  return (g[LIVE_KEY] ??= new Set<string>());
}

export function newToken(): string {
  // randomUUID draws from a cached block of entropy (randomBytes makes a call into the system's
  // generator every time: a tenth of a millisecond, paid at every open()). 16 hex digits of it.
  return randomUUID().replaceAll('-', '').slice(0, TOKEN_BYTES * 2);
}

/** Whether `pid` names a process that exists (EPERM: it exists, owned by another user). */
export function pidAlive(pid: number): boolean {
  // kill(0 or negative) would signal a process group: such a pid is garbage, not a process.
  if (!Number.isSafeInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Start time of `pid` as the kernel reports it (field 22 of /proc/<pid>/stat, clock ticks after
 * boot), or null where it cannot be read (not Linux, hidepid, gone). Together with the pid it names
 * one process for the life of the machine: a recycled pid (a restarted container's pid 1) has
 * another start time.
 */
export function processStartTime(pid: number): string | null {
  // Other systems either have no /proc or one with another layout (FreeBSD's procfs).
  if (process.platform !== 'linux') return null;
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const start = statField(stat, 22);
  return start !== undefined && /^\d+$/.test(start) ? start : null;
}

function readBootId(): string | null {
  if (process.platform !== 'linux') return null;
  try {
    return fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || null;
  } catch {
    return null;
  }
}

interface Self {
  readonly host: string;
  readonly start: string | null;
  readonly boot: string | null;
}
let self: Self | undefined;
/** This process's identity, read once: none of it changes while the process runs. */
function me(): Self {
  return (self ??= { host: os.hostname(), start: processStartTime(process.pid), boot: readBootId() });
}

/**
 * The content of an owner file for `token`: the record every lock taken with it carries. `file` is
 * the owner file's own stat (taken through the descriptor the holder keeps open).
 */
export function ownerText(token: string, file: fs.BigIntStats): string {
  const { host, start, boot } = me();
  return JSON.stringify({
    pid: process.pid,
    token,
    host,
    ...(start !== null ? { start } : {}),
    ...(boot !== null ? { boot } : {}),
    since: new Date().toISOString(),
    dev: String(file.dev),
    ino: String(file.ino),
    ...(currentOsThreadId() > 0 ? { tid: String(currentOsThreadId()) } : {}),
  });
}

export function parseHolder(text: string): Holder {
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.pid === 'number' && typeof v.token === 'string' && TOKEN_RE.test(v.token)) {
      const str = (k: string): Record<string, string> => (typeof v[k] === 'string' ? { [k]: v[k] } : {});
      return { pid: v.pid, token: v.token, ...str('host'), ...str('start'), ...str('boot'), ...str('since'), ...str('dev'), ...str('ino'), ...str('tid') };
    }
  } catch {
    // Not ours: fall through to a content-derived identity.
  }
  // A foreign or damaged file still needs a unique, file-name-safe identity for its guard.
  return { pid: null, token: createHash('sha256').update(text).digest('hex').slice(0, 16) };
}

/** The holder recorded in `file`, or null when it does not exist. */
export function readHolderSync(file: string): Holder | null {
  try {
    return parseHolder(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

/** Whether the holder runs on another machine (the directory is shared, e.g. over NFS). */
export function holderElsewhere(h: Holder): boolean {
  return h.host !== undefined && h.host !== me().host;
}

/**
 * Whether the holder is gone, so its lock (or guard, or owner file) may be removed. Live means: on
 * another host (nothing can be checked from here, so never broken), or a pid that exists with the
 * recorded start time (when both sides know it) since the same boot. Our own pid is live only for
 * a token this process holds: one in liveTokens, or, for a holder in another thread of this process
 * (each thread has its own globalThis), the owner file's inode among our open descriptors. Both
 * stay true for the holder's whole life, so a holder once judged gone is gone for good, which the
 * break protocol relies on.
 */
export function holderStale(h: Holder): boolean {
  if (h.pid === null) return true;
  if (holderElsewhere(h)) return false;
  const { boot } = me();
  // Another boot of this machine: every process of that boot is gone, whatever its pid.
  if (h.boot !== undefined && boot !== null && h.boot !== boot) return true;
  if (h.pid === process.pid) {
    // Our pid but another start time: an earlier process that had this pid (a restarted container's
    // pid 1 on a persistent volume), gone, whatever its recorded thread id now names here.
    const { start } = me();
    if (h.start !== undefined && start !== null && h.start !== start) return true;
    if (liveTokens().has(h.token)) return false;
    // Another thread of this process: there while its task is (it releases before it ends
    // normally; terminate() ends it without release, and its task goes with it).
    if (h.tid !== undefined) return !osThreadExists(Number(h.tid));
    return !(h.dev !== undefined && h.ino !== undefined && openInThisProcess(h.dev, h.ino));
  }
  if (!pidAlive(h.pid)) return true;
  if (h.start === undefined) return false;
  const start = processStartTime(h.pid);
  return start !== null && start !== h.start;
}

/**
 * Whether some descriptor of this process is open on the file `dev`/`ino`, listed through /dev/fd
 * (Linux, macOS). False where that cannot be listed: a same-pid holder is then judged by
 * liveTokens alone. The inode cannot be another file's while a lock or guard carrying it exists
 * (they are links of it), so a match is the holder's descriptor; the rare false match after that
 * (a reused inode) errs on the safe side: refused, never shared.
 */
function openInThisProcess(dev: string, ino: string): boolean {
  let fds: string[];
  try {
    fds = fs.readdirSync('/dev/fd');
  } catch {
    return false;
  }
  for (const name of fds) {
    try {
      const st = fs.fstatSync(Number(name), { bigint: true });
      if (String(st.ino) === ino && String(st.dev) === dev) return true;
    } catch {
      // The descriptor readdir itself used, closed by now; or one we may not stat.
    }
  }
  return false;
}

export function unlinkIfPresentSync(file: string): void {
  try {
    fs.unlinkSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/** Who is taking a lock: the owner file whose content every lock or guard it takes carries. */
export interface Taker {
  readonly ownerPath: string;
  readonly token: string;
}

export function lockFileOf(dir: string, name: string): string {
  return path.join(dir, `${name}.lock`);
}

function guardFileOf(dir: string, name: string, token: string): string {
  return path.join(dir, `${name}.${token}.break`);
}

/**
 * Removes `<dir>/<name>.lock` if it still carries `staleToken`, under the guard described at the
 * top. Returns null when the caller should retry at once (lock removed or already gone), or the
 * holder of the guard when another live process is breaking it (the caller backs off: that process
 * is a few syscalls from done).
 */
export function breakStale(taker: Taker, dir: string, name: string, staleToken: string): Holder | null {
  const lock = lockFileOf(dir, name);
  const guards: string[] = [];
  let target = staleToken;
  for (;;) {
    const guard = guardFileOf(dir, name, target);
    try {
      fs.linkSync(taker.ownerPath, guard);
      guards.push(guard);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readHolderSync(guard);
    if (holder === null) continue; // its breaker finished and cleaned up: try again
    if (holder.token === taker.token) {
      // Our own guard, left by a failed cleanup: we may proceed under it.
      guards.push(guard);
      break;
    }
    if (!holderStale(holder)) return holder;
    guards.push(guard);
    target = holder.token;
  }
  const current = readHolderSync(lock);
  if (current !== null && current.token === staleToken) unlinkIfPresentSync(lock);
  // Only now, with the stale lock gone for good, can its guards go: a late breaker that takes one
  // again finds a different token in the lock and leaves it alone. Each guard goes while the next
  // one (which entitles us to remove it) is still held.
  for (const g of guards) unlinkIfPresentSync(g);
  return null;
}

/** `<name>.<token>.break`: a guard's file name, the lock's name and the token it guards. */
export const GUARD_RE = /^(.+)\.([0-9a-f]{16})\.break$/;

/**
 * Removes a leftover `<name>.<T>.break` guard (its breaker died mid-break) once no lock carries T
 * any more (tokens are never reused, so that lock cannot come back) and its holder is gone.
 */
export function removeDeadGuard(dir: string, guardFile: string): void {
  const m = GUARD_RE.exec(guardFile);
  if (!m) return;
  const holder = readHolderSync(lockFileOf(dir, m[1]!));
  if (holder !== null && holder.token === m[2]) return;
  const guard = path.join(dir, guardFile);
  const guardHolder = readHolderSync(guard);
  if (guardHolder !== null && !holderStale(guardHolder)) return;
  unlinkIfPresentSync(guard);
}
