// Durable projection: which agent events a durable sink keeps. Agent loops stream a tool call's
// arguments as cumulative snapshots (`tool_call_update`, status `pending`, the whole text so far in
// `raw_input_partial` or `raw_input`), hundreds per call, each a little longer than the last. Every
// snapshot is a prefix of the next, so a durable copy needs only a few of them: the first, then one
// per doubling of the size (the call's settled tool_call carries the whole arguments; a stream that
// never settles keeps at least half its final size). Anything that is not that pure growth passes
// through.
//
// Pure and deterministic: the decision depends only on the events seen, in order. Per stream it
// keeps lengths and SHA-256 digests, never argument bodies, and its state is bounded (streams and
// key bytes); a stream it cannot track passes through (fail open). The rules are the harn runtime's
// DurableAgentEventProjector's, so a drop-in keeps the same records.

import { createHash } from 'node:crypto';

/** Whether durable sinks project unless told otherwise: see the README's "Durable projection" for
 *  the measurement behind it. */
export const DEFAULT_DURABLE_PROJECTION = true;

/** Streams tracked at once, as the reference runtime bounds them: a session rarely streams more
 *  than a few calls at a time, and an abandoned stream must not hold memory forever. */
export const MAX_TRACKED_STREAMS = 1024;
/** Bytes of stream identities (session id + tool call id) tracked at once: the reference's 256 KiB. */
export const MAX_TRACKED_KEY_BYTES = 256 * 1024;

/** Fields whose presence (not null) makes an update more than a streaming snapshot. */
export const SETTLED_FIELDS = ['raw_output', 'error', 'duration_ms', 'execution_duration_ms', 'error_category', 'changed_paths', 'data', 'executor', 'parsing'] as const;

/** How a snapshot carries the arguments: changing between the two is not growth. */
export type Representation = 'raw_input_partial' | 'raw_input';

interface StreamState {
  readonly sessionId: string;
  readonly keyBytes: number;
  representation: Representation;
  contentLength: number;
  contentDigest: string;
  metadataDigest: string;
  /** The size whose crossing is kept next: the smallest power of two above the last kept size. */
  nextCheckpoint: number;
}

/** What an event's fields say, as far as the projection is concerned. */
type Fields = Record<string, unknown>;

function absent(v: unknown): boolean {
  return v === undefined || v === null;
}

function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('base64');
}

/** The digest of what, besides the arguments, identifies a stream's calls: its tool name and audit
 *  data (a change of either is not growth). Throws when JSON cannot encode them. */
export function metadataDigest(toolName: unknown, audit: unknown): string {
  return sha256(JSON.stringify([toolName ?? null, audit ?? null]));
}

/** Reused for the UTF-8 bytes of a snapshot: a fresh Buffer per snapshot costs more than hashing it
 *  (a 10 KB one took ~23 µs against ~9 µs for its SHA-256 on the 2-core VM). */
let scratch = Buffer.allocUnsafe(64 * 1024);

/** `text` as UTF-8, in a buffer valid until the next call. */
function utf8(text: string): Uint8Array {
  const need = Buffer.byteLength(text, 'utf8');
  if (need > scratch.length) scratch = Buffer.allocUnsafe(Math.max(need, scratch.length * 2));
  const n = scratch.write(text, 0, 'utf8');
  return scratch.subarray(0, n);
}

/** The smallest power of two above `size` (1 for 0): the next size whose crossing is kept. */
export function nextCheckpointAfter(size: number): number {
  let p = 1;
  while (p <= size) p *= 2;
  return p;
}

export class DurableProjector {
  /** In least recently observed order: Map iteration order is insertion order, and an observed
   *  stream is moved to the end. */
  readonly #streams = new Map<string, StreamState>();
  #keyBytes = 0;

  /** Streams tracked now. */
  get tracked(): number {
    return this.#streams.size;
  }

  /**
   * Whether `event` belongs in a durable sink. Call it exactly once per event, in the order the
   * events happened: the decision depends on the events before it. (The writer thread judges the
   * encoded records through the methods below, without making objects of them: same rules.)
   */
  keep(event: unknown): boolean {
    if (event === null || typeof event !== 'object' || Array.isArray(event)) return true;
    const e = event as Fields;
    switch (e.type) {
      case 'tool_call_update':
        return this.#update(e);
      case 'tool_call':
        // The settled call: its stream is over.
        if (typeof e.session_id === 'string' && typeof e.tool_call_id === 'string') this.forget(e.session_id, e.tool_call_id);
        return true;
      case 'session_closed':
        if (typeof e.session_id === 'string') this.forgetSession(e.session_id);
        return true;
      default:
        return true;
    }
  }

