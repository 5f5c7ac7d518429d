// Cross-process mutual exclusion for the file backend, built only from atomic directory operations
// (no native flock), so any process that can write the directory takes part.
//
// Each open log writes one "owner" file, `<pid>.<token>.owner`, holding {"pid","token"}. Taking a
// topic lock is link(owner, `<topic>.lock`): link() fails with EEXIST when the lock exists, like
// open(..., 'wx'), but the lock appears with its content already complete, so a reader never sees
// a half-written (empty) lock file. Releasing is unlink(`<topic>.lock`).
//
// A lock whose pid is dead (process.kill(pid, 0) throws ESRCH) is stale. Unlinking it must not be
// a plain check-then-unlink: two breakers could both see the stale lock, the first removes it, a
// third process takes a fresh lock, and the second breaker would remove that one. So breaking the
// lock of token T first takes the guard `<topic>.<T>.break` (again by link(), exactly one winner),
// then re-reads the lock and unlinks it only if it still carries T. Only a holder of T or the guard
// of T ever removes a lock carrying T, and tokens are never reused, so the re-read cannot be
// outdated by the unlink. A guard whose own holder died is handled the same way one level up
// (guard `<topic>.<U>.break` for the dead guard holder's token U).

import { randomBytes, createHash } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

export interface LockOwner {
  readonly pid: number;
  readonly token: string;
  readonly dir: string;
  readonly ownerPath: string;
}

/** What a lock or guard file says about its holder; `token` doubles as the guard name. */
interface Holder {
  readonly pid: number | null;
  readonly token: string;
}

/** 8 random bytes: collisions between live instances are out of reach (2^64). */
const TOKEN_BYTES = 8;
const TOKEN_RE = /^[0-9a-f]{16}$/;

/**
 * First retry after 1 ms: a holder keeps the lock for one batched write or one small file
 * rewrite, typically well under a millisecond to a few ms. Doubling up to 32 ms keeps waiters
 * responsive under contention without spinning the threadpool.
 */
const BACKOFF_START_MS = 1;
const BACKOFF_MAX_MS = 32;

/**
 * Tokens of the logs open in this process. Kept on globalThis so two copies of this module in one
 * process (e.g. the package loaded from two paths) still recognise each other's locks as live.
 */
const LIVE_KEY = Symbol.for('ringlog.event-log.file.liveTokens');
function liveTokens(): Set<string> {
  const g = globalThis as unknown as Record<symbol, Set<string> | undefined>;
  return (g[LIVE_KEY] ??= new Set<string>());
}

export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('hex');
}

export async function createOwner(dir: string): Promise<LockOwner> {
  const token = newToken();
  const ownerPath = path.join(dir, `${process.pid}.${token}.owner`);
  await fsp.writeFile(ownerPath, JSON.stringify({ pid: process.pid, token }), { flag: 'wx' });
  liveTokens().add(token);
  return { pid: process.pid, token, dir, ownerPath };
}

