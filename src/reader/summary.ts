// What one event says, in one line: its time, index, type, session, what kind of event it is and a
// short summary chosen by its type — a message's text, a tool's name and arguments, a result's
// status and output. Read from ringlog's lines, event-log records and other tools' NDJSON (pino's,
// winston's, LogTape's): each field is looked up under the names those use. Pure; the `ringlog`
// command's readable lines and the viewer's list both show it.

import { DROPPED_TYPE, PROJECTED_TYPE, REJECTED_TYPE } from '../files/format.js';

/** What kind of event it is, for colouring: a message, a tool call, a success, an error, a loss. */
export type EventKind = 'message' | 'tool' | 'ok' | 'error' | 'loss' | 'other';

export interface EventGist {
  /** ms since the epoch, a date string, or undefined. */
  readonly time: unknown;
  readonly index: unknown;
  readonly type: string;
  readonly kind: EventKind;
  readonly session: string | undefined;
  readonly summary: string;
}

/** pino's numeric levels (pino's docs), for lines that have a level and no type. */
const PINO_LEVELS: Record<number, string> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/** Where the fields live under the names ringlog's envelope, event logs, pino, winston and LogTape use. */
export const TIME_KEYS = ['emitted_at_ms', 'occurred_at_ms', 'time', 'timestamp', 'ts'];
export const INDEX_KEYS = ['index', 'id'];
const TYPE_KEYS = ['type', 'kind'];
export const SESSION_KEYS = ['session_id', 'sessionId', 'session'];
const TEXT_KEYS = ['content', 'text', 'delta', 'message', 'msg', 'reasoning', 'line'];
const TOOL_KEYS = ['tool_name', 'toolName', 'tool', 'name'];
const ARGS_KEYS = ['input', 'arguments', 'args', 'raw_input', 'raw_input_partial', 'params'];
const OUTPUT_KEYS = ['output', 'result', 'content', 'raw_output', 'error'];

/** The gist of one parsed JSON object. */
export function gistOf(value: Record<string, unknown>): EventGist {
  let rec = value;
  // An event-log record of an EventLogSink: its payload holds the agent event.
  const payload = rec.payload;
  const inner = isObject(payload) && isObject(payload.event) ? payload.event : isObject(payload) ? payload : undefined;
  const index = pick(rec, INDEX_KEYS);
  const time = pick(rec, TIME_KEYS);
  if (inner !== undefined && rec.kind !== undefined) rec = { ...inner, ...(isObject(payload) && payload.session_id !== undefined ? { session_id: payload.session_id } : {}), type: inner.type ?? rec.kind };
  const type = typeOf(rec);
  const kind = kindOf(type, rec);
  const session = pick(rec, SESSION_KEYS);
  return { time, index, type: oneLine(type), kind, session: session === undefined ? undefined : scalar(session), summary: summaryOf(type, kind, rec) };
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function pick(rec: Record<string, unknown>, keys: readonly string[]): unknown {
  for (const k of keys) if (rec[k] !== undefined && rec[k] !== null) return rec[k];
  return undefined;
}

function typeOf(rec: Record<string, unknown>): string {
  const t = pick(rec, TYPE_KEYS);
  if (typeof t === 'string' && t !== '') return t;
  const level = rec.level;
  if (typeof level === 'number') return PINO_LEVELS[level] ?? `level ${level}`;
  if (typeof level === 'string' && level !== '') return level;
  return '-';
}

function kindOf(type: string, rec: Record<string, unknown>): EventKind {
  if (type === DROPPED_TYPE || type === REJECTED_TYPE) return 'loss';
  if (rec.is_error === true || rec.status === 'failed' || rec.status === 'error' || /error|fatal|fail/.test(type) || (typeof rec.level === 'number' && rec.level >= 50)) return 'error';
  if (/tool/.test(type)) return /result|output/.test(type) || rec.status === 'completed' ? 'ok' : 'tool';
  if (/message|chunk|text|thought|delta|log_line|info|debug|trace|warn/.test(type)) return 'message';
  return 'other';
}

function summaryOf(type: string, kind: EventKind, rec: Record<string, unknown>): string {
  if (type === DROPPED_TYPE) return `${scalar(rec.count)} events lost`;
  if (type === PROJECTED_TYPE) return `${scalar(rec.count)} streaming snapshots projected out`;
  if (type === REJECTED_TYPE) return `rejected: ${scalar(rec.reason)}`;
  if (/tool/.test(type)) {
    const tool = pick(rec, TOOL_KEYS);
    const status = rec.status ?? (rec.is_error === true ? 'error' : rec.is_error === false ? 'ok' : undefined);
    const args = pick(rec, ARGS_KEYS);
    const out: string[] = [];
    if (tool !== undefined) out.push(scalar(tool));
    if (status !== undefined) out.push(scalar(status));
    if (args !== undefined && (kind === 'tool' || rec.status === 'pending')) out.push(compact(args));
    else {
      const output = pick(rec, OUTPUT_KEYS);
      if (output !== undefined) out.push(compact(output));
    }
    if (out.length > 0) return out.join(' ');
  }
  const text = pick(rec, TEXT_KEYS);
  if (text !== undefined) return oneLine(typeof text === 'string' ? text : compact(text));
  // Anything else: its own scalar fields, `k=v`, the envelope and the fields above left out.
  const shown = new Set([...TIME_KEYS, ...INDEX_KEYS, ...TYPE_KEYS, ...SESSION_KEYS, 'frame_depth', 'execution_id', 'level', 'pid', 'hostname', 'v']);
  const pairs: string[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (shown.has(k) || v === null || typeof v === 'object') continue;
    pairs.push(`${k}=${scalar(v)}`);
  }
  return pairs.join(' ');
}


export function scalar(v: unknown): string {
  return typeof v === 'string' ? oneLine(v) : typeof v === 'object' ? compact(v) : String(v);
}

function compact(v: unknown): string {
  try {
    return oneLine(typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v)));
  } catch {
    return String(v);
  }
}

/**
 * One line of plain text for a terminal: a newline as ⏎, a tab as a space, and every other control
 * character (C0, DEL, C1) and bidirectional override as a visible \u escape — a log value must never
 * move the cursor, recolour the terminal or reorder what is shown around it.
 */
export function oneLine(s: string): string {
  return s
    .replace(/\r?\n/g, '⏎')
    .replace(/\t/g, ' ')
    .replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
