// Turning one handleEvent call into one ring record, the same way on every producer thread: the
// event's body (or toJSON's), its envelope from the context, and, for anything that cannot be
// snapshotted, a REJECTED record standing in its place with the reason.

import type { AgentEvent, EventContext } from '../types.js';
import type { EventEncoder } from './encoder.js';
import { describe } from './options.js';

/**
 * Makes the EVENT record of `body`: in place in the ring when it can (true: it is published), else
 * in the encoder's scratch (false). Throws what encoding throws.
 */
export type EncodeEvent = (index: number, ts: number, frameDepth: unknown, executionId: string | undefined, body: object) => boolean;

export const SNAPSHOT_PUBLISHED = 0;
export const SNAPSHOT_SCRATCH = 1;
export const SNAPSHOT_REJECTED = 2;
export type SnapshotOutcome = typeof SNAPSHOT_PUBLISHED | typeof SNAPSHOT_SCRATCH | typeof SNAPSHOT_REJECTED;

/** Snapshots `event` once. Unless it was published in place, its record is in `enc`'s scratch. */
export function snapshot(enc: EventEncoder, index: number, ts: number, event: AgentEvent, context: EventContext | undefined, encode: EncodeEvent): SnapshotOutcome {
  let frameDepth: unknown = null;
  let executionId: string | undefined;
  let body: object | undefined;
  let reason: string | undefined;
  try {
    if (context !== undefined && context !== null) {
      frameDepth = context.frameDepth;
      if (typeof context.executionId === 'string') executionId = context.executionId;
    }
    const b = topLevelBody(event);
    if (typeof b === 'string') reason = b;
    else body = b;
  } catch (err) {
    reason = `${errorText(err)} (reading the event)`;
  }
  if (body !== undefined) {
    try {
      return encode(index, ts, frameDepth, executionId, body) ? SNAPSHOT_PUBLISHED : SNAPSHOT_SCRATCH;
    } catch (err) {
      enc.abandon();
      reason = `${errorText(err)} (encoding the event)`;
    }
  }
  enc.begin();
  try {
    enc.rejected(index, ts, frameDepth, executionId, reason!);
  } catch (err) {
    // The envelope itself cannot be snapshotted (an executionId past the snapshot limit): the
    // marker still stands in the event's place, without it.
    enc.abandon();
    enc.begin();
    enc.rejected(index, ts, frameDepth, undefined, `${reason}; its execution_id could not be written either (${errorText(err)})`);
  }
  return SNAPSHOT_REJECTED;
}

/** The object written for an event: the event itself, or what its toJSON returns (as JSON does).
 *  Returns a string (the rejection reason) when the event is not an object. */
function topLevelBody(event: unknown): object | string {
  if (typeof event !== 'object' || event === null) return `event is not an object (got ${describe(event)})`;
  let body: unknown = event;
  const toJSON = (event as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') body = toJSON.call(event, '');
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return `event is not an object (got ${describe(body)}${body === event ? '' : ' from toJSON'})`;
  }
  return body;
}

export function errorText(err: unknown): string {
  const e = err as Error;
  const text = typeof e?.message === 'string' ? `${e.name ?? 'Error'}: ${e.message}` : String(err);
  // A reason is for a person reading the file, not a dump: keep lines small.
  return text.length > 200 ? text.slice(0, 200) + '…' : text;
}
