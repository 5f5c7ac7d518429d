// `ringlog/logtape`: a LogTape sink. LogTape hands each record to a function; this one makes it
// an event of a JsonlEventSink (an object handleEvent snapshots on the caller's thread, as any
// event), and LogTape's dispose() closes the sink. No LogTape code is imported: a sink is a plain
// function, so only the record's shape is needed.
//
//   await configure({ sinks: { ringlog: getRinglogSink({ path: 'logs/app.jsonl' }) }, loggers: [...] })

import * as path from 'node:path';
import { JsonlEventSink } from '../caller/sink.js';
import type { JsonlEventSinkOptions } from '../caller/options.js';

/** The fields of LogTape's LogRecord this sink reads. */
export interface LogTapeRecord {
  readonly category: readonly string[];
  readonly level: string;
  /** The message template's text with the values interleaved (odd positions are values). */
  readonly message: readonly unknown[];
  readonly timestamp: number;
  readonly properties: Record<string, unknown>;
}

export interface RinglogSinkOptions extends JsonlEventSinkOptions {
  /** The base file of the set (created with its directories). */
  readonly path: string;
}

/** A LogTape sink (a function of a record) that LogTape can dispose of, with the sink it writes to. */
export type RinglogLogTapeSink = ((record: LogTapeRecord) => void) & AsyncDisposable & { readonly sink: JsonlEventSink };

/**
 * Each record becomes one event: `{ type: 'log', level, category: 'a.b', message, timestamp,
 * ...properties }` (message rendered as LogTape's text formatter does: strings as they are, other
 * values as JSON; a property named like one of these fields is kept under `properties`).
 */
export function getRinglogSink(options: RinglogSinkOptions): RinglogLogTapeSink {
  if (typeof options !== 'object' || options === null) throw new TypeError('ringlog: getRinglogSink expects options with a path');
  const { path: p, ...sinkOptions } = options;
  if (typeof p !== 'string' || p.length === 0) throw new TypeError('ringlog: getRinglogSink needs a path (a non-empty string)');
  // An application's log outlives a restart, as LogTape's file sinks append.
  const sink = JsonlEventSink.open(path.resolve(p), { mode: 'append', ...sinkOptions });
  const write = (record: LogTapeRecord): void => {
    sink.handleEvent(eventOf(record));
  };
  return Object.assign(write, {
    sink,
    [Symbol.asyncDispose]: () => sink.close(),
  });
}

const OWN_FIELDS = new Set(['type', 'level', 'category', 'message', 'timestamp']);

function eventOf(r: LogTapeRecord): Record<string, unknown> {
  const event: Record<string, unknown> = { type: 'log', level: r.level, category: r.category.join('.'), message: render(r.message), timestamp: r.timestamp };
  let clashing: Record<string, unknown> | undefined;
  for (const k of Object.keys(r.properties)) {
    if (OWN_FIELDS.has(k) || k === 'properties') (clashing ??= {})[k] = r.properties[k];
    else event[k] = r.properties[k];
  }
  if (clashing !== undefined) event.properties = clashing;
  return event;
}

function render(message: readonly unknown[]): string {
  let text = '';
  for (let i = 0; i < message.length; i++) {
    const part = message[i];
    if (i % 2 === 0) text += String(part);
    else text += typeof part === 'string' ? part : safeJson(part);
  }
  return text;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
