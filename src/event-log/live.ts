// Subscriptions shared by every backend: history read in pages, then live events pushed by the
// log after each append is readable. The seam is closed by registering for live events first and
// then reading history once more, dropping anything already yielded (ids only grow), so nothing
// is missed and nothing is yielded twice.

import { EventLogError, EventLogErrorCode } from './errors.js';
import type { LogEvent } from './types.js';

export type RangeReader = (topic: string, from: number, limit: number) => Promise<LogEvent[]>;

/** History is read this many events at a time: bounded memory per subscriber, few round trips. */
const PAGE = 512;

interface Listener {
  push(events: readonly LogEvent[]): void;
  end(): void;
}

export class LiveHub {
  private readonly topics = new Map<string, Set<Listener>>();

  constructor(private readonly queueDepth: number) {}

  /** Whether anyone listens to `topic` live: backends build the events to publish only then. */
  wants(topic: string): boolean {
    return this.topics.has(topic);
  }

  /** Called by a backend after `events` (ascending ids) became readable. */
  publish(topic: string, events: readonly LogEvent[]): void {
    const set = this.topics.get(topic);
    if (set === undefined || events.length === 0) return;
    for (const l of [...set]) l.push(events);
  }

  /** Ends every subscription (log closed): pending and later next() calls resolve done. */
  endAll(): void {
    for (const set of this.topics.values()) for (const l of [...set]) l.end();
    this.topics.clear();
  }

  subscribe(topic: string, from: number, read: RangeReader, signal?: AbortSignal): AsyncIterableIterator<LogEvent> {
    const hub = this;
    const depth = this.queueDepth;
    let lastSeen = from;
    let phase: 'history' | 'catchup' | 'live' = 'history';
    let page: LogEvent[] = [];
    let queue: LogEvent[] = [];
    let lagged = false;
    let done = false;
    let wake: (() => void) | undefined;

    const listener: Listener = {
      push(events) {
        if (done || lagged) return;
        for (const e of events) {
          if (queue.length >= depth) {
            lagged = true;
            queue = [];
            hub.detach(topic, listener);
            break;
          }
          queue.push(e);
        }
        wake?.();
      },
      end() {
        finish();
      },
    };

    const onAbort = (): void => finish();
    function finish(): void {
      if (done) return;
      done = true;
      page = [];
      queue = [];
      hub.detach(topic, listener);
      signal?.removeEventListener('abort', onAbort);
      wake?.();
    }
    if (signal?.aborted) done = true;
    else signal?.addEventListener('abort', onAbort, { once: true });

    async function next(): Promise<IteratorResult<LogEvent>> {
      for (;;) {
        if (done) return { done: true, value: undefined };
        if (page.length > 0) {
          const e = page.shift()!;
          if (e.id <= lastSeen) continue;
          lastSeen = e.id;
          // Live copies of events history already delivered must not count against the depth.
          while (queue.length > 0 && queue[0]!.id <= lastSeen) queue.shift();
          return { done: false, value: e };
        }
        if (lagged) {
          finish();
          throw new EventLogError(EventLogErrorCode.LAGGED, `ringlog: subscriber of ${topic} fell more than ${depth} events behind (queue depth); last id seen ${lastSeen}`, { topic, lastSeenId: lastSeen });
        }
        if (phase !== 'live') {
          let got: LogEvent[];
          try {
            got = await read(topic, lastSeen, PAGE);
          } catch (err) {
            if (done) continue;
            throw err;
          }
          if (done) continue;
          page = got;
          if (got.length < PAGE) {
            if (phase === 'history') {
              // Register before the catch-up read: whatever lands after this point is queued.
              hub.attach(topic, listener);
              phase = 'catchup';
            } else phase = 'live';
          }
          continue;
        }
        const e = queue.shift();
        if (e === undefined) {
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
          continue;
        }
        if (e.id <= lastSeen) continue;
        if (e.id > lastSeen + 1) {
          // Appended by another process (file backend) or before a compaction: fill from storage.
          let missing: LogEvent[];
          try {
            missing = await read(topic, lastSeen, e.id - lastSeen - 1);
          } catch (err) {
            if (done) continue;
            throw err;
          }
          page = [...missing, e];
          continue;
        }
        lastSeen = e.id;
        return { done: false, value: e };
      }
    }

    const it: AsyncIterableIterator<LogEvent> = {
      next,
      return(): Promise<IteratorResult<LogEvent>> {
        finish();
        return Promise.resolve({ done: true, value: undefined });
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  private attach(topic: string, l: Listener): void {
    let set = this.topics.get(topic);
    if (set === undefined) this.topics.set(topic, (set = new Set()));
    set.add(l);
  }

  private detach(topic: string, l: Listener): void {
    const set = this.topics.get(topic);
    if (set === undefined) return;
    set.delete(l);
    if (set.size === 0) this.topics.delete(topic);
  }
}
