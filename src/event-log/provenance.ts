// Tamper-evident topics (the `provenance` option): each record carries the hash of the record before
// it (`prev_hash`) and its own (`record_hash`), SHA-256 over a canonical encoding of what it is, so
// changing, removing or reordering a record breaks the chain at that record. The first record of a
// topic follows GENESIS. Pure; the backends call chainEvent() where they assign ids (under their
// lock or transaction), keeping the topic's last hash, so an append never reads the topic back.

import { createHash } from 'node:crypto';
import type { PreparedEvent } from './record.js';
import type { LogEvent } from './types.js';

export const PREV_HASH = 'prev_hash';
export const RECORD_HASH = 'record_hash';
/** What the first record of a topic follows: 64 zero hex digits, the length of a SHA-256 hash. */
export const GENESIS = '0'.repeat(64);
/** Names the encoding, so a later change to it cannot be mistaken for tampering. */
const DOMAIN = 'ringlog-provenance-1\n';

/** JSON text with every object's keys sorted (by UTF-16 code units): one text per value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  const o = value as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`).join(',')}}`;
}

/** The hash of a record: topic, id, kind, payload, headers (with prev_hash, without record_hash), time. */
export function recordHash(topic: string, id: number, kind: string, payload: unknown, headers: Readonly<Record<string, string>>, occurredAtMs: number): string {
  const { [RECORD_HASH]: _own, ...hashed } = headers;
  const text = `${DOMAIN}[${JSON.stringify(topic)},${id},${JSON.stringify(kind)},${canonicalJson(payload)},${canonicalJson(hashed)},${occurredAtMs}]`;
  return createHash('sha256').update(text).digest('hex');
}

/** A provenance log refuses events that set the chain's headers themselves (a RangeError at the call). */
export function checkUnchained(e: PreparedEvent): void {
  if (e.headersJson.includes(`"${PREV_HASH}"`) || e.headersJson.includes(`"${RECORD_HASH}"`)) {
    const h = JSON.parse(e.headersJson) as Record<string, unknown>;
    if (PREV_HASH in h || RECORD_HASH in h) throw new RangeError(`ringlog: with provenance on, headers ${PREV_HASH} and ${RECORD_HASH} are the log's to set`);
  }
}

/** The event as stored with `id` after a record whose hash is `prev`, and its own hash. */
export function chainEvent(topic: string, id: number, e: PreparedEvent, prev: string): { event: PreparedEvent; hash: string } {
  const headers = { ...(JSON.parse(e.headersJson) as Record<string, string>), [PREV_HASH]: prev };
  const hash = recordHash(topic, id, e.kind, JSON.parse(e.payloadJson), headers, e.occurredAtMs);
  return { event: { ...e, headersJson: JSON.stringify({ ...headers, [RECORD_HASH]: hash }) }, hash };
}

/** `events` as stored with ids from `firstId`, each chained to the one before from `prev`, and the
 *  hash the next record follows. */
export function chainEvents(topic: string, firstId: number, events: readonly PreparedEvent[], prev: string): { events: PreparedEvent[]; tip: string } {
  const out: PreparedEvent[] = [];
  for (let k = 0; k < events.length; k++) {
    const chained = chainEvent(topic, firstId + k, events[k]!, prev);
    out.push(chained.event);
    prev = chained.hash;
  }
  return { events: out, tip: prev };
}

/** hashOf the headers of a stored record given as JSON text: GENESIS when they do not parse (a
 *  record written by something else), as for a record stored without provenance. */
export function hashOfJson(headersJson: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(headersJson);
  } catch {
    return GENESIS;
  }
  return hashOf(parsed !== null && typeof parsed === 'object' ? (parsed as Record<string, string>) : undefined);
}

/** The hash a stored record's successor follows: its record_hash, or GENESIS for a record stored without provenance. */
export function hashOf(headers: Readonly<Record<string, string>> | undefined): string {
  const h = headers?.[RECORD_HASH];
  return typeof h === 'string' ? h : GENESIS;
}

export interface ChainBreak {
  readonly id: number;
  readonly reason: string;
}

/**
 * Checks records in id order, continuing from `state` (the previous record's hash and id, or
 * null at the start of the topic, or of what compaction left: the first record's prev_hash is then
 * taken as given). Returns the first record that breaks the chain, or null; updates `state`.
 */
export function checkChain(topic: string, records: Iterable<LogEvent>, state: { prev: string | null; lastId: number }): ChainBreak | null {
  for (const r of records) {
    const h = r.headers;
    if (typeof h[RECORD_HASH] !== 'string' || typeof h[PREV_HASH] !== 'string') return { id: r.id, reason: `has no ${PREV_HASH}/${RECORD_HASH} (stored without provenance)` };
    if (state.prev !== null && r.id !== state.lastId + 1) return { id: r.id, reason: `follows id ${state.lastId}: ids ${state.lastId + 1}..${r.id - 1} are missing` };
    if (state.prev !== null && h[PREV_HASH] !== state.prev) return { id: r.id, reason: `its ${PREV_HASH} is not the ${RECORD_HASH} of id ${state.lastId}: a record before it was changed, removed or reordered` };
    if (state.prev === null && r.id === 1 && h[PREV_HASH] !== GENESIS) return { id: r.id, reason: `the topic's first record does not follow the genesis hash` };
    if (recordHash(topic, r.id, r.kind, r.payload, h, r.occurred_at_ms) !== h[RECORD_HASH]) return { id: r.id, reason: `its ${RECORD_HASH} does not match its contents: the record was changed` };
    state.prev = h[RECORD_HASH];
    state.lastId = r.id;
  }
  return null;
}