  /** Whether an event of this `type` can change anything here: an update always, a settled call or
   *  a closed session only while a stream is tracked. Every other event is kept without a look. */
  mayCare(type: string): boolean {
    return type === 'tool_call_update' || (this.#streams.size > 0 && (type === 'tool_call' || type === 'session_closed'));
  }

  /** Forgets every stream: the next snapshot of each is kept (used after a write fault). */
  clear(): void {
    this.#streams.clear();
    this.#keyBytes = 0;
  }

  /** An update of the call that is not a pure streaming snapshot (or a settled tool_call): kept,
   *  and the stream is forgotten. */
  forget(sessionId: string, callId: string): true {
    this.#remove(streamKey(sessionId, callId));
    return true;
  }

  /** A session_closed: every stream of the session is forgotten. */
  forgetSession(sessionId: string): void {
    for (const [key, state] of this.#streams) if (state.sessionId === sessionId) this.#remove(key);
  }

  /**
   * A pure streaming snapshot of the call's arguments: `content` is the text's UTF-8 bytes
   * (raw_input_partial) or the compact JSON of the parsed value (raw_input); `metadata` is
   * metadataDigest() of its tool name and audit data. Whether it is kept.
   */
  snapshot(sessionId: string, callId: string, representation: Representation, content: Uint8Array, metadata: string): boolean {
    return this.#observe(streamKey(sessionId, callId), sessionId, Buffer.byteLength(sessionId) + Buffer.byteLength(callId), representation, content, metadata);
  }

  #update(e: Fields): boolean {
    const sessionId = e.session_id;
    const callId = e.tool_call_id;
    // Not an identifiable stream: nothing to track, nothing to leave out.
    if (typeof sessionId !== 'string' || typeof callId !== 'string') return true;
    const pure =
      e.status === 'pending' &&
      (absent(e.mutation_status) || e.mutation_status === 'unknown') &&
      SETTLED_FIELDS.every((f) => absent(e[f]));
    const partial = e.raw_input_partial;
    const parsed = e.raw_input;
    // Anything but one representation of the arguments so far ends the stream's tracking.
    if (!pure || !absent(partial) === !absent(parsed) || (!absent(partial) && typeof partial !== 'string')) return this.forget(sessionId, callId);
    let metadata: string;
    let content: Uint8Array;
    try {
      content = typeof partial === 'string' ? utf8(partial) : utf8(JSON.stringify(parsed));
      metadata = metadataDigest(e.tool_name, e.audit);
    } catch {
      // Arguments or audit data JSON cannot encode (a BigInt, a cycle): not a stream to reason about.
      return this.forget(sessionId, callId);
    }
    return this.snapshot(sessionId, callId, typeof partial === 'string' ? 'raw_input_partial' : 'raw_input', content, metadata);
  }

  #observe(key: string, sessionId: string, keyBytes: number, representation: Representation, content: Uint8Array, metadata: string): boolean {
    const previous = this.#streams.get(key);
    if (previous === undefined) {
      this.#admit(key, {
        sessionId,
        keyBytes,
        representation,
        contentLength: content.length,
        contentDigest: sha256(content),
        metadataDigest: metadata,
        nextCheckpoint: nextCheckpointAfter(content.length),
      });
      return true;
    }
    // Most recently observed now.
    this.#streams.delete(key);
    this.#streams.set(key, previous);
    // One pass over the content gives both digests: of the previous length's prefix, and of the whole.
    const hash = createHash('sha256');
    let prefixDigest: string | undefined;
    if (content.length > previous.contentLength) {
      hash.update(content.subarray(0, previous.contentLength));
      prefixDigest = hash.copy().digest('base64');
      hash.update(content.subarray(previous.contentLength));
    } else {
      hash.update(content);
    }
    const digest = hash.digest('base64');
    const unexpected =
      metadata !== previous.metadataDigest ||
      representation !== previous.representation ||
      content.length < previous.contentLength ||
      (content.length === previous.contentLength && digest !== previous.contentDigest) ||
      (prefixDigest !== undefined && prefixDigest !== previous.contentDigest);
    if (unexpected) {
      // Kept, and the checkpoints start again from it.
      previous.representation = representation;
      previous.contentLength = content.length;
      previous.contentDigest = digest;
      previous.metadataDigest = metadata;
      previous.nextCheckpoint = nextCheckpointAfter(content.length);
      return true;
    }
    // The same snapshot again.
    if (content.length === previous.contentLength) return false;
    previous.contentLength = content.length;
    previous.contentDigest = digest;
    if (content.length < previous.nextCheckpoint) return false;
    previous.nextCheckpoint = nextCheckpointAfter(content.length);
    return true;
  }

  #admit(key: string, state: StreamState): void {
    // An identity bigger than the whole budget is never tracked: its snapshots all pass through.
    if (state.keyBytes > MAX_TRACKED_KEY_BYTES) return;
    while (this.#streams.size >= MAX_TRACKED_STREAMS || this.#keyBytes + state.keyBytes > MAX_TRACKED_KEY_BYTES) {
      const oldest = this.#streams.keys().next();
      if (oldest.done === true) break;
      this.#remove(oldest.value);
    }
    this.#streams.set(key, state);
    this.#keyBytes += state.keyBytes;
  }

  #remove(key: string): void {
    const state = this.#streams.get(key);
    if (state === undefined) return;
    this.#streams.delete(key);
    this.#keyBytes -= state.keyBytes;
  }
}

/** One key per (session, call) pair, whatever characters the two ids hold. */
function streamKey(sessionId: string, callId: string): string {
  return JSON.stringify([sessionId, callId]);
}
