// The Redis backend: the event log on Redis Streams (a single server or Redis Cluster), through the
// official client, node-redis (`redis`, an optional dependency). Key layout and scripts:
// redis-keys.ts. Appends are queued per topic and sent in batches (one script call appends many
// events), several batches in flight, each numbered so a batch retried after a lost connection is
// not appended twice. Subscriptions read history in pages, then block in XREAD on a connection of
// their own, always from the last id seen.

import { createHash, randomBytes } from 'node:crypto';
import { closedError, EventLogError, EventLogErrorCode } from './errors.js';
import { APPEND_PREPARED, checkConsumer, checkFrom, checkId, checkLimit, prepareEvent, type PreparedAppender, type PreparedEvent } from './record.js';
import { ACK_SCRIPT, APPEND_SCRIPT, COMPACT_SCRIPT, packBatch, topicKeys, WRITER_TTL_MS, type TopicKeys } from './redis-keys.js';
import type { RedisEventLogOptions } from './redis-options.js';
import { topicName } from './topic.js';
import type { CompactResult, EventLog, EventLogDescription, LogEvent, NewLogEvent, SubscribeOptions, TopicLike } from './types.js';

const INSTALL_HINT = 'npm install redis';

/** History is read this many events at a time (as the other backends' subscriptions do). */
const PAGE = 512;
/** At most this many events, and about this many characters, per append script call: a call
 *  holds the server for its duration (Redis runs one script at a time), so batches stay around a
 *  millisecond of its work. */
const BATCH_EVENTS = 512;
const BATCH_CHARS = 1024 * 1024;
/** Batches of one topic in flight at once: enough to keep a loopback connection busy, well under
 *  the WRITER_WINDOW of batch numbers the server remembers per writer. */
const MAX_IN_FLIGHT = 4;
/** A blocked XREAD returns after this long with nothing, and the loop looks again, so no read
 *  waits on the server for ever. (A peer that vanished without a word is found by the socket's
 *  TCP keepalive, which node-redis turns on.) */
const BLOCK_MS = 5000;
/** Reconnection backoff after the log is open: doubling from 50 ms, capped at 500 ms, so a server
 *  back from a restart is found within half a second (a connection attempt is cheap). */
const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 500;

/** What this backend needs of a node-redis client or cluster client. */
interface Connection {
  send<T>(key: string, readonly: boolean, args: (string | Buffer)[]): Promise<T>;
  connect(): Promise<unknown>;
  duplicate(): Connection;
  close(): Promise<void>;
  destroy(): void;
}

type RedisModule = typeof import('redis');

async function loadRedis(): Promise<RedisModule> {
  try {
    return await import('redis');
  } catch (err) {
    throw new EventLogError(EventLogErrorCode.UNAVAILABLE, `ringlog: the redis backend needs the optional dependency redis (node-redis): ${INSTALL_HINT}`, { cause: err });
  }
}

/** The URL without its password, for messages and describe(). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

function connection(redis: RedisModule, o: RedisEventLogOptions, state: { opened: boolean }): Connection {
  const reconnectStrategy = (retries: number, cause: Error): number | Error => {
    // Before the log is open, a refused connection is the answer: open() fails with it.
    if (!state.opened) return cause;
    return Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(retries, 10));
  };
  const socket = { connectTimeout: o.connectTimeoutMs, reconnectStrategy };
  // No offline queue: a command made while the connection is down fails at once (ClientOfflineError,
  // certainly not run), so the append path decides what waits and for how long (TopicWriter).
  const disableOfflineQueue = true;
  // Without a listener, node-redis's 'error' events would end the process. The commands that fail
  // carry the same errors, and are what the log reports.
  const onError = (): void => {};
  if (o.cluster) {
    // The nodes the client discovers get `defaults` only, not what the URL says: its user, password
    // and TLS go there too, or every node but the first would refuse (NOAUTH) or speak plain text.
    const u = new URL(o.url);
    const auth = {
      ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    };
    const nodeSocket = u.protocol === 'rediss:' ? { ...socket, tls: true as const } : socket;
    const make = (): Connection => {
      const c = redis.createCluster({ rootNodes: [{ url: o.url }], defaults: { ...auth, socket: nodeSocket, disableOfflineQueue } });
      c.on('error', onError);
      return {
        send: (key, ro, args) => c.sendCommand(key, ro, args) as Promise<never>,
        connect: () => c.connect(),
        duplicate: make,
        close: () => c.close(),
        destroy: () => c.destroy(),
      };
    };
    return make();
  }
  const make = (): Connection => {
    const c = redis.createClient({ url: o.url, socket, disableOfflineQueue });
    c.on('error', onError);
    // The socket holds the process only while a command waits for its reply (as the SQLite
    // backend's thread does): a process that forgets close() still exits once its appends are in.
    // (node-redis's cluster client has no ref/unref: a cluster log must be closed.)
    let pending = 0;
    return {
      send: (_key, _ro, args) => {
        if (pending++ === 0) c.ref();
        return (c.sendCommand(args) as Promise<never>).finally(() => {
          if (--pending === 0) c.unref();
        });
      },
      connect: async () => {
        await c.connect();
        if (pending === 0) c.unref();
      },
      duplicate: make,
      close: () => c.close(),
      destroy: () => c.destroy(),
    };
  };
  return make();
}

/**
 * Opens the log on the server at `o.url`. Rejects with ERR_RINGLOG_EVENT_LOG_UNAVAILABLE when the
 * redis package is not installed, and with ERR_RINGLOG_EVENT_LOG_IO when the server cannot be
 * reached or is older than 7.0 (scripts declare their flags).
 */
