// EventLogSink: one session's agent events appended to an EventLog topic. handleEvent only takes a
// JSON snapshot and queues it; a later macrotask redacts and appends the queued events in order,
// so the log's I/O (file writes, SQLite statements in their worker) never runs inside handleEvent.

import { rejectedEvent, REJECTED_TYPE } from '../files/format.js';
import { ErrorCode, SinkError } from '../errors.js';
import { sanitizeTopicComponent, Topic } from './topic.js';
import { APPEND_PREPARED, type PreparedAppender } from './record.js';
import type { EventLog } from './types.js';
import { createRedactor, type RedactOption } from '../writer/redact.js';
import { DEFAULT_DURABLE_PROJECTION, DurableProjector } from '../writer/projector.js';
import type { AgentEvent, AgentEventSink, EventContext } from '../types.js';

export interface EventLogSinkOptions {
  /** Redaction before anything is appended (default: the default policy; see README). */
  readonly redact?: RedactOption;
  /**
   * Characters of event JSON held while the log catches up (default 64 Mi, the JSONL sink's
   * overflow cap). Beyond it events are dropped, counted and reported by flush().
   */
  readonly maxPendingChars?: number;
  /**
   * Durable projection (README, "Durable projection"): streaming tool-call snapshots a later record
   * repeats are not appended; the first and one per doubling of the arguments' size are. Default true.
   */
  readonly durableProjection?: boolean;
}

export interface EventLogSinkStats {
  /** handleEvent calls. */
  readonly accepted: number;
  /** Records the log acknowledged (events and rejection markers). */
  readonly appended: number;
  /** Events that will never be in the log (append failed, or over maxPendingChars). */
  readonly dropped: number;
  /** Events JSON could not represent, appended as an `event_rejected` record instead. */
  readonly rejected: number;
  /** Streaming snapshots durable projection left out (never appended, by design). */
  readonly projected: number;
  /** Accepted, not yet appended, dropped or projected. */
  readonly pending: number;
  readonly pendingChars: number;
}

/**
 * Events parsed, redacted and handed to the log per macrotask: about a millisecond of work for
 * typical events, so a long queue never holds the event loop for long.
 */
const DRAIN_SLICE = 1024;

/** The JSONL sink's overflow cap (64 MiB), in characters: a bound, not a tuning knob. */
const DEFAULT_MAX_PENDING_CHARS = 64 * 1024 * 1024;

interface Queued {
  readonly json: string;
  readonly kind: string;
  readonly receivedAtMs: number;
  /** The context's executionId, when it had one: the record's `execution_id` (payload and header). */
  readonly executionId: string | undefined;
}

export class EventLogSink implements AgentEventSink {
  /** The name SinkErrors carry. */
  readonly sinkName = 'event_log';
  readonly topic: Topic;
  readonly sessionId: string;
  readonly #log: EventLog;
  readonly #redact: ((value: unknown) => unknown) | null;
  readonly #maxPendingChars: number;
  readonly #projector: DurableProjector | null;
  #queue: Queued[] = [];
  #scheduled = false;
  /** Events queued, and events handed to the log, since construction: flush's barrier compares them. */
  #enqueued = 0;
  #dispatched = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #accepted = 0;
  #appended = 0;
  #dropped = 0;
  #rejected = 0;
  #projected = 0;
  #pendingChars = 0;
  #firstError: unknown = undefined;

  constructor(log: EventLog, sessionId: string, options: EventLogSinkOptions = {}) {
    if (log === null || typeof log !== 'object' || typeof log.append !== 'function' || typeof log.flush !== 'function') throw new TypeError('ringlog: EventLogSink needs an EventLog (see openEventLog)');
    if (typeof sessionId !== 'string') throw new TypeError(`ringlog: EventLogSink session id must be a string, got ${typeof sessionId}`);
    if (options === null || typeof options !== 'object') throw new TypeError('ringlog: EventLogSink options must be an object');
    for (const k of Object.keys(options)) if (k !== 'redact' && k !== 'maxPendingChars' && k !== 'durableProjection') throw new TypeError(`ringlog: unknown EventLogSink option '${k}'`);
    const projection = options.durableProjection ?? DEFAULT_DURABLE_PROJECTION;
    if (typeof projection !== 'boolean') throw new TypeError(`ringlog: EventLogSink option durableProjection must be a boolean, got ${projection === null ? 'null' : typeof projection}`);
    const max = options.maxPendingChars ?? DEFAULT_MAX_PENDING_CHARS;
    if (!Number.isSafeInteger(max) || max < 1) throw new RangeError(`ringlog: EventLogSink option maxPendingChars must be a positive integer, got ${String(max)}`);
    this.#log = log;
    this.sessionId = sessionId;
    this.topic = new Topic(`observability.agent_events.${sanitizeTopicComponent(sessionId)}`);
    this.#redact = createRedactor(options.redact);
    this.#maxPendingChars = max;
    this.#projector = projection ? new DurableProjector() : null;
  }

