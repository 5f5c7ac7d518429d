// A tool call and its result: events that share a tool_call_id (or toolCallId, call_id). From a call, the pair is its result
// (the first later event of a result type with that id, else the last later event with it: a
// stream of updates); from a result or an update, the call (the nearest earlier `tool_call`, else
// the first earlier event with that id). Searched near the event, since agents log a result soon
// after its call; a pair further apart than the window is reported as not found.

import { isObject } from '../reader/summary.js';
import type { LogIndex } from './log-index.js';

/** Lines searched on each side: thousands of events of other tool calls and messages between a call and its result. */
const PAIR_WINDOW = 20_000;
/** Lines read at a time. */
const CHUNK = 512;
/** Bytes of each line searched for the id: where agent events put tool_call_id (near their start). */
const ID_BYTES = 4096;
/** The event's own bytes read to find its id. */
const EVENT_BYTES = 64 * 1024;

export interface PairAnswer {
  readonly toolCallId: string | null;
  /** What the event is in the pair: the call, or what answers it. */
  readonly role: 'call' | 'result' | null;
  readonly other: { index: number; time: number; type: string } | null;
  /** The other's time minus this event's (negative for a call before its result). */
  readonly durationMs: number | null;
}

/** Where agent events put the id of a tool call (the harn runtime's name first). */
const ID_KEYS = ['tool_call_id', 'toolCallId', 'call_id'] as const;

const NONE: PairAnswer = { toolCallId: null, role: null, other: null, durationMs: null };

function isCall(type: string): boolean {
  return type === 'tool_call';
}

function isResult(type: string): boolean {
  return /result|output|response/.test(type);
}

export async function pairOf(ix: LogIndex, o: number): Promise<PairAnswer> {
  const [line] = await ix.readLines(o, o + 1, EVENT_BYTES);
  let value: unknown;
  try {
    value = JSON.parse(line!.text);
  } catch {
    return NONE;
  }
  if (!isObject(value)) return NONE;
  // The id under whichever name this event uses; its pair is found under the same name.
  const key = ID_KEYS.find((k) => typeof value[k] === 'string' && value[k] !== '');
  if (key === undefined) return NONE;
  const id = value[key] as string;
  const needle = `${JSON.stringify(key)}:${JSON.stringify(id)}`;
  const type = ix.typeOf(o);
  const role = isCall(type) ? 'call' : 'result';
  let best: number | null = null;
  if (role === 'call') {
    // Forward: the first result, else the last event with the id.
    for (let start = o + 1; start < Math.min(ix.count, o + 1 + PAIR_WINDOW) && (best === null || !isResult(ix.typeOf(best))); start += CHUNK) {
      const end = Math.min(ix.count, start + CHUNK, o + 1 + PAIR_WINDOW);
      const lines = await ix.readLines(start, end, ID_BYTES);
      for (let k = 0; k < lines.length; k++) {
        if (!lines[k]!.text.includes(needle)) continue;
        best = start + k;
        if (isResult(ix.typeOf(best))) break;
      }
    }
  } else {
    // Backward: the nearest call, else the first event with the id.
    for (let end = o; end > Math.max(0, o - PAIR_WINDOW) && (best === null || !isCall(ix.typeOf(best))); end -= CHUNK) {
      const start = Math.max(0, end - CHUNK, o - PAIR_WINDOW);
      const lines = await ix.readLines(start, end, ID_BYTES);
      for (let k = lines.length - 1; k >= 0; k--) {
        if (!lines[k]!.text.includes(needle)) continue;
        best = start + k;
        if (isCall(ix.typeOf(best))) break;
      }
    }
  }
  if (best === null) return { toolCallId: id, role, other: null, durationMs: null };
  return { toolCallId: id, role, other: { index: ix.indexOf(best), time: ix.timeOf(best), type: ix.typeOf(best) }, durationMs: ix.timeOf(best) - ix.timeOf(o) };
}