export async function openRedisEventLog(o: RedisEventLogOptions): Promise<EventLog> {
  const redis = await loadRedis();
  const state = { opened: false };
  const conn = connection(redis, o, state);
  try {
    await conn.connect();
  } catch (err) {
    conn.destroy();
    throw new EventLogError(EventLogErrorCode.IO, `ringlog: cannot reach redis at ${safeUrl(o.url)}: ${(err as Error).message}`, { cause: err });
  }
  let server: ServerInfo;
  try {
    server = await serverInfo(conn, o.cluster);
  } catch (err) {
    conn.destroy();
    throw asLogError(err, `cannot read the server's INFO at ${safeUrl(o.url)}`);
  }
  if (server.major < 7) {
    conn.destroy();
    throw new EventLogError(EventLogErrorCode.IO, `ringlog: the redis backend needs Redis 7.0 or later; ${safeUrl(o.url)} runs ${server.version}`);
  }
  state.opened = true;
  return new RedisEventLog(redis, conn, o, server);
}

interface ServerInfo {
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  readonly mode: 'standalone' | 'cluster';
  readonly appendonly: boolean;
  readonly appendfsync: string;
}

async function serverInfo(conn: Connection, cluster: boolean): Promise<ServerInfo> {
  // On a cluster INFO goes to the node owning the key's slot: any one tells the version.
  const info = await conn.send<string>('ringlog', true, ['INFO', 'server']);
  const persistence = await conn.send<string>('ringlog', true, ['INFO', 'persistence']);
  const field = (text: string, name: string): string => new RegExp(`^${name}:(.*)$`, 'm').exec(String(text))?.[1]?.trim() ?? '';
  const version = field(info, 'redis_version');
  const [major = 0, minor = 0] = version.split('.').map(Number);
  let appendfsync = 'unknown';
  try {
    // RESP2 answers [name, value]; RESP3 a map.
    const reply = await conn.send<string[] | Record<string, string>>('ringlog', true, ['CONFIG', 'GET', 'appendfsync']);
    appendfsync = (Array.isArray(reply) ? reply[1] : reply.appendfsync) ?? 'unknown';
  } catch {
    // CONFIG may be renamed or refused (managed services): the guarantee is then stated as unknown.
  }
  return { version, major, minor, mode: cluster ? 'cluster' : 'standalone', appendonly: field(persistence, 'aof_enabled') === '1', appendfsync };
}