  /**
   * Snapshots the event and returns; never throws, never waits. A `context.executionId` scopes the
   * record to that execution: `execution_id` in its payload and its headers (frameDepth is not part
   * of this record shape).
   */
  handleEvent(event: AgentEvent, context?: EventContext): void {
    this.#accepted++;
    const receivedAtMs = Date.now();
    let json: string | undefined;
    let kind = 'agent_event';
    try {
      const type = (event as { type?: unknown } | null)?.type;
      if (typeof type === 'string' && type.length > 0) kind = type;
      json = snapshot(event);
    } catch (err) {
      json = JSON.stringify(rejectedEvent(reasonOf(err)));
      kind = REJECTED_TYPE;
    }
    if (this.#pendingChars + json.length > this.#maxPendingChars) {
      this.#drop(1, new SinkError(`ringlog: EventLogSink for session ${JSON.stringify(this.sessionId)} holds more than ${this.#maxPendingChars} characters of events waiting for the log; events dropped`, { sink: this.sinkName, code: ErrorCode.DROPPED }));
      return;
    }
    if (kind === REJECTED_TYPE) this.#rejected++;
    this.#pendingChars += json.length;
    const executionId = typeof context?.executionId === 'string' ? context.executionId : undefined;
    this.#queue.push({ json, kind, receivedAtMs, executionId });
    this.#enqueued++;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    // A macrotask, not a microtask: the caller's burst of events ends first and goes as one batch.
    setImmediate(() => this.#drain());
  }

  /**
   * Resolves when every earlier event is appended and the log flushed. Rejects with a SinkError
   * (sink 'event_log') carrying the first failure and the events dropped so far; once a failure
   * happened every later flush reports it too.
   */
  async flush(): Promise<void> {
    const target = this.#enqueued;
    while (this.#dispatched < target) {
      this.#drain();
      // One slice per turn, as the scheduled drain does: a long queue must not stall the loop here either.
      if (this.#dispatched < target) await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all([...this.#inFlight]);
    try {
      await this.#log.flush();
    } catch (err) {
      this.#firstError ??= err;
    }
    if (this.#firstError !== undefined) {
      const first = this.#firstError;
      const why = first instanceof Error ? first.message : String(first);
      throw new SinkError(`ringlog: event log sink for session ${JSON.stringify(this.sessionId)} failed: ${why}; ${this.#dropped} event(s) dropped`, {
        sink: this.sinkName,
        code: first instanceof SinkError ? first.code : ErrorCode.WRITE,
        droppedEvents: this.#dropped,
        cause: first,
      });
    }
  }

  stats(): EventLogSinkStats {
    return {
      accepted: this.#accepted,
      appended: this.#appended,
      dropped: this.#dropped,
      rejected: this.#rejected,
      projected: this.#projected,
      pending: this.#accepted - this.#appended - this.#dropped - this.#projected,
      pendingChars: this.#pendingChars,
    };
  }

  #drain(): void {
    this.#scheduled = false;
    if (this.#queue.length === 0) return;
    const batch = this.#queue.length <= DRAIN_SLICE ? this.#queue : this.#queue.slice(0, DRAIN_SLICE);
    this.#queue = batch === this.#queue ? [] : this.#queue.slice(DRAIN_SLICE);
    this.#dispatched += batch.length;
    if (this.#queue.length > 0) this.#schedule();
    const headers = { session_id: this.sessionId };
    const log = this.#log;
    const appendPrepared = (log as Partial<PreparedAppender>)[APPEND_PREPARED];
    const headersJson = JSON.stringify(headers);
    const sessionJson = JSON.stringify(this.sessionId);
    const appends: Promise<unknown>[] = [];
    const projector = this.#projector;
    // Appends are issued in queue order: every backend assigns ids in call order.
    for (const q of batch) {
      let p: Promise<number>;
      try {
        let eventJson = q.json;
        const judged = projector !== null && projector.mayCare(q.kind);
        let event: unknown;
        if (this.#redact !== null || judged) event = JSON.parse(q.json) as unknown;
        // Judged once, in queue order, before redaction: as the JSONL sink's writer judges its records.
        if (judged && !projector.keep(event)) {
          this.#projected++;
          this.#pendingChars -= q.json.length;
          continue;
        }
        if (this.#redact !== null) {
          const redacted = this.#redact(event);
          // The redactor hands back its input when nothing matched: the snapshot text stands as is.
          if (redacted !== event) eventJson = JSON.stringify(redacted);
        }
        const exec = q.executionId;
        if (appendPrepared !== undefined) {
          // ringlog's own backends take the record's JSON as text: no parse and re-serialisation.
          const execJson = exec === undefined ? '' : `,"execution_id":${JSON.stringify(exec)}`;
          const payloadJson = `{"index_hint":${q.receivedAtMs},"session_id":${sessionJson}${execJson},"event":${eventJson}}`;
          p = appendPrepared.call(log, this.topic, { kind: q.kind, payloadJson, headersJson: exec === undefined ? headersJson : JSON.stringify({ ...headers, execution_id: exec }), occurredAtMs: q.receivedAtMs });
        } else {
          const payload = { index_hint: q.receivedAtMs, session_id: this.sessionId, ...(exec === undefined ? {} : { execution_id: exec }), event: JSON.parse(eventJson) as unknown };
          p = log.append(this.topic, { kind: q.kind, payload, headers: exec === undefined ? headers : { ...headers, execution_id: exec }, occurred_at_ms: q.receivedAtMs });
        }
      } catch (err) {
        p = Promise.reject(err);
      }
      appends.push(
        p.then(
          () => {
            this.#appended++;
            this.#pendingChars -= q.json.length;
          },
          (err: unknown) => {
            this.#pendingChars -= q.json.length;
            this.#drop(1, err);
            // A snapshot kept as a checkpoint may be among the lost: every stream starts over, so
            // the next snapshot of each is appended (as the JSONL sink's writer does after a fault).
            this.#projector?.clear();
          },
        ),
      );
    }
    const done = Promise.all(appends).then(() => {
      this.#inFlight.delete(done);
    });
    this.#inFlight.add(done);
  }

  #drop(count: number, err: unknown): void {
    this.#dropped += count;
    this.#firstError ??= err;
  }
}

/** JSON text of the event, as JSON.stringify; BigInt as its digits and cycles as "[Circular]" like the JSONL sink. */
function snapshot(event: AgentEvent): string {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) throw new TypeError(`event is ${event === null ? 'null' : Array.isArray(event) ? 'an array' : typeof event}, not an object`);
  let json: string | undefined;
  try {
    json = JSON.stringify(event);
  } catch {
    json = JSON.stringify(event, tolerant());
  }
  if (json === undefined || json[0] !== '{') throw new TypeError("the event's toJSON did not return an object");
  return json;
}

/** A replacer for the slow path: BigInt → digits, a reference to an ancestor → "[Circular]". */
function tolerant(): (this: unknown, key: string, value: unknown) => unknown {
  const ancestors: unknown[] = [];
  return function (this: unknown, _key: string, value: unknown): unknown {
    if (typeof value === 'bigint') return value.toString();
    if (typeof value !== 'object' || value === null) return value;
    // `this` is the holder of `value`: pop back to it, so the stack is exactly value's ancestors.
    while (ancestors.length > 0 && ancestors[ancestors.length - 1] !== this) ancestors.pop();
    if (ancestors.includes(value)) return '[Circular]';
    ancestors.push(value);
    return value;
  };
}

/** Longest rejection reason kept: enough for an error message, not a dump. */
const MAX_REASON = 200;

function reasonOf(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return text.length > MAX_REASON ? text.slice(0, MAX_REASON) + '…' : text;
}
