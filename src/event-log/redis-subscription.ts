// A subscription to a topic of the Redis backend: history in pages, then a loop that blocks in
// XREAD on a connection of its own, always from the last id it has.

import { EventLogError, EventLogErrorCode } from './errors.js';
import { asLogError, RECONNECT_MIN_MS, type Connection, type Outcome } from './redis-connection.js';
import type { LogEvent } from './types.js';

/** What a subscription needs of its log. */
export interface SubscriptionHost {
  readonly closed: boolean;
  readonly retryTimeoutMs: number;
  readRange(topic: string, from: number, limit: number): Promise<LogEvent[]>;
  pageSize(): number;
  subscriptionConnection(): Promise<Connection>;
  endSubscriptionConnection(c: Connection): void;
  blockingRead(conn: Connection, topic: string, after: number): Promise<LogEvent[]>;
  outcome(err: unknown): Outcome;
}

/**
 * History in pages, then live: a loop on a connection of its own blocks in XREAD from the last id
 * it has, so the seam can neither miss nor repeat an event. Live events wait in a queue of at most
 * queueDepth; a subscriber further behind fails with ERR_RINGLOG_EVENT_LOG_LAGGED (as with the
 * other backends). A lost connection is waited out: the loop reads again from the same id.
 */
export class RedisSubscription {
  readonly #log: SubscriptionHost;
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

  constructor(log: SubscriptionHost, topic: string, after: number, depth: number, signal: AbortSignal | undefined) {
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
