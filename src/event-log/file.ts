// The file backend: one JSONL file per topic, shared safely by any number of processes.
//
// Layout of the directory (topic names are [A-Za-z0-9._-], so every suffix below is unambiguous):
//   <topic>.jsonl          the events, one eventLine() per event, each ending in '\n', ids
//                          consecutive; compaction removes a prefix by rewriting the file.
//   <topic>.cursors.json   {"<consumer>": ackedId, ...}, replaced atomically on every ack batch
//                          (consumer names are arbitrary strings, so they live inside, not in names).
//   <topic>.meta.json      {"latest": id}, written by compaction before it replaces the topic
//                          file, so ids continue even when compaction removed every event.
//   <topic>.lock           the cross-process lock of the topic (see ../lock-protocol.ts).
//   <topic>.<token>.break  short-lived guard while a stale lock is being broken (lock-protocol.ts).
//   <pid>.<token>.owner    one per open read-write log: the content every lock it takes carries.
//   *.<pid>.<token>.tmp    files being written for an atomic rename; a crash can leave one, which
//                          the next read-write open removes once its pid is dead.
//
// Writers hold the topic lock while they bring their view up to date, cut a torn last line, append
// one batch and update their index; readers take no lock and index only '\n'-terminated lines, so
// a write in flight is invisible until complete. Every process keeps, per topic, the byte offset of
// each event (id → offset), refreshed from the file's tail before each read; a replaced file (another
// process compacted: new inode) or a shrunk one is indexed again from the start.

import { constants as fsc } from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { EventLogError, EventLogErrorCode, closedError } from './errors.js';
import { acquireLock, createOwner, holderStale, LockTimeoutError, readHolderSync, releaseLock, removeDeadGuard, removeOwner, type LockOwner } from './file-lock.js';
import { LiveHub } from './live.js';
import { APPEND_PREPARED, checkConsumer, checkFrom, checkId, checkLimit, eventLine, prepareEvent, prepareIdempotent, toLogEvent, type PreparedAppender, type PreparedEvent } from './record.js';
import { HeaderIndex } from './header-index.js';
import { chainEvents, checkUnchained, GENESIS, hashOf } from './provenance.js';
import { isTopicName, topicName } from './topic.js';
import type { CompactResult, EventLog, EventLogDescription, IdempotentAppend, LogEvent, NewLogEvent, SubscribeOptions, TopicLike } from './types.js';

/** Read granularity when indexing or copying: large enough for few threadpool round trips, small enough to bound memory. */
const CHUNK_BYTES = 1 << 20;
/**
 * Events per appended write: one write of a few MB at most for typical small events, so a huge
 * queue does not hold the cross-process lock (and a giant buffer) for long.
 */
const MAX_BATCH = 4096;
/**
 * A holder keeps a topic lock for one write or one compaction; 30 s without progress means a
 * stopped or hung process, which is reported (with its pid) rather than waited on forever.
 */
const LOCK_TIMEOUT_MS = 30_000;
/** Index slots a topic starts with (8 KiB): small topics never grow it, large ones double a few times. */
const INITIAL_INDEX = 1024;

const TOPIC_EXT = '.jsonl';
const CURSORS_EXT = '.cursors.json';
const META_EXT = '.meta.json';
const TMP_RE = /\.(\d+)\.([0-9a-f]{16})\.tmp$/;
const OWNER_RE = /^(\d+)\.([0-9a-f]{16})\.owner$/;
const ID_PREFIX = '{"id":';
const CH_0 = 0x30;
const CH_9 = 0x39;
const CH_COMMA = 0x2c;
const CH_NEWLINE = 0x0a;

/** An append waiting for its turn: a plain one, or appendIdempotent's (appended only when no event
 *  of the topic holds `value` under `header`). One queue, so ids follow the calls' order. */
type PendingAppend =
  | { readonly type: 'plain'; readonly event: PreparedEvent; resolve(id: number): void; reject(err: unknown): void }
  | { readonly type: 'idempotent'; readonly event: PreparedEvent; readonly header: string; readonly value: string; resolve(result: IdempotentAppend): void; reject(err: unknown): void };

interface PendingAck {
  readonly consumer: string;
  readonly upTo: number;
  resolve(): void;
  reject(err: unknown): void;
}

