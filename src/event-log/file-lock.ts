// The event-log file backend's driver of the cross-process lock protocol (../lock-protocol.ts):
// one lock per topic, `<topic>.lock`, taken around each write or compaction and waited for with
// backoff.
//
// Each open read-write log writes one owner file, `<pid>.<token>.owner`, holding its holder record;
// every topic lock and break guard it takes is a hard link of that file. The log keeps the owner
// file open while it is open: another thread of this process (its own globalThis, so its own
// liveTokens) recognises our locks as live by that descriptor (holderStale).

import * as fsp from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import * as path from 'node:path';
import {
  BACKOFF_MAX_MS,
  BACKOFF_START_MS,
  breakStale,
  holderStale,
  liveTokens,
  lockFileOf,
  newToken,
  ownerText,
  parseHolder,
  type Holder,
} from '../files/lock-protocol.js';

export { holderStale, readHolderSync, removeDeadGuard } from '../files/lock-protocol.js';

export interface LockOwner {
  readonly pid: number;
  readonly token: string;
  readonly dir: string;
  readonly ownerPath: string;
  /**
   * Open on the owner file until removeOwner; one more for each time the file had to be recreated,
   * since locks we hold at that moment still carry the earlier file's inode.
   */
  readonly handles: FileHandle[];
}

export async function createOwner(dir: string): Promise<LockOwner> {
  const token = newToken();
  const ownerPath = path.join(dir, `${process.pid}.${token}.owner`);
  const handle = await writeOwner(ownerPath, token, 'wx');
  liveTokens().add(token);
  return { pid: process.pid, token, dir, ownerPath, handles: [handle] };
}

async function writeOwner(ownerPath: string, token: string, flags: string): Promise<FileHandle> {
  const handle = await fsp.open(ownerPath, flags);
  try {
    await handle.writeFile(ownerText(token, await handle.stat({ bigint: true })));
  } catch (err) {
    await handle.close().catch(() => undefined);
    await fsp.rm(ownerPath, { force: true }).catch(() => undefined);
    throw err;
  }
  return handle;
}

export async function removeOwner(owner: LockOwner): Promise<void> {
  liveTokens().delete(owner.token);
  for (const h of owner.handles.splice(0)) await h.close().catch(() => undefined);
  await fsp.rm(owner.ownerPath, { force: true });
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
  const lockPath = lockFileOf(owner.dir, name);
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
        owner.handles.push(await writeOwner(owner.ownerPath, owner.token, 'w'));
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
    // Synchronous, as the protocol's module explains: met only after a crash, a few syscalls.
    if (holderStale(holder) && breakStale(owner, owner.dir, name, holder.token) === null) continue;
    const waited = Date.now() - started;
    if (waited >= timeoutMs) throw new LockTimeoutError(lockPath, holder.pid, waited);
    // Jitter keeps two waiters from retrying in lockstep.
    await sleep(backoff * (0.5 + Math.random()));
    backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
  }
}

export async function releaseLock(owner: LockOwner, name: string): Promise<void> {
  await unlinkIfPresent(lockFileOf(owner.dir, name));
}

async function unlinkIfPresent(file: string): Promise<void> {
  try {
    await fsp.unlink(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
