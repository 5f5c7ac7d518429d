// Validation and snapshot of an append, shared by every backend. Done synchronously inside
// append(), so bad input throws at the call and later mutation of the caller's object is harmless.

import type { Topic } from './topic.js';
import type { LogEvent, NewLogEvent } from './types.js';

/**
 * ringlog's own backends also take an event already validated and serialised, under this symbol:
 * EventLogSink holds each event as JSON text already, and would otherwise parse it only for
 * append() to serialise it again. Not part of the public EventLog interface.
 */
export const APPEND_PREPARED = Symbol('ringlog.appendPrepared');

export interface PreparedAppender {
  [APPEND_PREPARED](topic: Topic | string, event: PreparedEvent): Promise<number>;
}

/** An event ready to store: its JSON text is the snapshot. */
export interface PreparedEvent {
  readonly kind: string;
  readonly payloadJson: string;
  readonly headersJson: string;
  readonly occurredAtMs: number;
}

export function prepareEvent(event: NewLogEvent): PreparedEvent {
  if (event === null || typeof event !== 'object') throw new TypeError(`ringlog: append expects an event object, got ${event === null ? 'null' : typeof event}`);
  const { kind, payload, headers, occurred_at_ms } = event;
  if (typeof kind !== 'string' || kind.length === 0) throw new TypeError('ringlog: event.kind must be a non-empty string');
  let payloadJson: string | undefined;
  try {
    payloadJson = payload === undefined ? 'null' : JSON.stringify(payload);
  } catch (err) {
    throw new TypeError(`ringlog: event.payload is not JSON-serializable: ${(err as Error).message}`, { cause: err });
  }
  if (payloadJson === undefined) throw new TypeError(`ringlog: event.payload is not a JSON value (${typeof payload})`);
  let headersJson = '{}';
  if (headers !== undefined) {
    if (headers === null || typeof headers !== 'object' || Array.isArray(headers)) throw new TypeError('ringlog: event.headers must be an object of strings');
    const copy: Record<string, string> = {};
    for (const [k, v] of Object.entries(headers)) {
      if (typeof v !== 'string') throw new TypeError(`ringlog: event.headers[${JSON.stringify(k)}] must be a string, got ${typeof v}`);
      copy[k] = v;
    }
    headersJson = JSON.stringify(copy);
  }
  let occurredAtMs = Date.now();
  if (occurred_at_ms !== undefined) {
    if (typeof occurred_at_ms !== 'number' || !Number.isSafeInteger(occurred_at_ms)) throw new TypeError('ringlog: event.occurred_at_ms must be an integer (milliseconds since the epoch)');
    occurredAtMs = occurred_at_ms;
  }
  return { kind, payloadJson, headersJson, occurredAtMs };
}

/** Header names appendIdempotent takes: safe in a SQLite JSON path and a Redis key as they are. */
const IDEMPOTENCY_HEADER = /^[A-Za-z0-9_.:-]{1,128}$/;

/**
 * The event appendIdempotent appends: `event` with `headers[header] = value` (an event that already
 * has another value there is a RangeError). Throws like append for a bad event.
 */
export function prepareIdempotent(header: string, value: string, event: NewLogEvent): PreparedEvent {
  if (typeof header !== 'string') throw new TypeError(`ringlog: appendIdempotent: header must be a string, got ${typeof header}`);
  if (!IDEMPOTENCY_HEADER.test(header)) throw new RangeError(`ringlog: appendIdempotent: header ${JSON.stringify(header)} must be 1 to 128 ASCII letters, digits, '_', '.', ':' or '-'`);
  if (typeof value !== 'string') throw new TypeError(`ringlog: appendIdempotent: value must be a string, got ${typeof value}`);
  if (event === null || typeof event !== 'object') throw new TypeError(`ringlog: append expects an event object, got ${event === null ? 'null' : typeof event}`);
  const own = event.headers?.[header];
  if (own !== undefined && own !== value) throw new RangeError(`ringlog: appendIdempotent: event.headers[${JSON.stringify(header)}] is ${JSON.stringify(own)}, not the value ${JSON.stringify(value)}`);
  return prepareEvent({ ...event, headers: { ...(event.headers ?? {}), [header]: value } });
}

/** The stored JSON line of one event (file backend) and the shape every backend returns. */
export function eventLine(id: number, e: PreparedEvent): string {
  return `{"id":${id},"kind":${JSON.stringify(e.kind)},"payload":${e.payloadJson},"headers":${e.headersJson},"occurred_at_ms":${e.occurredAtMs}}`;
}

export function toLogEvent(id: number, e: PreparedEvent): LogEvent {
  return { id, kind: e.kind, payload: JSON.parse(e.payloadJson), headers: JSON.parse(e.headersJson) as Record<string, string>, occurred_at_ms: e.occurredAtMs };
}

export function checkFrom(from: number | null | undefined): number {
  if (from === undefined || from === null) return 0;
  if (!Number.isSafeInteger(from) || from < 0) throw new RangeError(`ringlog: 'from' must be a non-negative integer id, got ${String(from)}`);
  return from;
}

export function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`ringlog: 'limit' must be a positive integer, got ${String(limit)}`);
  return limit;
}

export function checkId(name: string, id: number): number {
  if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`ringlog: '${name}' must be a non-negative integer id, got ${String(id)}`);
  return id;
}

export function checkConsumer(consumer: string): string {
  if (typeof consumer !== 'string' || consumer.length === 0) throw new TypeError('ringlog: consumer must be a non-empty string');
  return consumer;
}