interface TopicState {
  readonly name: string;
  readonly file: string;
  /** Read-write logs: opened 'a+' (O_APPEND), so every write lands at the end under the lock. */
  fd: fsp.FileHandle | null;
  dev: bigint;
  ino: bigint;
  /** Bytes of whole lines indexed: everything before this offset is in `offsets`. */
  size: number;
  /** offsets[i] is where event firstId + i starts. */
  offsets: Float64Array;
  count: number;
  firstId: number;
  /** The last id ever appended (0: none), also after compaction emptied the file. */
  latest: number;
  /** In-process serialisation of everything touching this topic's files (and its lock). */
  chain: Promise<void>;
  appends: PendingAppend[];
  appendScheduled: boolean;
  acks: PendingAck[];
  ackScheduled: boolean;
  /** Written since the last fdatasync. */
  dirty: boolean;
  /** Header values appendIdempotent looks up (names indexed on first use; see header-index.ts). */
  headers: HeaderIndex;
  /** Provenance: the record_hash of id `hashId`, the chain's tip as this process last saw it. */
  lastHash: string;
  hashId: number;
}

function ioError(message: string, err: unknown, topic?: string): EventLogError {
  if (err instanceof EventLogError) return err;
  const detail = err instanceof Error ? `: ${err.message}` : '';
  return new EventLogError(EventLogErrorCode.IO, `ringlog: ${message}${detail}`, { cause: err, ...(topic !== undefined ? { topic } : {}) });
}

function corrupt(message: string, topic: string, cause?: unknown): EventLogError {
  return new EventLogError(EventLogErrorCode.CORRUPT, `ringlog: ${message}`, { topic, ...(cause !== undefined ? { cause } : {}) });
}

function errCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/** fsync of a directory makes a rename in it durable. */
async function fsyncDir(dir: string): Promise<void> {
  const fh = await fsp.open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some file systems cannot fsync a directory; the rename is then as durable as they make it.
    if (errCode(err) !== 'EINVAL' && errCode(err) !== 'EISDIR') throw err;
  } finally {
    await fh.close();
  }
}