/** Maps a server or connection failure to the log's typed error. */
function asLogError(err: unknown, what: string, topic?: string): EventLogError {
  if (err instanceof EventLogError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const opts = { cause: err, ...(topic !== undefined ? { topic } : {}) };
  if (msg.startsWith('READONLY')) return new EventLogError(EventLogErrorCode.READ_ONLY, `ringlog: ${what}: the server is a read-only replica (${msg})`, opts);
  if (msg.startsWith('WRONGTYPE')) return new EventLogError(EventLogErrorCode.CORRUPT, `ringlog: ${what}: a key of the log holds another type of value (${msg})`, opts);
  return new EventLogError(EventLogErrorCode.IO, `ringlog: ${what}: ${msg}`, opts);
}

/**
 * What a failed command says about whether it ran. 'answered': the server replied with an error
 * (the script did nothing: it is refused whole, see redis-keys.ts); 'unsent': it never left this
 * process (the client was offline, or the server was still loading its data), so it did not run
 * and may be sent again; 'unknown': the connection broke while it was on its way or its reply
 * was, so only the server can tell; 'closed': the log is closing; 'early': an append batch came
 * before an earlier one of its writer (APPEND_SCRIPT), not run, to be sent again after it.
 */
type Outcome = 'answered' | 'unsent' | 'unknown' | 'closed' | 'early';

function outcomeOf(redis: RedisModule, err: unknown): Outcome {
  if (err instanceof redis.ClientClosedError) return 'closed';
  if (err instanceof redis.ClientOfflineError) return 'unsent';
  if (err instanceof redis.ErrorReply) {
    if (err.message.startsWith('RINGLOG_EARLY')) return 'early';
    // A server restarting answers LOADING until its AOF is replayed; a cluster in a failover,
    // CLUSTERDOWN or TRYAGAIN: the command did not run, and will once it is back.
    return /^(LOADING|CLUSTERDOWN|TRYAGAIN|BUSY|MASTERDOWN)\b/.test(err.message) ? 'unsent' : 'answered';
  }
  if (err instanceof EventLogError) return 'answered';
  return 'unknown';
}

interface Waiting {
  readonly event: PreparedEvent;
  readonly chars: number;
  /** Its place among this topic's appends: flush() waits for those made before it was called. */
  readonly seq: number;
  settled: boolean;
  resolve(id: number): void;
  reject(err: EventLogError): void;
}

interface Batch {
  readonly number: number;
  readonly items: Waiting[];
  /** The script's arguments but the last (the floor, known only when it is sent). */
  readonly args: (string | Buffer)[];
  /** It may have run: the connection broke while it or its reply was on the way. */
  unknown: boolean;
  settled: boolean;
}

/**
 * Entries in the order they were made, settled in any order: what the oldest unsettled one is,
 * in O(1) amortised (settled entries at the front are dropped as they come).
 */
class Unsettled<T extends { settled: boolean }> {
  #items: T[] = [];
  #head = 0;

  add(item: T): void {
    this.#items.push(item);
  }

  /** The oldest entry not settled yet, if any. */
  oldest(): T | undefined {
    const items = this.#items;
    while (this.#head < items.length && items[this.#head]!.settled) this.#head++;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
      return undefined;
    }
    if (this.#head > 4096 && this.#head * 2 > items.length) {
      items.splice(0, this.#head);
      this.#head = 0;
    }
    return items[this.#head];
  }
}

/**
 * Appends of one topic: queued in call order, sent in numbered batches, several in flight. The
 * server applies a writer's batches in number order only (APPEND_SCRIPT refuses one that comes
 * early, and is told which earlier ones the writer gave up on), so ids follow call order even
 * when a batch has to be sent again behind later ones.
 */
class TopicWriter {
  readonly #log: RedisEventLog;
  readonly topic: string;
  readonly keys: TopicKeys;
  /** Appends not yet in a batch: [#head, length) of #queue (an index, not shift(): O(1) per take). */
  #queue: Waiting[] = [];
  #head = 0;
  #nextSeq = 0;
  readonly #unsettled = new Unsettled<Waiting>();
  readonly #openBatches = new Unsettled<Batch>();
  #marks: { seq: number; resolve(): void }[] = [];
  #inFlight = 0;
  #nextBatch = 1;
  /** Batches to send again, in number order, one at a time, before anything new. */
  #retrying: Batch[] = [];
  #recovering = false;
  #recoveryRunning = false;
  #scheduled = false;

  constructor(log: RedisEventLog, topic: string, keys: TopicKeys) {
    this.#log = log;
    this.topic = topic;
    this.keys = keys;
  }

  get busy(): boolean {
    return this.#unsettled.oldest() !== undefined || this.#recovering;
  }

  add(event: PreparedEvent): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.#log.lostFor() >= this.#log.retryTimeoutMs) {
        // The server has been gone too long: appends fail at once rather than pile up.
        this.#log.countFailures(1, this.#goneError());
        reject(this.#goneError());
        return;
      }
      const w: Waiting = { event, chars: event.payloadJson.length + event.headersJson.length + event.kind.length, seq: this.#nextSeq++, settled: false, resolve, reject };
      this.#queue.push(w);
      this.#unsettled.add(w);
      if (!this.#scheduled) {
        this.#scheduled = true;
        // Appends made in the same turn of the loop go in one batch.
        queueMicrotask(() => {
          this.#scheduled = false;
          this.#pump();
        });
      }
    });
  }

  /** Resolves once every append made before the call has settled (later ones are not waited for). */
  settled(): Promise<void> {
    const seq = this.#nextSeq;
    if (this.#settledBelow(seq)) return Promise.resolve();
    return new Promise((resolve) => this.#marks.push({ seq, resolve }));
  }

  #settledBelow(seq: number): boolean {
    const oldest = this.#unsettled.oldest();
    return oldest === undefined || oldest.seq >= seq;
  }

  #pump(): void {
    const queue = this.#queue;
    while (!this.#recovering && this.#head < queue.length && this.#inFlight < MAX_IN_FLIGHT) {
      const items: Waiting[] = [];
      let chars = 0;
      while (this.#head < queue.length && items.length < BATCH_EVENTS && (items.length === 0 || chars + queue[this.#head]!.chars <= BATCH_CHARS)) {
        const w = queue[this.#head++]!;
        chars += w.chars;
        items.push(w);
      }
      this.#compactQueue();
      const number = this.#nextBatch++;
      const [blob, lengths] = packBatch(items.map((w) => w.event));
      const batch: Batch = { number, items, args: [String(number), String(WRITER_TTL_MS), String(items.length), blob, lengths], unknown: false, settled: false };
      this.#openBatches.add(batch);
      void this.#send(batch);
    }
  }

  #compactQueue(): void {
    if (this.#head === this.#queue.length) {
      this.#queue.length = 0;
      this.#head = 0;
    } else if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      // Taken entries are let go of in chunks, so a long queue does not hold them all.
      this.#queue.splice(0, this.#head);
      this.#head = 0;
    }
  }

  /** The batch's script call, with the floor: the oldest batch of this writer not given up on. */
  #append(batch: Batch): Promise<number> {
    const floor = this.#openBatches.oldest()?.number ?? batch.number;
    return this.#log.script(APPEND_SCRIPT, [this.keys.events, this.keys.last, this.keys.writer], [...batch.args, String(floor)]).then(Number);
  }

  async #send(batch: Batch): Promise<void> {
    this.#inFlight++;
    try {
      this.#resolve(batch, await this.#append(batch));
    } catch (err) {
      const outcome = this.#log.outcome(err);
      if (outcome === 'answered' || outcome === 'closed') {
        this.#fail(batch, asLogError(err, `cannot append to ${this.topic}`, this.topic));
      } else {
        // 'unsent', 'unknown', 'early': again, in order, once nothing is in flight.
        if (outcome === 'unknown') batch.unknown = true;
        this.#retrying.push(batch);
        this.#recovering = true;
      }
    } finally {
      this.#inFlight--;
    }
    if (this.#recovering) {
      if (this.#inFlight === 0 && !this.#recoveryRunning) void this.#recover();
    } else {
      this.#pump();
    }
  }

  /**
   * Some batches must be sent again: the connection failed under them, or the server refused
   * them for coming before an earlier one. They go again in order, one at a time, under the same
   * numbers: a number the server has seen is answered with the first id it gave then, so nothing
   * is appended twice. A batch that may have reached the server before the connection broke
   * ('unknown') waits for it however long it takes: only the server can say whether it holds its
   * events, and failing it would count events the log may have as lost. The others, and appends
   * made meanwhile, fail once the connection has been gone retryTimeoutMs: they certainly did
   * not run. close() ends the wait.
   */
  async #recover(): Promise<void> {
    this.#recoveryRunning = true;
    try {
      for (;;) {
        this.#retrying.sort((a, b) => a.number - b.number);
        while (this.#retrying.length > 0) {
          const batch = this.#retrying[0]!;
          let first: number;
          try {
            first = await this.#append(batch);
          } catch (err) {
            const outcome = this.#log.outcome(err);
            if (outcome === 'unknown') batch.unknown = true;
            if (outcome === 'closed') {
              this.#retrying.shift();
              this.#fail(batch, batch.unknown ? this.#closedUnknownError(batch, err) : asLogError(err, `cannot append to ${this.topic}`, this.topic));
              continue;
            }
            if (outcome === 'answered') {
              if (!batch.unknown) {
                this.#retrying.shift();
                this.#fail(batch, asLogError(err, `cannot append to ${this.topic}`, this.topic));
                continue;
              }
              // It may have run before: the server's record of its number says.
              const known = await this.#askServer(batch);
              if (known !== 'keep-waiting') {
                this.#retrying.shift();
                if (known === null) this.#fail(batch, asLogError(err, `cannot append to ${this.topic}`, this.topic));
                else this.#resolve(batch, known);
                continue;
              }
            }
            break;
          }
          this.#retrying.shift();
          this.#resolve(batch, first);
        }
        if (this.#retrying.length === 0) break;
        if (this.#log.lostFor() >= this.#log.retryTimeoutMs) this.#giveUp();
        await new Promise((r) => setTimeout(r, RECONNECT_MIN_MS));
      }
      this.#recovering = false;
    } finally {
      this.#recoveryRunning = false;
    }
    this.#pump();
  }

  /**
   * An 'unknown' batch the server now refuses before running it (out of memory, a disk error): was
   * it appended the first time? Its number in the writer's hash says (null: it was not). A server
   * that turned read-only (a failover) may be a replica behind its old master: it cannot tell.
   */
  async #askServer(batch: Batch): Promise<number | null | 'keep-waiting'> {
    try {
      const v = await this.#log.send<string | null>(this.keys.writer, true, ['HGET', this.keys.writer, String(batch.number)]);
      const role = await this.#log.send<unknown>(this.keys.writer, true, ['ROLE']);
      if (Array.isArray(role) && role[0] !== 'master') return 'keep-waiting';
      return v === null || v === undefined ? null : Number(v);
    } catch {
      return 'keep-waiting';
    }
  }

  /** The connection has been gone retryTimeoutMs: what certainly did not run fails, queued appends too. */
  #giveUp(): void {
    const err = this.#goneError();
    const keep: Batch[] = [];
    for (const b of this.#retrying) {
      if (b.unknown) keep.push(b);
      else this.#fail(b, err);
    }
    this.#retrying = keep;
    const queued = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    if (queued.length > 0) this.#failItems(queued, err);
  }

  #goneError(): EventLogError {
    return new EventLogError(EventLogErrorCode.IO, `ringlog: cannot append to ${this.topic}: the connection to redis has been lost for more than ${this.#log.retryTimeoutMs} ms`, { topic: this.topic });
  }

  #closedUnknownError(batch: Batch, cause: unknown): EventLogError {
    return new EventLogError(EventLogErrorCode.IO, `ringlog: the redis event log was closed while the connection was down; ${batch.items.length} append(s) to ${this.topic} may or may not be in the log`, { topic: this.topic, cause });
  }

  #resolve(batch: Batch, first: number): void {
    batch.settled = true;
    for (let i = 0; i < batch.items.length; i++) {
      const w = batch.items[i]!;
      w.settled = true;
      w.resolve(first + i);
    }
    this.#settledSome();
  }

  #fail(batch: Batch, err: EventLogError): void {
    batch.settled = true;
    this.#failItems(batch.items, err);
  }

  #failItems(items: Waiting[], err: EventLogError): void {
    this.#log.countFailures(items.length, err);
    for (const w of items) {
      w.settled = true;
      w.reject(err);
    }
    this.#settledSome();
  }

  /** The log is closing for good: what was never sent fails. */
  abandon(err: EventLogError): void {
    const queued = this.#queue.slice(this.#head);
    this.#queue = [];
    this.#head = 0;
    if (queued.length > 0) this.#failItems(queued, err);
  }

  #settledSome(): void {
    if (this.#marks.length === 0) return;
    const keep: { seq: number; resolve(): void }[] = [];
    for (const m of this.#marks) {
      if (this.#settledBelow(m.seq)) m.resolve();
      else keep.push(m);
    }
    this.#marks = keep;
  }
}

