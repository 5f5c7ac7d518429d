// The Redis backend's appends of one topic: queued in call order, sent in numbered batches (one
// script call each, several in flight), sent again in order after a lost connection or an early
// arrival, failed only when they certainly did not run, or when the log closes.

import { EventLogError, EventLogErrorCode } from './errors.js';
import type { PreparedEvent } from './record.js';
import { asLogError, RECONNECT_MIN_MS, type Outcome } from './redis-connection.js';
import { APPEND_SCRIPT, packBatch, TIP_SCRIPT, WRITER_TTL_MS, type TopicKeys } from './redis-keys.js';
import { chainEvents, GENESIS, hashOfJson } from './provenance.js';

/** At most this many events, and about this many characters, per append script call: a call
 *  holds the server for its duration (Redis runs one script at a time), so batches stay around a
 *  millisecond of its work. */
const BATCH_EVENTS = 512;
const BATCH_CHARS = 1024 * 1024;
/** Batches of one topic in flight at once: enough to keep a loopback connection busy, well under
 *  the WRITER_WINDOW of batch numbers the server remembers per writer. */
const MAX_IN_FLIGHT = 4;
/**
 * A batch that may have run waits for the server this many times retryTimeoutMs (default: a
 * minute), then fails as "may or may not be in the log": long enough for a server to restart and
 * replay a large append-only file, so the count stays exact through a restart; bounded, so that a
 * server gone for good cannot hang a flush() or a shutdown.
 */
const UNKNOWN_WAIT_FACTOR = 6;
/** A chained write that finds the topic moved on reads the tip and tries again; each retry means
 *  another writer appended meanwhile, so this many in a row means it is being starved. */
const CHAIN_ATTEMPTS = 1000;
/** The longest pause between two such attempts: a few batches of another writer's time. */
const CHAIN_BACKOFF_MAX_MS = 20;

/** With provenance: the topic's last id and the record_hash the next record follows. */
export interface ChainTip {
  readonly last: number;
  readonly hash: string;
}

/** What a TopicWriter needs of its log. */
export interface WriterHost {
  readonly retryTimeoutMs: number;
  script(source: string, keys: string[], args: (string | Buffer)[]): Promise<unknown>;
  send<T>(key: string, readonly: boolean, args: (string | Buffer)[]): Promise<T>;
  outcome(err: unknown): Outcome;
  /** How long the server has been out of reach (0: it answers). */
  lostFor(): number;
  countFailures(n: number, err: EventLogError): void;
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
  /** The script's arguments but the floor (known only when it is sent); with provenance, made at
   *  each send (the ids and hashes depend on the tip then). */
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
export class TopicWriter {
  readonly #log: WriterHost;
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
  /**
   * Operations that run alone, in call order with the appends (appendIdempotent): each holds back
   * the appends made after it until it is done, and runs once those made before it have settled.
   */
  readonly #alone: { readonly seqAt: number }[] = [];
  #aloneChain: Promise<void> = Promise.resolve();
  /** With provenance: chain every record to the one before (provenance.ts), one batch at a time. */
  readonly #chained: boolean;
  /** The tip as this writer last left it; undefined: read it from the server before chaining. */
  #tip: ChainTip | undefined;

  constructor(log: WriterHost, topic: string, keys: TopicKeys, chained = false) {
    this.#log = log;
    this.topic = topic;
    this.keys = keys;
    this.#chained = chained;
  }

  /** Every key a script of this topic may touch, in the order the scripts take them. */
  get scriptKeys(): string[] {
    const k = this.keys;
    return [k.events, k.last, k.writer, k.headerNames, k.headerValues, k.tip];
  }

  /**
   * Runs a chained write: `write` gets the tip and returns its result and the tip it leaves
   * (undefined: unknown, read it again next time). A RINGLOG_CHAIN_MOVED reply (another writer
   * appended since the tip was read) reads it again and calls `write` again.
   */
  async withTip<T>(write: (tip: ChainTip) => Promise<[T, ChainTip | undefined]>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const tip = this.#tip ?? (this.#tip = await this.#readTip());
      try {
        const [result, next] = await write(tip);
        this.#tip = next;
        return result;
      } catch (err) {
        this.#tip = undefined;
        if (!(err instanceof Error && err.message.startsWith('RINGLOG_CHAIN_MOVED')) || attempt >= CHAIN_ATTEMPTS) throw err;
        // Two chained writers that keep meeting take turns: a random pause, longer as it repeats
        // (up to CHAIN_BACKOFF_MAX_MS), lets one of them through.
        if (attempt > 1) await new Promise((r) => setTimeout(r, Math.random() * Math.min(CHAIN_BACKOFF_MAX_MS, attempt)));
      }
    }
  }

  async #readTip(): Promise<ChainTip> {
    const k = this.keys;
    const [lastReply, headers, tip] = (await this.#log.script(TIP_SCRIPT, [k.events, k.last, k.tip], [])) as [number, string | null, string | null];
    const last = Number(lastReply);
    // The last record's own hash while the stream holds it (GENESIS if it was stored without
    // provenance, or its headers do not parse: as the other backends chain); once compacted away,
    // the tip the chain left if it is that record's, else GENESIS.
    if (typeof headers === 'string') return { last, hash: hashOfJson(headers) };
    const m = typeof tip === 'string' ? /^(\d+) (\S+)$/.exec(tip) : null;
    return { last, hash: m !== null && Number(m[1]) === last ? m[2]! : GENESIS };
  }