export class FileEventLog implements EventLog, PreparedAppender {
  readonly backend = 'file' as const;
  private readonly byTopic = new Map<string, TopicState>();
  private readonly hub: LiveHub;
  private closed = false;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly dir: string,
    private readonly queueDepth: number,
    private readonly readOnly: boolean,
    private readonly owner: LockOwner | null,
    /** Chain every record to the one before (provenance.ts). */
    private readonly provenance: boolean,
  ) {
    this.hub = new LiveHub(queueDepth);
  }

  static async open(dir: string, opts: { queueDepth: number; readOnly: boolean; provenance?: boolean }): Promise<FileEventLog> {
    const location = path.resolve(dir);
    if (!opts.readOnly) {
      try {
        await fsp.mkdir(location, { recursive: true });
      } catch (err) {
        throw ioError(`cannot create the event log directory ${location}`, err);
      }
    }
    let st;
    try {
      st = await fsp.stat(location);
    } catch (err) {
      throw ioError(`the event log directory ${location} cannot be opened${opts.readOnly ? ' (read-only mode does not create it)' : ''}`, err);
    }
    if (!st.isDirectory()) throw ioError(`the event log location ${location} is not a directory`, undefined);
    let owner: LockOwner | null = null;
    try {
      await fsp.access(location, opts.readOnly ? fsc.R_OK | fsc.X_OK : fsc.R_OK | fsc.W_OK | fsc.X_OK);
      if (!opts.readOnly) owner = await createOwner(location);
    } catch (err) {
      throw ioError(`the event log directory ${location} is not ${opts.readOnly ? 'readable' : 'writable'}`, err);
    }
    const log = new FileEventLog(location, opts.queueDepth, opts.readOnly, owner, opts.provenance ?? false);
    if (owner !== null) await log.removeLeftovers();
    return log;
  }

  append(topic: TopicLike, event: NewLogEvent): Promise<number> {
    const name = topicName(topic);
    return this[APPEND_PREPARED](name, prepareEvent(event));
  }

  [APPEND_PREPARED](topic: TopicLike, prepared: PreparedEvent): Promise<number> {
    const name = topicName(topic);
    const refused = this.refuseWrite('append to', name);
    if (refused) return refused;
    if (this.provenance) checkUnchained(prepared);
    return new Promise<number>((resolve, reject) => this.enqueue(this.state(name), { type: 'plain', event: prepared, resolve, reject }));
  }

  appendIdempotent(topic: TopicLike, header: string, value: string, event: NewLogEvent): Promise<IdempotentAppend> {
    const name = topicName(topic);
    const prepared = prepareIdempotent(header, value, event);
    const refused = this.refuseWrite('append to', name);
    if (refused) return refused;
    if (this.provenance) checkUnchained(prepared);
    // Through the append queue, so its id comes in call order among the plain appends around it.
    return new Promise<IdempotentAppend>((resolve, reject) => this.enqueue(this.state(name), { type: 'idempotent', event: prepared, header, value, resolve, reject }));
  }

  private enqueue(t: TopicState, p: PendingAppend): void {
    t.appends.push(p);
    if (!t.appendScheduled) {
      t.appendScheduled = true;
      // Scheduled behind whatever runs on the topic now, so appends made meanwhile (and in the
      // same tick) share one lock and one write.
      void this.exclusive(t, () => this.writeQueued(t));
    }
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.backend));
    return this.syncAll();
  }

  readRange(topic: TopicLike, from: number | null | undefined, limit: number): Promise<LogEvent[]> {
    const name = topicName(topic);
    const after = checkFrom(from);
    checkLimit(limit);
    if (this.closed) return Promise.reject(closedError(this.backend));
    return this.read(name, after, limit);
  }

  subscribe(topic: TopicLike, from?: number | null, options: SubscribeOptions = {}): AsyncIterableIterator<LogEvent> {
    const name = topicName(topic);
    const after = checkFrom(from);
    return this.hub.subscribe(name, after, (t, f, l) => (this.closed ? Promise.reject(closedError(this.backend)) : this.read(t, f, l)), options.signal);
  }

  ack(topic: TopicLike, consumer: string, upTo: number): Promise<void> {
    const name = topicName(topic);
    checkConsumer(consumer);
    checkId('upTo', upTo);
    const refused = this.refuseWrite('acknowledge on', name);
    if (refused) return refused;
    const t = this.state(name);
    return new Promise<void>((resolve, reject) => {
      t.acks.push({ consumer, upTo, resolve, reject });
      if (!t.ackScheduled) {
        t.ackScheduled = true;
        void this.exclusive(t, () => this.writeAcks(t));
      }
    });
  }

  async consumerCursor(topic: TopicLike, consumer: string): Promise<number | null> {
    const name = topicName(topic);
    checkConsumer(consumer);
    if (this.closed) throw closedError(this.backend);
    const cursors = await this.readCursors(name);
    return cursors.get(consumer) ?? null;
  }

  async latest(topic: TopicLike): Promise<number | null> {
    const name = topicName(topic);
    if (this.closed) throw closedError(this.backend);
    const t = this.state(name);
    return this.exclusive(t, async () => {
      await this.refresh(t, false);
      return t.latest === 0 ? null : t.latest;
    });
  }

  async topics(): Promise<string[]> {
    if (this.closed) throw closedError(this.backend);
    let entries: string[];
    try {
      entries = await fsp.readdir(this.dir);
    } catch (err) {
      throw ioError(`cannot list ${this.dir}`, err);
    }
    // A topic's file is made by its first append and only ever replaced (compaction), never removed.
    return entries.filter((e) => e.endsWith(TOPIC_EXT) && isTopicName(e.slice(0, -TOPIC_EXT.length))).map((e) => e.slice(0, -TOPIC_EXT.length)).sort();
  }

  compact(topic: TopicLike, before: number): Promise<CompactResult> {
    const name = topicName(topic);
    checkId('before', before);
    const refused = this.refuseWrite('compact', name);
    if (refused) return refused;
    const t = this.state(name);
    return this.exclusive(t, () => this.withLock(t, () => this.compactLocked(t, before)));
  }

  async describe(): Promise<EventLogDescription> {
    if (this.closed) throw closedError(this.backend);
    let sizeBytes = 0;
    try {
      for (const entry of await fsp.readdir(this.dir)) {
        if (!entry.endsWith(TOPIC_EXT) && !entry.endsWith(CURSORS_EXT) && !entry.endsWith(META_EXT)) continue;
        try {
          sizeBytes += (await fsp.stat(path.join(this.dir, entry))).size;
        } catch (err) {
          // Replaced or removed by another process between readdir and stat: not ours to count.
          if (errCode(err) !== 'ENOENT') throw err;
        }
      }
    } catch (err) {
      throw ioError(`cannot measure ${this.dir}`, err);
    }
    return { backend: this.backend, location: this.dir, sizeBytes, queueDepth: this.queueDepth, readOnly: this.readOnly };
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  // -------------------------------------------------------------------------------------------

  private async shutdown(): Promise<void> {
    this.closed = true;
    let failure: unknown;
    try {
      await this.syncAll();
    } catch (err) {
      failure = err;
    }
    for (const t of this.byTopic.values()) {
      await this.exclusive(t, async () => {
        const fd = t.fd;
        t.fd = null;
        await fd?.close();
      }).catch((err: unknown) => (failure ??= ioError(`cannot close ${t.file}`, err, t.name)));
    }
    if (this.owner !== null) await removeOwner(this.owner).catch((err: unknown) => (failure ??= ioError(`cannot remove ${this.owner!.ownerPath}`, err)));
    this.hub.endAll();
    if (failure !== undefined) throw failure;
  }

  private refuseWrite(what: string, name: string): Promise<never> | undefined {
    if (this.closed) return Promise.reject(closedError(this.backend));
    if (this.readOnly) {
      return Promise.reject(new EventLogError(EventLogErrorCode.READ_ONLY, `ringlog: cannot ${what} topic ${name}: the file event log at ${this.dir} was opened read-only`, { topic: name }));
    }
    return undefined;
  }

  private state(name: string): TopicState {
    let t = this.byTopic.get(name);
    if (t === undefined) {
      t = {
        name,
        file: path.join(this.dir, name + TOPIC_EXT),
        fd: null,
        dev: -1n,
        ino: -1n,
        size: 0,
        offsets: new Float64Array(INITIAL_INDEX),
        count: 0,
        firstId: 1,
        latest: 0,
        chain: Promise.resolve(),
        appends: [],
        appendScheduled: false,
        acks: [],
        ackScheduled: false,
        dirty: false,
        headers: new HeaderIndex(),
        lastHash: GENESIS,
        hashId: -1,
      };
      this.byTopic.set(name, t);
    }
    return t;
  }

  /** Runs `fn` after everything queued on the topic; a failure does not stop later work. */
  private exclusive<T>(t: TopicState, fn: () => Promise<T>): Promise<T> {
    const run = t.chain.then(fn);
    t.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async withLock<T>(t: TopicState, fn: () => Promise<T>): Promise<T> {
    const owner = this.owner!;
    try {
      await acquireLock(owner, t.name, LOCK_TIMEOUT_MS);
    } catch (err) {
      if (err instanceof LockTimeoutError) throw new EventLogError(EventLogErrorCode.IO, err.message, { topic: t.name, cause: err });
      throw ioError(`cannot lock topic ${t.name} in ${this.dir}`, err, t.name);
    }
    try {
      return await fn();
    } finally {
      // A failed release leaves a lock carrying our own token, which our next acquisition
      // recognises and removes; the result of `fn` (events already written) stands.
      await releaseLock(owner, t.name).catch(() => undefined);
    }
  }

  private async syncAll(): Promise<void> {
    const topics = [...this.byTopic.values()];
    await Promise.all(
      topics.map((t) =>
        this.exclusive(t, async () => {
          if (!t.dirty || t.fd === null) return;
          try {
            await t.fd.datasync();
          } catch (err) {
            throw ioError(`cannot fsync ${t.file}`, err, t.name);
          }
          t.dirty = false;
        }),
      ),
    );
  }

  // --- appends -------------------------------------------------------------------------------

  private async writeQueued(t: TopicState): Promise<void> {
    t.appendScheduled = false;
    const queued = t.appends;
    t.appends = [];
    for (let i = 0; i < queued.length; ) {
      const first = queued[i]!;
      if (first.type === 'idempotent') {
        await this.writeIdempotent(t, first);
        i++;
        continue;
      }
      // A run of plain appends, up to MAX_BATCH, in one write.
      const batch: Extract<PendingAppend, { type: 'plain' }>[] = [];
      for (let q = queued[i]; q !== undefined && q.type === 'plain' && batch.length < MAX_BATCH; q = queued[++i]) batch.push(q);
      let written: { firstId: number; stored: PreparedEvent[] };
      try {
        written = await this.withLock(t, () => this.appendLocked(t, batch.map((p) => p.event)));
      } catch (err) {
        const e = ioError(`cannot append to ${t.file}`, err, t.name);
        for (const p of batch) p.reject(e);
        continue;
      }
      const { firstId, stored } = written;
      for (let k = 0; k < batch.length; k++) batch[k]!.resolve(firstId + k);
      // Parsing the events back is only worth it for a live subscriber.
      if (this.hub.wants(t.name)) this.hub.publish(t.name, stored.map((e, k) => toLogEvent(firstId + k, e)));
    }
  }

  /** One appendIdempotent: look and append under the topic's lock, so no other process appends the value between. */
  private async writeIdempotent(t: TopicState, p: Extract<PendingAppend, { type: 'idempotent' }>): Promise<void> {
    const { header, value } = p;
    let result: IdempotentAppend & { stored?: PreparedEvent };
    try {
      result = await this.withLock(t, async () => {
        await this.refresh(t, true);
        if (!t.headers.has(header)) await this.buildHeaderIndex(t, header);
        const held = t.headers.find(header, value, t.firstId);
        if (held !== undefined) return { id: held, inserted: false };
        const { firstId, stored } = await this.appendLocked(t, [p.event]);
        return { id: firstId, inserted: true, stored: stored[0] };
      });
    } catch (err) {
      p.reject(ioError(`cannot append to ${t.file}`, err, t.name));
      return;
    }
    p.resolve({ id: result.id, inserted: result.inserted });
    if (result.stored !== undefined && this.hub.wants(t.name)) this.hub.publish(t.name, [toLogEvent(result.id, result.stored)]);
  }

  /**
   * Under the topic lock: catch up, cut a torn tail, write the batch in one appended write. Returns
   * the first id and the events as stored (with provenance, their chain headers).
   */
  private async appendLocked(t: TopicState, events: readonly PreparedEvent[]): Promise<{ firstId: number; stored: PreparedEvent[] }> {
    await this.refresh(t, true);
    if (t.fd === null) await this.openTopicFile(t, true);
    const fd = t.fd!;
    const start = t.size;
    const firstNew = t.latest + 1;
    const stored = [...events];
    if (this.provenance) {
      const chained = chainEvents(t.name, firstNew, stored, await this.chainTip(t));
      stored.splice(0, stored.length, ...chained.events);
    }
    const lines: string[] = [];
    const lengths: number[] = [];
    for (let k = 0; k < stored.length; k++) {
      const line = eventLine(firstNew + k, stored[k]!) + '\n';
      lines.push(line);
      lengths.push(Buffer.byteLength(line, 'utf8'));
    }
    const buf = Buffer.from(lines.join(''), 'utf8');
    try {
      let done = 0;
      // A regular file normally takes the whole buffer at once; the loop covers a short write.
      while (done < buf.length) {
        const { bytesWritten } = await fd.write(buf, done, buf.length - done, null);
        done += bytesWritten;
      }
    } catch (err) {
      // Leave no partial line behind for readers; if even this fails, the next writer cuts it.
      await fd.truncate(start).catch(() => undefined);
      throw err;
    }
    t.dirty = true;
    let at = start;
    for (let k = 0; k < stored.length; k++) {
      this.pushOffset(t, at);
      at += lengths[k]!;
    }
    if (t.count === stored.length) t.firstId = firstNew;
    t.size = at;
    t.latest = firstNew + stored.length - 1;
    for (let k = 0; k < stored.length; k++) t.headers.add(firstNew + k, stored[k]!.headersJson);
    if (this.provenance) {
      t.lastHash = hashOf(JSON.parse(stored[stored.length - 1]!.headersJson) as Record<string, string>);
      t.hashId = t.latest;
    }
    return { firstId: firstNew, stored };
  }

  /**
   * Under the lock, after refresh: the record_hash the next record follows — known when this
   * process wrote the last record, else read from it (another process appended), or from the meta
   * file when compaction left the topic empty.
   */
  private async chainTip(t: TopicState): Promise<string> {
    if (t.hashId === t.latest) return t.lastHash;
    if (t.count > 0) return hashOf((await this.readLocked(t, t.count - 1, t.count))[0]!.headers);
    return t.latest === 0 ? GENESIS : (await this.readMetaFile(t)).lastHash ?? GENESIS;
  }

  private pushOffset(t: TopicState, offset: number): void {
    if (t.count === t.offsets.length) {
      const grown = new Float64Array(t.offsets.length * 2);
      grown.set(t.offsets);
      t.offsets = grown;
    }
    t.offsets[t.count++] = offset;
  }

  // --- the index -------------------------------------------------------------------------------

  private async openTopicFile(t: TopicState, create: boolean): Promise<boolean> {
    let fd: fsp.FileHandle;
    try {
      fd = await fsp.open(t.file, this.readOnly ? 'r' : create ? 'a+' : fsc.O_RDWR | fsc.O_APPEND);
    } catch (err) {
      if (errCode(err) === 'ENOENT' && !create) return false;
      throw err;
    }
    const st = await fd.stat({ bigint: true });
    await t.fd?.close().catch(() => undefined);
    t.fd = fd;
    t.dev = st.dev;
    t.ino = st.ino;
    t.size = 0;
    t.count = 0;
    // Indexed again from the start: header values too, on their next use.
    t.headers.clear();
    return true;
  }

  /**
   * Brings the index up to date with the file: the tail other processes appended, or a fresh
   * index when the file was replaced (compaction elsewhere) or shrank. With the lock held, an
   * unterminated last line can only be left by a writer that died mid-write, and is cut.
   */
  private async refresh(t: TopicState, locked: boolean): Promise<void> {
    let st;
    try {
      st = await fsp.stat(t.file, { bigint: true });
    } catch (err) {
      if (errCode(err) !== 'ENOENT') throw ioError(`cannot stat ${t.file}`, err, t.name);
      st = null;
    }
    try {
      if (st === null) {
        if (t.fd !== null) {
          // Removed from under us: forget the old inode, keep the ids (never reused).
          await t.fd.close().catch(() => undefined);
          t.fd = null;
        }
        t.size = 0;
        t.count = 0;
        t.latest = Math.max(t.latest, await this.readMeta(t));
        t.firstId = t.latest + 1;
        return;
      }
      const size = Number(st.size);
      if (t.fd === null || st.ino !== t.ino || st.dev !== t.dev || size < t.size) {
        if (!(await this.openTopicFile(t, false))) return this.refresh(t, locked);
        t.latest = 0;
        await this.indexTail(t, locked);
        if (t.count === 0) {
          t.latest = await this.readMeta(t);
          t.firstId = t.latest + 1;
        }
        return;
      }
      if (size > t.size) await this.indexTail(t, locked);
    } catch (err) {
      // The index may be half built: index the file again from the start next time.
      t.ino = -1n;
      throw err instanceof EventLogError ? err : ioError(`cannot read ${t.file}`, err, t.name);
    }
  }

  /** Indexes the whole lines from t.size to the current end of the file. */
  private async indexTail(t: TopicState, locked: boolean): Promise<void> {
    const fd = t.fd!;
    let buf = Buffer.allocUnsafe(CHUNK_BYTES);
    let pos = t.size;
    for (;;) {
      const { bytesRead } = await fd.read(buf, 0, buf.length, pos);
      if (bytesRead === 0) return;
      let start = 0;
      for (;;) {
        const nl = buf.indexOf(CH_NEWLINE, start);
        if (nl === -1 || nl >= bytesRead) break;
        this.indexLine(t, buf, start, nl, pos + start);
        start = nl + 1;
        // Per line, so a damaged line stops the index exactly before it.
        t.size = pos + start;
      }
      pos += start;
      if (start === bytesRead) continue;
      if (bytesRead < buf.length) {
        // The file ends in a line without its '\n'.
        if (locked) await fd.truncate(pos);
        return;
      }
      // A line longer than the buffer: read it again with room for it.
      if (start === 0) buf = Buffer.allocUnsafe(buf.length * 2);
    }
  }

  private indexLine(t: TopicState, buf: Buffer, start: number, end: number, offset: number): void {
    const lineNo = t.count + 1;
    let id = -1;
    if (buf.toString('latin1', start, Math.min(end, start + ID_PREFIX.length)) === ID_PREFIX) {
      let i = start + ID_PREFIX.length;
      let v = 0;
      let digits = 0;
      // Ids are safe integers: at most 16 digits.
      while (i < end && digits <= 16 && buf[i]! >= CH_0 && buf[i]! <= CH_9) {
        v = v * 10 + (buf[i]! - CH_0);
        i++;
        digits++;
      }
      if (digits > 0 && digits <= 16 && buf[i] === CH_COMMA && Number.isSafeInteger(v)) id = v;
    }
    if (id < 1) throw corrupt(`${t.file} line ${lineNo} is not an event line: ${JSON.stringify(buf.toString('utf8', start, Math.min(end, start + 80)))}`, t.name);
    const expected = t.count === 0 && t.latest === 0 ? id : t.latest + 1;
    if (id !== expected) throw corrupt(`${t.file} line ${lineNo} has id ${id}, expected ${expected}`, t.name);
    if (t.count === 0) t.firstId = id;
    this.pushOffset(t, offset);
    t.latest = id;
    if (t.headers.active) {
      try {
        t.headers.add(id, this.parseLine(t, buf.toString('utf8', start, end), id, lineNo).headers);
      } catch {
        // A damaged line is reported when it is read; it holds no header value meanwhile.
      }
    }
  }

  /** Indexes `header`'s values over the whole topic (first use by appendIdempotent): one pass, by pages. */
  private async buildHeaderIndex(t: TopicState, header: string): Promise<void> {
    const found: [number, Record<string, unknown>][] = [];
    for (let i = 0; i < t.count; i += MAX_BATCH) {
      for (const e of await this.readLocked(t, i, Math.min(t.count, i + MAX_BATCH))) found.push([e.id, e.headers]);
    }
    t.headers.build(header, found);
  }

  private async read(name: string, after: number, limit: number): Promise<LogEvent[]> {
    const t = this.state(name);
    return this.exclusive(t, async () => {
      await this.refresh(t, false);
      const i = Math.max(0, after + 1 - t.firstId);
      if (i >= t.count) return [];
      return this.readLocked(t, i, Math.min(t.count, i + limit));
    });
  }

  /** The events at index positions [i, j) of the topic's current index (the caller serialised access). */
  private async readLocked(t: TopicState, i: number, j: number): Promise<LogEvent[]> {
    const from = t.offsets[i]!;
    const to = j < t.count ? t.offsets[j]! : t.size;
    const buf = Buffer.allocUnsafe(to - from);
    try {
      let got = 0;
      while (got < buf.length) {
        const { bytesRead } = await t.fd!.read(buf, got, buf.length - got, from + got);
        if (bytesRead === 0) throw new Error(`unexpected end of file at byte ${from + got}`);
        got += bytesRead;
      }
    } catch (err) {
      throw ioError(`cannot read ${t.file}`, err, t.name);
    }
    const out: LogEvent[] = [];
    let start = 0;
    for (let k = i; k < j; k++) {
      const end = (k + 1 < t.count ? t.offsets[k + 1]! : t.size) - from - 1;
      out.push(this.parseLine(t, buf.toString('utf8', start, end), t.firstId + k, k + 1));
      start = end + 1;
    }
    return out;
  }

  private parseLine(t: TopicState, text: string, id: number, lineNo: number): LogEvent {
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (err) {
      throw corrupt(`${t.file} line ${lineNo} does not parse as JSON: ${(err as Error).message}`, t.name, err);
    }
    const e = v as Partial<LogEvent> | null;
    if (
      e === null ||
      typeof e !== 'object' ||
      e.id !== id ||
      typeof e.kind !== 'string' ||
      e.headers === null ||
      typeof e.headers !== 'object' ||
      typeof e.occurred_at_ms !== 'number' ||
      !('payload' in e)
    ) {
      throw corrupt(`${t.file} line ${lineNo} is not the event with id ${id}`, t.name);
    }
    return { id, kind: e.kind, payload: e.payload, headers: e.headers, occurred_at_ms: e.occurred_at_ms };
  }

  // --- compaction ------------------------------------------------------------------------------

  private async compactLocked(t: TopicState, before: number): Promise<CompactResult> {
    await this.refresh(t, true);
    const latest = t.latest === 0 ? null : t.latest;
    const removed = Math.max(0, Math.min(before + 1 - t.firstId, t.count));
    if (removed === 0) return { removed: 0, remaining: t.count, latest };
    try {
      // First the id floor, so a crash after the rename below still continues ids.
      // The chain's tip is kept whatever this log's own setting: a log without provenance that
      // compacts a chained topic must not restart its chain.
      const tip = await this.chainTip(t);
      const meta = tip !== GENESIS ? { latest: t.latest, lastHash: tip } : { latest: t.latest };
      await this.writeAtomic(t.name + META_EXT, JSON.stringify(meta) + '\n');
      const keep = removed < t.count ? t.offsets[removed]! : t.size;
      const tmp = this.tmpPath(t.name + TOPIC_EXT);
      const out = await fsp.open(tmp, 'ax+');
      let renamed = false;
      try {
        const buf = Buffer.allocUnsafe(CHUNK_BYTES);
        for (let pos = keep; pos < t.size; ) {
          const { bytesRead } = await t.fd!.read(buf, 0, Math.min(buf.length, t.size - pos), pos);
          if (bytesRead === 0) throw new Error(`unexpected end of ${t.file} at byte ${pos}`);
          let done = 0;
          while (done < bytesRead) done += (await out.write(buf, done, bytesRead - done, null)).bytesWritten;
          pos += bytesRead;
        }
        await out.sync();
        await fsp.rename(tmp, t.file);
        renamed = true;
        await fsyncDir(this.dir);
      } catch (err) {
        await out.close().catch(() => undefined);
        if (!renamed) await fsp.rm(tmp, { force: true }).catch(() => undefined);
        throw err;
      }
      const st = await out.stat({ bigint: true });
      await t.fd?.close().catch(() => undefined);
      t.fd = out;
      t.dev = st.dev;
      t.ino = st.ino;
      t.offsets.copyWithin(0, removed, t.count);
      t.count -= removed;
      for (let k = 0; k < t.count; k++) t.offsets[k] = t.offsets[k]! - keep;
      t.size -= keep;
      t.firstId += removed;
      t.headers.prune(before);
      // The new file was fsynced whole: nothing written before it is pending.
      t.dirty = false;
    } catch (err) {
      throw ioError(`cannot compact ${t.file}`, err, t.name);
    }
    return { removed, remaining: t.count, latest };
  }

  private async readMeta(t: TopicState): Promise<number> {
    return (await this.readMetaFile(t)).latest;
  }

  /** The topic's meta file: the last id (0 without one) and, with provenance, the chain's tip. */
  private async readMetaFile(t: TopicState): Promise<{ latest: number; lastHash?: string }> {
    const file = path.join(this.dir, t.name + META_EXT);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (errCode(err) === 'ENOENT') return { latest: 0 };
      throw err;
    }
    let meta: { latest?: unknown; lastHash?: unknown };
    try {
      meta = JSON.parse(text) as { latest?: unknown; lastHash?: unknown };
    } catch (err) {
      throw corrupt(`${file} does not parse as JSON`, t.name, err);
    }
    const latest = meta.latest;
    if (!Number.isSafeInteger(latest) || (latest as number) < 0) throw corrupt(`${file} holds no valid "latest" id`, t.name);
    return { latest: latest as number, ...(typeof meta.lastHash === 'string' ? { lastHash: meta.lastHash } : {}) };
  }

  // --- cursors ---------------------------------------------------------------------------------

  private async writeAcks(t: TopicState): Promise<void> {
    t.ackScheduled = false;
    const batch = t.acks;
    t.acks = [];
    try {
      await this.withLock(t, async () => {
        // Read under the lock: other processes' acks since our last write must survive ours.
        const cursors = await this.readCursors(t.name);
        let changed = false;
        for (const a of batch) {
          const cur = cursors.get(a.consumer);
          if (cur === undefined || a.upTo > cur) {
            cursors.set(a.consumer, a.upTo);
            changed = true;
          }
        }
        if (changed) await this.writeAtomic(t.name + CURSORS_EXT, JSON.stringify(Object.fromEntries(cursors)) + '\n');
      });
    } catch (err) {
      const e = ioError(`cannot write the cursors of topic ${t.name}`, err, t.name);
      for (const a of batch) a.reject(e);
      return;
    }
    for (const a of batch) a.resolve();
  }

  private async readCursors(name: string): Promise<Map<string, number>> {
    const file = path.join(this.dir, name + CURSORS_EXT);
    let text: string;
    try {
      text = await fsp.readFile(file, 'utf8');
    } catch (err) {
      if (errCode(err) === 'ENOENT') return new Map();
      throw ioError(`cannot read ${file}`, err, name);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw corrupt(`${file} does not parse as JSON`, name, err);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw corrupt(`${file} is not a JSON object`, name);
    const out = new Map<string, number>();
    for (const [k, v] of Object.entries(parsed)) {
      if (!Number.isSafeInteger(v) || (v as number) < 0) throw corrupt(`${file}: the cursor of ${JSON.stringify(k)} is not an id`, name);
      out.set(k, v as number);
    }
    return out;
  }

  // --- files -----------------------------------------------------------------------------------

  private tmpPath(base: string): string {
    return path.join(this.dir, `${base}.${this.owner!.pid}.${this.owner!.token}.tmp`);
  }

  /** Temp file, fsync, rename over, fsync of the directory: the old or the new content, never a mix. */
  private async writeAtomic(base: string, text: string): Promise<void> {
    const tmp = this.tmpPath(base);
    try {
      const fh = await fsp.open(tmp, 'w');
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fsp.rename(tmp, path.join(this.dir, base));
    } catch (err) {
      await fsp.rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
    await fsyncDir(this.dir);
  }

  /** Temp files and owner files of dead processes, guards of locks long gone. Best effort. */
  private async removeLeftovers(): Promise<void> {
    let entries: string[];
    try {
      entries = await fsp.readdir(this.dir);
    } catch {
      return;
    }
    for (const e of entries) {
      const m = TMP_RE.exec(e) ?? OWNER_RE.exec(e);
      try {
        if (m) {
          // Judged by the record in the owner file of the pid and token in the name (a log open
          // in another thread of this process is recognised by it), or by the name alone. A
          // synchronous read: once per leftover, at open.
          const recorded = readHolderSync(path.join(this.dir, `${m[1]}.${m[2]}.owner`));
          const holder = recorded?.pid === Number(m[1]) && recorded.token === m[2] ? recorded : { pid: Number(m[1]), token: m[2]! };
          if (holderStale(holder)) await fsp.rm(path.join(this.dir, e), { force: true });
        } else if (e.endsWith('.break')) removeDeadGuard(this.dir, e);
      } catch {
        // Another process is cleaning up too, or the entry is not ours: leave it.
      }
    }
  }
}

export function openFileEventLog(dir: string, opts: { queueDepth: number; readOnly: boolean; provenance?: boolean }): Promise<EventLog> {
  return FileEventLog.open(dir, opts);
}