export class RedisEventLog implements EventLog, PreparedAppender {
  readonly backend = 'redis' as const;
  readonly #redis: RedisModule;
  readonly #conn: Connection;
  readonly #o: RedisEventLogOptions;
  readonly #server: ServerInfo;
  /** This instance's name in the writer keys: random, so two instances never share batch numbers. */
  readonly #writerId = randomBytes(8).toString('hex');
  readonly #writers = new Map<string, TopicWriter>();
  readonly #subscriptions = new Set<Connection>();
  /** Topics appended to since the last flush (for WAITAOF). */
  readonly #written = new Set<string>();
  readonly #shas = new Map<string, string>();
  #closed = false;
  closing = false;
  #closePromise: Promise<void> | undefined;
  /** Appends that failed since the last flush(), and the first failure among them. */
  #failedAppends = 0;
  #firstFailure: EventLogError | undefined;
  /** When commands started failing for want of a connection; 0 while the server answers. */
  #lostAt = 0;
  readonly retryTimeoutMs: number;

  constructor(redis: RedisModule, conn: Connection, o: RedisEventLogOptions, server: ServerInfo) {
    this.#redis = redis;
    this.#conn = conn;
    this.#o = o;
    this.#server = server;
    this.retryTimeoutMs = o.retryTimeoutMs;
  }