  get busy(): boolean {
    return this.#unsettled.oldest() !== undefined || this.#recovering;
  }

  add(event: PreparedEvent): Promise<number> {
    return new Promise((resolve, reject) => {
      if (this.#log.lostFor() >= this.#log.retryTimeoutMs) {
        // The server has been gone too long: appends fail at once rather than pile up.
        const err = this.#goneError();
        this.#log.countFailures(1, err);
        reject(err);
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

  /** Resolves once every append made before the call has settled (and operations run alone so far). */
  settled(): Promise<void> {
    return Promise.all([this.#settledBefore(this.#nextSeq), this.#aloneChain]).then(() => undefined);
  }

  #settledBefore(seq: number): Promise<void> {
    if (this.#settledBelow(seq)) return Promise.resolve();
    return new Promise((resolve) => this.#marks.push({ seq, resolve }));
  }

  /** Appends from this sequence number on wait: an operation running alone is pending before them. */
  get #holdAt(): number {
    return this.#alone[0]?.seqAt ?? Infinity;
  }

  /**
   * Runs `fn` between the appends made before this call and those made after it: its effect on
   * the topic's ids comes in call order.
   */
  runAlone<T>(fn: () => Promise<T>): Promise<T> {
    const op = { seqAt: this.#nextSeq };
    this.#alone.push(op);
    const run = this.#aloneChain.then(async () => {
      await this.#settledBefore(op.seqAt);
      return fn();
    });
    this.#aloneChain = run.then(
      () => this.#done(op),
      () => this.#done(op),
    );
    return run;
  }

  #done(op: { readonly seqAt: number }): void {
    this.#alone.splice(this.#alone.indexOf(op), 1);
    this.#pump();
  }

  #settledBelow(seq: number): boolean {
    const oldest = this.#unsettled.oldest();
    return oldest === undefined || oldest.seq >= seq;
  }

  #pump(): void {
    const queue = this.#queue;
    const holdAt = this.#holdAt;
    // Chained batches go one at a time: each one's ids and hashes follow from the one before.
    const maxInFlight = this.#chained ? 1 : MAX_IN_FLIGHT;
    while (!this.#recovering && this.#head < queue.length && queue[this.#head]!.seq < holdAt && this.#inFlight < maxInFlight) {
      const items: Waiting[] = [];
      let chars = 0;
      while (this.#head < queue.length && queue[this.#head]!.seq < holdAt && items.length < BATCH_EVENTS && (items.length === 0 || chars + queue[this.#head]!.chars <= BATCH_CHARS)) {
        const w = queue[this.#head++]!;
        chars += w.chars;
        items.push(w);
      }
      this.#compactQueue();
      const number = this.#nextBatch++;
      const [blob, lengths] = this.#chained ? ['', ''] : packBatch(items.map((w) => w.event));
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
    const floor = String(this.#openBatches.oldest()?.number ?? batch.number);
    if (!this.#chained) return this.#log.script(APPEND_SCRIPT, this.scriptKeys, [...batch.args, floor, '', '', '']).then(Number);
    return this.withTip(async (tip) => {
      const { events, tip: prev } = chainEvents(this.topic, tip.last + 1, batch.items.map((w) => w.event), tip.hash);
      const [blob, lengths] = packBatch(events);
      const [number, ttl, count] = batch.args;
      const first = Number(await this.#log.script(APPEND_SCRIPT, this.scriptKeys, [number!, ttl!, count!, blob, lengths, floor, String(tip.last), prev, tip.hash]));
      // A batch that may have run before was answered from the server's record of its number,
      // chained then on a tip this attempt cannot know: read the tip again before the next.
      return [first, batch.unknown ? undefined : { last: tip.last + batch.items.length, hash: prev }];
    });
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
   * ('unknown') waits for it longer (UNKNOWN_WAIT_FACTOR): only the server can say whether it
   * holds its events, and failing it would count events the log may have as lost. The others, and
   * appends made meanwhile, fail once the connection has been gone retryTimeoutMs: they certainly
   * did not run. close() ends the wait.
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
    const unknownToo = this.#log.lostFor() >= UNKNOWN_WAIT_FACTOR * this.#log.retryTimeoutMs;
    const keep: Batch[] = [];
    for (const b of this.#retrying) {
      if (!b.unknown) this.#fail(b, err);
      else if (unknownToo) this.#fail(b, this.#unknownError(b));
      else keep.push(b);
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

  #unknownError(batch: Batch): EventLogError {
    return new EventLogError(
      EventLogErrorCode.IO,
      `ringlog: the connection to redis has been lost for more than ${UNKNOWN_WAIT_FACTOR * this.#log.retryTimeoutMs} ms; ${batch.items.length} append(s) to ${this.topic} sent before it broke may or may not be in the log`,
      { topic: this.topic },
    );
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
