// The memory backend: per topic, the stored JSON of each event in id order. Nothing survives the
// process; it is the reference behaviour the file and SQLite backends are tested against.

import { closedError } from './errors.js';
import { LiveHub } from './live.js';
import { HeaderIndex } from './header-index.js';
import { chainEvent, checkUnchained, GENESIS } from './provenance.js';
import { APPEND_PREPARED, checkConsumer, checkFrom, checkId, checkLimit, eventLine, prepareEvent, prepareIdempotent, toLogEvent, type PreparedAppender, type PreparedEvent } from './record.js';
import { topicName } from './topic.js';
import type { CompactResult, EventLog, EventLogDescription, IdempotentAppend, LogEvent, NewLogEvent, SubscribeOptions, TopicLike } from './types.js';

interface TopicState {
  /** Id of events[0]; the ones before were compacted away. */
  firstId: number;
  latest: number;
  events: PreparedEvent[];
  bytes: number;
  cursors: Map<string, number>;
  headers: HeaderIndex;
  /** record_hash of the last record (provenance), GENESIS before the first. */
  lastHash: string;
}

export class MemoryEventLog implements EventLog, PreparedAppender {
  readonly backend = 'memory' as const;
  private readonly byTopic = new Map<string, TopicState>();
  private readonly hub: LiveHub;
  private closed = false;

  constructor(
    private readonly queueDepth: number,
    /** Chain every record to the one before (provenance.ts). */
    private readonly provenance = false,
  ) {
    this.hub = new LiveHub(queueDepth);
  }

  append(topic: TopicLike, event: NewLogEvent): Promise<number> {
    const name = topicName(topic);
    return this[APPEND_PREPARED](name, prepareEvent(event));
  }

  [APPEND_PREPARED](topic: TopicLike, prepared: PreparedEvent): Promise<number> {
    const name = topicName(topic);
    if (this.provenance) checkUnchained(prepared);
    if (this.closed) return Promise.reject(closedError(this.backend));
    return Promise.resolve(this.store(name, prepared));
  }

  appendIdempotent(topic: TopicLike, header: string, value: string, event: NewLogEvent): Promise<IdempotentAppend> {
    const name = topicName(topic);
    const prepared = prepareIdempotent(header, value, event);
    if (this.provenance) checkUnchained(prepared);
    if (this.closed) return Promise.reject(closedError(this.backend));
    const t = this.state(name);
    if (!t.headers.has(header)) t.headers.build(header, t.events.map((e, k) => [t.firstId + k, e.headersJson] as const));
    const held = t.headers.find(header, value, t.firstId);
    if (held !== undefined) return Promise.resolve({ id: held, inserted: false });
    return Promise.resolve({ id: this.store(name, prepared), inserted: true });
  }

  private store(name: string, given: PreparedEvent): number {
    const t = this.state(name);
    const id = ++t.latest;
    let prepared = given;
    if (this.provenance) {
      const chained = chainEvent(name, id, given, t.lastHash);
      prepared = chained.event;
      t.lastHash = chained.hash;
    }
    t.events.push(prepared);
    t.bytes += eventLine(id, prepared).length + 1;
    t.headers.add(id, prepared.headersJson);
    if (this.hub.wants(name)) this.hub.publish(name, [toLogEvent(id, prepared)]);
    return id;
  }

  flush(): Promise<void> {
    return this.closed ? Promise.reject(closedError(this.backend)) : Promise.resolve();
  }

  readRange(topic: TopicLike, from: number | null | undefined, limit: number): Promise<LogEvent[]> {
    const name = topicName(topic);
    const after = checkFrom(from);
    checkLimit(limit);
    if (this.closed) return Promise.reject(closedError(this.backend));
    return Promise.resolve(this.read(name, after, limit));
  }

  subscribe(topic: TopicLike, from?: number | null, options: SubscribeOptions = {}): AsyncIterableIterator<LogEvent> {
    const name = topicName(topic);
    const after = checkFrom(from);
    return this.hub.subscribe(name, after, (t, f, l) => (this.closed ? Promise.reject(closedError(this.backend)) : Promise.resolve(this.read(t, f, l))), options.signal);
  }

  ack(topic: TopicLike, consumer: string, upTo: number): Promise<void> {
    const name = topicName(topic);
    checkConsumer(consumer);
    checkId('upTo', upTo);
    if (this.closed) return Promise.reject(closedError(this.backend));
    const cursors = this.state(name).cursors;
    cursors.set(consumer, Math.max(cursors.get(consumer) ?? 0, upTo));
    return Promise.resolve();
  }

  consumerCursor(topic: TopicLike, consumer: string): Promise<number | null> {
    const name = topicName(topic);
    checkConsumer(consumer);
    if (this.closed) return Promise.reject(closedError(this.backend));
    return Promise.resolve(this.byTopic.get(name)?.cursors.get(consumer) ?? null);
  }

  latest(topic: TopicLike): Promise<number | null> {
    const name = topicName(topic);
    if (this.closed) return Promise.reject(closedError(this.backend));
    const latest = this.byTopic.get(name)?.latest ?? 0;
    return Promise.resolve(latest === 0 ? null : latest);
  }

  topics(): Promise<string[]> {
    if (this.closed) return Promise.reject(closedError(this.backend));
    // A subscription or a cursor read makes an entry too: only topics with an append count.
    return Promise.resolve([...this.byTopic].filter(([, t]) => t.latest > 0).map(([name]) => name).sort());
  }

  compact(topic: TopicLike, before: number): Promise<CompactResult> {
    const name = topicName(topic);
    checkId('before', before);
    if (this.closed) return Promise.reject(closedError(this.backend));
    const t = this.byTopic.get(name);
    if (t === undefined) return Promise.resolve({ removed: 0, remaining: 0, latest: null });
    const removed = Math.max(0, Math.min(before + 1 - t.firstId, t.events.length));
    for (let i = 0; i < removed; i++) t.bytes -= eventLine(t.firstId + i, t.events[i]!).length + 1;
    t.events.splice(0, removed);
    t.firstId += removed;
    t.headers.prune(before);
    return Promise.resolve({ removed, remaining: t.events.length, latest: t.latest === 0 ? null : t.latest });
  }

  describe(): Promise<EventLogDescription> {
    let sizeBytes = 0;
    for (const t of this.byTopic.values()) sizeBytes += t.bytes;
    return Promise.resolve({ backend: this.backend, location: null, sizeBytes, queueDepth: this.queueDepth, readOnly: false });
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.hub.endAll();
    }
    return Promise.resolve();
  }

  private state(name: string): TopicState {
    let t = this.byTopic.get(name);
    if (t === undefined) this.byTopic.set(name, (t = { firstId: 1, latest: 0, events: [], bytes: 0, cursors: new Map(), headers: new HeaderIndex(), lastHash: GENESIS }));
    return t;
  }

  private read(name: string, after: number, limit: number): LogEvent[] {
    const t = this.byTopic.get(name);
    if (t === undefined) return [];
    const start = Math.max(0, after + 1 - t.firstId);
    const out: LogEvent[] = [];
    for (let i = start; i < t.events.length && out.length < limit; i++) out.push(toLogEvent(t.firstId + i, t.events[i]!));
    return out;
  }
}