  outcome(err: unknown): Outcome {
    return outcomeOf(this.#redis, err);
  }

  /** How long the server has been out of reach (0: it answers). One clock for every topic. */
  lostFor(): number {
    return this.#lostAt === 0 ? 0 : Date.now() - this.#lostAt;
  }

  countFailures(n: number, err: EventLogError): void {
    this.#failedAppends += n;
    this.#firstFailure ??= err;
  }

  /** A command on the log's connection; the outage clock starts at a lost connection and stops at any reply. */
  async send<T>(key: string, readonly: boolean, args: (string | Buffer)[]): Promise<T> {
    try {
      const reply = await this.#conn.send<T>(key, readonly, args);
      this.#lostAt = 0;
      return reply;
    } catch (err) {
      const outcome = this.outcome(err);
      if (outcome === 'unsent' || outcome === 'unknown') {
        if (this.#lostAt === 0) this.#lostAt = Date.now();
      } else {
        // The server answered (an error reply): it is there.
        this.#lostAt = 0;
      }
      throw err;
    }
  }

  #keys(topic: string): TopicKeys {
    return topicKeys(this.#o.keyPrefix, topic, this.#writerId);
  }

  /** Runs a script by its SHA, loading it the first time the server does not know it. */
  async script(source: string, keys: string[], args: (string | Buffer)[]): Promise<unknown> {
    let sha = this.#shas.get(source);
    if (sha === undefined) this.#shas.set(source, (sha = createHash('sha1').update(source).digest('hex')));
    const argv = [String(keys.length), ...keys, ...args];
    try {
      return await this.send(keys[0]!, false, ['EVALSHA', sha, ...argv]);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return this.send(keys[0]!, false, ['EVAL', source, ...argv]);
    }
  }

  append(topic: TopicLike, event: NewLogEvent): Promise<number> {
    const name = topicName(topic);
    return this[APPEND_PREPARED](name, prepareEvent(event));
  }

  [APPEND_PREPARED](topic: TopicLike, prepared: PreparedEvent): Promise<number> {
    const name = topicName(topic);
    if (this.#closed || this.closing) return Promise.reject(closedError(this.backend));
    this.#written.add(name);
    let w = this.#writers.get(name);
    if (w === undefined) this.#writers.set(name, (w = new TopicWriter(this, name, this.#keys(name))));
    return w.add(prepared);
  }

  /**
   * Resolves once every earlier append is acknowledged by the server; rejects with the count of
   * appends that failed since the last flush. Durable as the server's appendfsync says (describe()).
   */
  async flush(): Promise<void> {
    if (this.#closed) throw closedError(this.backend);
    await Promise.all([...this.#writers.values()].map((w) => w.settled()));
    const written = [...this.#written];
    this.#written.clear();
    const failed = this.#failedAppends;
    const first = this.#firstFailure;
    this.#failedAppends = 0;
    this.#firstFailure = undefined;
    if (waitsForAof(this.#server) && written.length > 0) await this.#waitAof(written);
    if (failed > 0) {
      throw new EventLogError(EventLogErrorCode.IO, `ringlog: ${failed} append(s) to redis failed since the last flush: ${first?.message ?? 'unknown cause'}`, { cause: first, ...(first?.topic !== undefined ? { topic: first.topic } : {}) });
    }
  }

  /**
   * WAITAOF (Redis 7.2+, appendonly on): returns once the server has fsynced every write this
   * connection made before it. One per topic written since the last flush, routed by the topic's
   * key: on a cluster each goes to the node holding that topic (a standalone server gets one).
   */
  async #waitAof(topics: string[]): Promise<void> {
    for (const topic of this.#o.cluster ? topics : topics.slice(0, 1)) {
      const key = this.#keys(topic).events;
      let reply: unknown;
      try {
        reply = await this.send(key, false, ['WAITAOF', '1', '0', String(this.#o.retryTimeoutMs)]);
      } catch (err) {
        throw asLogError(err, `cannot wait for the server to fsync ${topic}`, topic);
      }
      if (!Array.isArray(reply) || Number(reply[0]) < 1) {
        throw new EventLogError(EventLogErrorCode.IO, `ringlog: the server did not fsync its append-only file within ${this.#o.retryTimeoutMs} ms (WAITAOF answered ${JSON.stringify(reply)})`, { topic });
      }
    }
  }

  // Each public method checks its arguments before its first await: misuse throws at the call.
  readRange(topic: TopicLike, from: number | null | undefined, limit: number): Promise<LogEvent[]> {
    const name = topicName(topic);
    const after = checkFrom(from);
    checkLimit(limit);
    if (this.#closed) return Promise.reject(closedError(this.backend));
    return this.#range(name, after, limit);
  }

  async #range(topic: string, after: number, limit: number): Promise<LogEvent[]> {
    const key = this.#keys(topic).events;
    let reply: unknown;
    try {
      reply = await this.send(key, true, ['XRANGE', key, `(${after}-0`, '+', 'COUNT', String(limit)]);
    } catch (err) {
      throw asLogError(err, `cannot read ${topic}`, topic);
    }
    return parseEntries(reply, topic);
  }

  subscribe(topic: TopicLike, from?: number | null, options: SubscribeOptions = {}): AsyncIterableIterator<LogEvent> {
    const name = topicName(topic);
    const after = checkFrom(from);
    return new RedisSubscription(this, name, after, this.#o.queueDepth, options.signal).iterator();
  }

  /** A connection of its own for a subscription's blocking reads (ended by close()). */
  async subscriptionConnection(): Promise<Connection> {
    const c = this.#conn.duplicate();
    this.#subscriptions.add(c);
    let timer: NodeJS.Timeout | undefined;
    try {
      // The client would keep trying to connect while the server is away: bounded like an append.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no connection within ${this.retryTimeoutMs} ms`)), this.retryTimeoutMs);
      });
      await Promise.race([c.connect(), timeout]);
    } catch (err) {
      this.#subscriptions.delete(c);
      c.destroy();
      throw asLogError(err, 'cannot open a connection for a subscription');
    } finally {
      clearTimeout(timer);
    }
    return c;
  }

  endSubscriptionConnection(c: Connection): void {
    if (this.#subscriptions.delete(c)) c.destroy();
  }

  /** One blocking read of a subscription: entries after `after`, waiting up to BLOCK_MS. */
  async blockingRead(conn: Connection, topic: string, after: number): Promise<LogEvent[]> {
    const key = this.#keys(topic).events;
    const reply = await conn.send<unknown>(key, true, ['XREAD', 'COUNT', String(PAGE), 'BLOCK', String(BLOCK_MS), 'STREAMS', key, `${after}-0`]);
    if (reply === null || reply === undefined) return [];
    // RESP2: [[key, entries]]; RESP3: { key: entries }.
    const streams = Array.isArray(reply) ? (reply as unknown[]) : Object.entries(reply as Record<string, unknown>);
    const first = streams[0] as [unknown, unknown] | undefined;
    return first === undefined ? [] : parseEntries(first[1], topic);
  }

  get closed(): boolean {
    return this.#closed;
  }

  pageSize(): number {
    return PAGE;
  }

  ack(topic: TopicLike, consumer: string, upTo: number): Promise<void> {
    const name = topicName(topic);
    checkConsumer(consumer);
    checkId('upTo', upTo);
    return this.#ack(name, consumer, upTo);
  }

  async #ack(name: string, consumer: string, upTo: number): Promise<void> {
    if (this.#closed) throw closedError(this.backend);
    try {
      await this.script(ACK_SCRIPT, [this.#keys(name).cursors], [consumer, String(upTo)]);
    } catch (err) {
      throw asLogError(err, `cannot ack ${name}`, name);
    }
  }

  consumerCursor(topic: TopicLike, consumer: string): Promise<number | null> {
    const name = topicName(topic);
    checkConsumer(consumer);
    return this.#consumerCursor(name, consumer);
  }

  async #consumerCursor(name: string, consumer: string): Promise<number | null> {
    if (this.#closed) throw closedError(this.backend);
    const key = this.#keys(name).cursors;
    try {
      const v = await this.send<string | null>(key, true, ['HGET', key, consumer]);
      return v === null || v === undefined ? null : Number(v);
    } catch (err) {
      throw asLogError(err, `cannot read the cursor of ${consumer} on ${name}`, name);
    }
  }

  latest(topic: TopicLike): Promise<number | null> {
    return this.#latest(topicName(topic));
  }

  async #latest(name: string): Promise<number | null> {
    if (this.#closed) throw closedError(this.backend);
    const key = this.#keys(name).last;
    try {
      const v = await this.send<string | null>(key, true, ['GET', key]);
      const n = v === null || v === undefined ? 0 : Number(v);
      return n === 0 ? null : n;
    } catch (err) {
      throw asLogError(err, `cannot read the latest id of ${name}`, name);
    }
  }

  compact(topic: TopicLike, before: number): Promise<CompactResult> {
    const name = topicName(topic);
    checkId('before', before);
    return this.#compact(name, before);
  }

  async #compact(name: string, before: number): Promise<CompactResult> {
    if (this.#closed) throw closedError(this.backend);
    const keys = this.#keys(name);
    try {
      const [removed, remaining, latest] = (await this.script(COMPACT_SCRIPT, [keys.events, keys.last], [String(before)])) as number[];
      return { removed: Number(removed), remaining: Number(remaining), latest: Number(latest) === 0 ? null : Number(latest) };
    } catch (err) {
      throw asLogError(err, `cannot compact ${name}`, name);
    }
  }

  async describe(): Promise<EventLogDescription> {
    if (this.#closed) throw closedError(this.backend);
    let sizeBytes = 0;
    try {
      for (const topic of this.#writers.keys()) {
        const k = this.#keys(topic);
        for (const key of [k.events, k.last, k.cursors]) sizeBytes += Number((await this.send<number | null>(key, true, ['MEMORY', 'USAGE', key, 'SAMPLES', '0'])) ?? 0);
      }
    } catch (err) {
      throw asLogError(err, 'cannot measure the log');
    }
    const s = this.#server;
    return {
      backend: this.backend,
      location: safeUrl(this.#o.url),
      sizeBytes,
      queueDepth: this.#o.queueDepth,
      readOnly: false,
      server: { version: s.version, mode: s.mode, appendonly: s.appendonly, appendfsync: s.appendfsync },
      durability: durability(s),
    };
  }

  /**
   * Waits for every append made so far, at most retryTimeoutMs (appends waiting for a server that
   * is gone fail then, those that may have run with "may or may not be in the log"), then ends
   * subscriptions and the connection. Later calls reject with ERR_RINGLOG_EVENT_LOG_CLOSED.
   */
  close(): Promise<void> {
    this.#closePromise ??= this.#close();
    return this.#closePromise;
  }

  async #close(): Promise<void> {
    this.closing = true;
    const settled = Promise.all([...this.#writers.values()].map((w) => w.settled()));
    let timer: NodeJS.Timeout | undefined;
    const inTime = await Promise.race([settled.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), this.retryTimeoutMs)))]);
    clearTimeout(timer);
    this.#closed = true;
    for (const c of this.#subscriptions) c.destroy();
    this.#subscriptions.clear();
    for (const w of this.#writers.values()) w.abandon(closedError(this.backend));
    if (inTime) {
      try {
        await this.#conn.close();
      } catch {
        this.#conn.destroy();
      }
    } else {
      // Batches still waiting: with the connection gone, each fails as the client says it closed.
      this.#conn.destroy();
      await settled;
    }
  }
}

/** WAITAOF exists from Redis 7.2, and means something only with the append-only file on. */
function waitsForAof(s: ServerInfo): boolean {
  return s.appendonly && (s.major > 7 || (s.major === 7 && s.minor >= 2));
}

/** What flush() guarantees on this server, in words (README, "Redis"). */
function durability(s: ServerInfo): string {
  if (waitsForAof(s)) return 'fsynced: flush() waits (WAITAOF) until the server has fsynced its append-only file past every earlier append';
  if (!s.appendonly) return 'acknowledged by the server, in its memory only: appendonly is off, so a restart keeps only what its last RDB snapshot holds';
  switch (s.appendfsync) {
    case 'always':
      return 'acknowledged after the server fsynced its append-only file (appendfsync always)';
    case 'everysec':
      return 'acknowledged by the server and in its append-only file; fsynced within about a second (appendfsync everysec): a crash of the machine can lose the last second';
    case 'no':
      return 'acknowledged by the server and in its append-only file; fsynced when the OS decides (appendfsync no)';
    default:
      return `acknowledged by the server; its fsync policy could not be read (appendfsync ${s.appendfsync})`;
  }
}

/** XRANGE / XREAD entries: [id, [field, value, ...]] (RESP2) or { id, message } objects. */
function parseEntries(reply: unknown, topic: string): LogEvent[] {
  if (reply === null || reply === undefined) return [];
  if (!Array.isArray(reply)) throw new EventLogError(EventLogErrorCode.CORRUPT, `ringlog: unexpected reply reading ${topic}`, { topic });
  const out: LogEvent[] = [];
  for (const entry of reply as unknown[]) {
    const [rawId, rawFields] = entry as [string, unknown];
    const fields = new Map<string, string>();
    if (Array.isArray(rawFields)) for (let i = 0; i + 1 < rawFields.length; i += 2) fields.set(String(rawFields[i]), String(rawFields[i + 1]));
    else if (rawFields !== null && typeof rawFields === 'object') for (const [k, v] of Object.entries(rawFields)) fields.set(k, String(v));
    const id = Number(String(rawId).split('-')[0]);
    try {
      out.push({
        id,
        kind: fields.get('kind')!,
        payload: JSON.parse(fields.get('payload')!),
        headers: JSON.parse(fields.get('headers')!) as Record<string, string>,
        occurred_at_ms: Number(fields.get('at')),
      });
    } catch (err) {
      throw new EventLogError(EventLogErrorCode.CORRUPT, `ringlog: entry ${String(rawId)} of ${topic} is not a ringlog event`, { topic, cause: err });
    }
  }
  return out;
}

/**
 * History in pages, then live: a loop on a connection of its own blocks in XREAD from the last id
 * it has, so the seam can neither miss nor repeat an event. Live events wait in a queue of at most
 * queueDepth; a subscriber further behind fails with ERR_RINGLOG_EVENT_LOG_LAGGED (as with the
 * other backends). A lost connection is waited out: the loop reads again from the same id.
 */
class RedisSubscription {
  readonly #log: RedisEventLog;
  readonly #topic: string;
  readonly #depth: number;
  readonly #signal: AbortSignal | undefined;
  /** Last id handed to the subscriber, and last id fetched (handed or queued). */
  #lastSeen: number;
  #fetched: number;
  #queue: LogEvent[] = [];
  #live = false;
  #done = false;
  #failure: EventLogError | undefined;
  #wake: (() => void) | undefined;
  #conn: Connection | undefined;
  readonly #onAbort = (): void => this.#finish();

  constructor(log: RedisEventLog, topic: string, after: number, depth: number, signal: AbortSignal | undefined) {
    this.#log = log;
    this.#topic = topic;
    this.#lastSeen = after;
    this.#fetched = after;
    this.#depth = depth;
    this.#signal = signal;
    if (signal?.aborted) this.#done = true;
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  iterator(): AsyncIterableIterator<LogEvent> {
    const it: AsyncIterableIterator<LogEvent> = {
      next: () => this.#next(),
      return: () => {
        this.#finish();
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]: () => it,
    };
    return it;
  }

  async #next(): Promise<IteratorResult<LogEvent>> {
    for (;;) {
      if (this.#done || this.#log.closed) {
        this.#finish();
        return { done: true, value: undefined };
      }
      const e = this.#queue.shift();
      if (e !== undefined) {
        this.#lastSeen = e.id;
        return { done: false, value: e };
      }
      if (this.#failure !== undefined) {
        const f = this.#failure;
        this.#finish();
        throw f;
      }
      if (!this.#live) {
        // History: one page at a time, on the log's own connection.
        const page = await this.#log.readRange(this.#topic, this.#fetched, this.#log.pageSize()).catch((err: unknown) => {
          if (this.#done || this.#log.closed) return [];
          // The subscription ends with the error (and lets go of its abort listener).
          this.#finish();
          throw err;
        });
        if (page.length > 0) this.#fetched = page[page.length - 1]!.id;
        this.#queue.push(...page);
        if (page.length < this.#log.pageSize() && !this.#done) {
          this.#live = true;
          void this.#follow();
        }
        continue;
      }
      await new Promise<void>((r) => (this.#wake = r));
      this.#wake = undefined;
    }
  }

  async #follow(): Promise<void> {
    try {
      await this.#followLoop();
    } finally {
      // However it ended (closed, failed, finished), a waiting next() must look again.
      this.#wake?.();
    }
  }

  async #followLoop(): Promise<void> {
    try {
      this.#conn = await this.#log.subscriptionConnection();
    } catch (err) {
      this.#fail(err as EventLogError);
      return;
    }
    if (this.#done) {
      this.#endConnection();
      return;
    }
    /** When reads started failing for want of a connection (0: they do not). */
    let lostAt = 0;
    while (!this.#done && !this.#log.closed) {
      let got: LogEvent[];
      try {
        got = await this.#log.blockingRead(this.#conn, this.#topic, this.#fetched);
        lostAt = 0;
      } catch (err) {
        if (this.#done || this.#log.closed) return;
        const outcome = this.#log.outcome(err);
        if (outcome === 'unsent' || outcome === 'unknown') {
          // The server went away: the client reconnects, and the read starts again from the same
          // id, so nothing is missed or repeated; past retryTimeoutMs the subscription fails.
          lostAt ||= Date.now();
          if (Date.now() - lostAt < this.#log.retryTimeoutMs) {
            await new Promise((r) => setTimeout(r, RECONNECT_MIN_MS));
            continue;
          }
          this.#fail(
            new EventLogError(EventLogErrorCode.IO, `ringlog: subscriber of ${this.#topic} lost its connection to redis for more than ${this.#log.retryTimeoutMs} ms; last id seen ${this.#lastSeen} (subscribe again from it)`, {
              topic: this.#topic,
              lastSeenId: this.#lastSeen,
              cause: err,
            }),
          );
          return;
        }
        this.#fail(asLogError(err, `cannot follow ${this.#topic}`, this.#topic));
        return;
      }
      for (const e of got) {
        if (e.id <= this.#fetched) continue;
        if (this.#queue.length >= this.#depth) {
          this.#fail(
            new EventLogError(EventLogErrorCode.LAGGED, `ringlog: subscriber of ${this.#topic} fell more than ${this.#depth} events behind (queue depth); last id seen ${this.#lastSeen}`, {
              topic: this.#topic,
              lastSeenId: this.#lastSeen,
            }),
          );
          return;
        }
        this.#queue.push(e);
        this.#fetched = e.id;
      }
      if (got.length > 0) this.#wake?.();
    }
  }

  #fail(err: EventLogError): void {
    if (this.#done) return;
    // What is queued is dropped: a lagged subscriber resumes from lastSeenId.
    this.#queue = [];
    this.#failure = err;
    this.#endConnection();
    this.#wake?.();
  }

  #endConnection(): void {
    if (this.#conn !== undefined) this.#log.endSubscriptionConnection(this.#conn);
    this.#conn = undefined;
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#queue = [];
    this.#endConnection();
    this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#wake?.();
  }
}
