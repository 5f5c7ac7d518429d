// The Redis backend: the event log on Redis Streams (a single server or Redis Cluster), through the
// official client, node-redis (`redis`, an optional dependency). This module is the EventLog
// itself; the keys and scripts are in redis-keys.ts, the client and what its errors mean in
// redis-connection.ts, a topic's batched appends in redis-writer.ts, subscriptions in
// redis-subscription.ts.

import { createHash, randomBytes } from 'node:crypto';
import { closedError, EventLogError, EventLogErrorCode } from './errors.js';
import { APPEND_PREPARED, checkConsumer, checkFrom, checkId, checkLimit, prepareEvent, prepareIdempotent, type PreparedAppender, type PreparedEvent } from './record.js';
import { asLogError, connection, durability, loadRedis, outcomeOf, safeUrl, serverInfo, waitsForAof, type Connection, type Outcome, type RedisModule, type ServerInfo } from './redis-connection.js';
import { ACK_SCRIPT, COMPACT_SCRIPT, IDEMPOTENT_SCRIPT, topicKeys, type TopicKeys } from './redis-keys.js';
import type { RedisEventLogOptions } from './redis-options.js';
import { RedisSubscription, type SubscriptionHost } from './redis-subscription.js';
import { TopicWriter, type WriterHost } from './redis-writer.js';
import { chainEvent, checkUnchained } from './provenance.js';
import { isTopicName, topicName } from './topic.js';
import type { CompactResult, EventLog, EventLogDescription, IdempotentAppend, LogEvent, NewLogEvent, SubscribeOptions, TopicLike } from './types.js';

/** History is read this many events at a time (as the other backends' subscriptions do). */
const PAGE = 512;
/** A blocked XREAD returns after this long with nothing, and the loop looks again, so no read
 *  waits on the server for ever. (A peer that vanished without a word is found by the socket's
 *  TCP keepalive, which node-redis turns on.) */
const BLOCK_MS = 5000;

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

export class RedisEventLog implements EventLog, PreparedAppender, WriterHost, SubscriptionHost {
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
    // Once close() is called, nothing new is taken (it waits for what it has).
    if (this.#o.provenance) checkUnchained(prepared);
    if (this.#closePromise !== undefined) return Promise.reject(closedError(this.backend));
    this.#written.add(name);
    return this.#writer(name).add(prepared);
  }

  #writer(name: string): TopicWriter {
    let w = this.#writers.get(name);
    if (w === undefined) this.#writers.set(name, (w = new TopicWriter(this, name, this.#keys(name), this.#o.provenance)));
    return w;
  }

  appendIdempotent(topic: TopicLike, header: string, value: string, event: NewLogEvent): Promise<IdempotentAppend> {
    const name = topicName(topic);
    const prepared = prepareIdempotent(header, value, event);
    if (this.#o.provenance) checkUnchained(prepared);
    if (this.#closePromise !== undefined) return Promise.reject(closedError(this.backend));
    return this.#appendIdempotent(name, header, value, prepared);
  }

  async #appendIdempotent(name: string, header: string, value: string, e: PreparedEvent): Promise<IdempotentAppend> {
    this.#written.add(name);
    // Between this log's appends made before and after it: ids stay in call order (and flush and
    // close wait for it as for them).
    const writer = this.#writer(name);
    return writer.runAlone(() => this.#idempotentScript(writer, header, value, e));
  }

  async #idempotentScript(writer: TopicWriter, header: string, value: string, e: PreparedEvent): Promise<IdempotentAppend> {
    if (this.#closed) throw closedError(this.backend);
    const name = writer.topic;
    const run = async (args: string[]): Promise<IdempotentAppend> => {
      // Sent once: whether a script that lost its reply ran is told by running it again, which
      // finds the value it appended (the call is idempotent by its nature).
      const reply = await this.script(IDEMPOTENT_SCRIPT, writer.scriptKeys, [header, value, e.kind, e.payloadJson, ...args]);
      const [id, inserted] = (reply as [number | string, number | string]).map(Number) as [number, number];
      return { id, inserted: inserted === 1 };
    };
    try {
      if (!this.#o.provenance) return await run([e.headersJson, String(e.occurredAtMs), '', '', '']);
      return await writer.withTip(async (tip) => {
        const { event, hash } = chainEvent(name, tip.last + 1, e, tip.hash);
        const r = await run([event.headersJson, String(e.occurredAtMs), String(tip.last), hash, tip.hash]);
        // Found already there: the tip is where it was.
        return [r, r.inserted ? { last: r.id, hash } : tip];
      });
    } catch (err) {
      throw asLogError(err, `cannot append to ${name}`, name);
    }
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
    let notFsynced: unknown;
    if (waitsForAof(this.#server) && written.length > 0) {
      try {
        await this.#waitAof(written);
      } catch (err) {
        notFsynced = err;
      }
    }
    // The count of failed appends first: it is told once, and would be lost behind the fsync's error.
    if (failed > 0) {
      throw new EventLogError(EventLogErrorCode.IO, `ringlog: ${failed} append(s) to redis failed since the last flush: ${first?.message ?? 'unknown cause'}`, { cause: first, ...(first?.topic !== undefined ? { topic: first.topic } : {}) });
    }
    if (notFsynced !== undefined) throw notFsynced;
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

  async topics(): Promise<string[]> {
    if (this.#closed) throw closedError(this.backend);
    // The counter `<prefix>{<topic>}:last` exists from a topic's first append and outlives
    // compaction; the prefix is matched literally (glob characters escaped).
    const prefix = this.#o.keyPrefix;
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}:last`;
    let keys: string[];
    try {
      keys = await this.#conn.scan(pattern);
    } catch (err) {
      throw asLogError(err, 'cannot list the topics');
    }
    const names = new Set<string>();
    for (const k of keys) {
      const name = k.slice(prefix.length + 1, -'}:last'.length);
      if (k.startsWith(prefix) && isTopicName(name)) names.add(name);
    }
    return [...names].sort();
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
      const [removed, remaining, latest] = (await this.script(COMPACT_SCRIPT, [keys.events, keys.last, keys.headerValues], [String(before + 1)])) as number[];
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