export async function removeOwner(owner: LockOwner): Promise<void> {
  liveTokens().delete(owner.token);
  await fsp.rm(owner.ownerPath, { force: true });
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

/** Dead holders, and holders in this process whose log is no longer open, are stale. */
export function holderStale(pid: number | null, token: string): boolean {
  if (pid === null) return true;
  if (pid === process.pid) return !liveTokens().has(token);
  return !pidAlive(pid);
}

function parseHolder(text: string): Holder {
  try {
    const v = JSON.parse(text) as { pid?: unknown; token?: unknown };
    if (typeof v.pid === 'number' && typeof v.token === 'string' && TOKEN_RE.test(v.token)) return { pid: v.pid, token: v.token };
  } catch {
    // Not ours: fall through to a content-derived identity.
  }
  // A foreign or damaged file still needs a unique, file-name-safe identity for its guard.
  return { pid: null, token: createHash('sha256').update(text).digest('hex').slice(0, 16) };
}

/** The holder of `file`, or null when it does not exist. */
async function readHolder(file: string): Promise<Holder | null> {
  try {
    return parseHolder(await fsp.readFile(file, 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class LockTimeoutError extends Error {
  constructor(
    readonly lockPath: string,
    readonly holderPid: number | null,
    waitedMs: number,
  ) {
    super(`ringlog: gave up waiting for ${lockPath} after ${waitedMs} ms; it is held by ${holderPid === null ? 'an unknown process' : `pid ${holderPid}`}`);
  }
}

/**
 * Takes `<dir>/<name>.lock`. The caller must not already hold it (the file backend serialises
 * lock use per topic inside the process), which is why a lock carrying our own token can only be
 * a leftover of a release that failed and is removed directly.
 */
export async function acquireLock(owner: LockOwner, name: string, timeoutMs: number): Promise<void> {
  const lockPath = path.join(owner.dir, `${name}.lock`);
  const started = Date.now();
  let backoff = BACKOFF_START_MS;
  for (;;) {
    try {
      await fsp.link(owner.ownerPath, lockPath);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        // Our owner file vanished (someone cleaned the directory): recreate it and retry.
        await fsp.writeFile(owner.ownerPath, JSON.stringify({ pid: owner.pid, token: owner.token }));
        continue;
      }
      if (code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(lockPath);
    if (holder === null) continue; // released between our link and our read
    if (holder.token === owner.token) {
      await unlinkIfPresent(lockPath);
      continue;
    }
    if (holderStale(holder.pid, holder.token)) {
      if (await breakStale(owner, name, lockPath, holder.token)) continue;
    }
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new LockTimeoutError(lockPath, holder.pid, waited);
    // Jitter keeps two waiters from retrying in lockstep.
    await sleep(backoff * (0.5 + Math.random()));
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  }
}

export async function releaseLock(owner: LockOwner, name: string): Promise<void> {
  await unlinkIfPresent(path.join(owner.dir, `${name}.lock`));
}

/**
 * Removes the lock at `lockPath` if it still carries `staleToken`, under the guard described at
 * the top. Returns true when the caller should retry at once (lock removed or already gone),
 * false when another live process is breaking it (the caller backs off).
 */
async function breakStale(owner: LockOwner, name: string, lockPath: string, staleToken: string): Promise<boolean> {
  const guards: string[] = [];
  let target = staleToken;
  for (;;) {
    const guard = path.join(owner.dir, `${name}.${target}.break`);
    try {
      await fsp.link(owner.ownerPath, guard);
      guards.push(guard);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(guard);
    if (holder === null) continue; // its breaker finished and cleaned up: try again
    if (holder.token === owner.token) {
      // Our own guard, left by a failed cleanup: we may proceed under it.
      guards.push(guard);
      break;
    }
    if (!holderStale(holder.pid, holder.token)) return false;
    guards.push(guard);
    target = holder.token;
  }
  const current = await readHolder(lockPath);
  if (current !== null && current.token === staleToken) await unlinkIfPresent(lockPath);
  // Only now, with the stale lock gone for good, can its guards go: a late breaker that takes one
  // again finds a different token in the lock and leaves it alone.
  for (const g of guards) await unlinkIfPresent(g);
  return true;
}

/**
 * Removes a leftover `<name>.<T>.break` guard once no lock carries T any more (tokens are never
 * reused, so that lock cannot come back). Used by the backend's cleanup at open.
 */
export async function removeDeadGuard(dir: string, guardFile: string): Promise<void> {
  const m = /^(.+)\.([0-9a-f]{16})\.break$/.exec(guardFile);
  if (!m) return;
  const holder = await readHolder(path.join(dir, `${m[1]}.lock`));
  if (holder !== null && holder.token === m[2]) return;
  const guardHolder = await readHolder(path.join(dir, guardFile));
  if (guardHolder !== null && !holderStale(guardHolder.pid, guardHolder.token)) return;
  await unlinkIfPresent(path.join(dir, guardFile));
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
