// The session registry: sinks registered per session id, plus wildcard sinks that see every
// session. emitEvent routes an event by its `session_id`. Like MultiSink, routing works on
// snapshots, so a sink may register, unregister or emit from inside its own handleEvent.

import { flushAll, HandlerFaults } from './deliver.js';
import { ConnectedSink, serve, type ProducerHandle } from './handle.js';
import type { AgentEvent, AgentEventSink, EventContext } from '../types.js';

const REGISTRY = 'session_registry';

/** Returned by registerWildcardSink; pass it to unregisterWildcardSink. */
export interface WildcardHandle {
  readonly id: number;
}

export class SessionRegistry {
  /** Lists are replaced, never mutated, so snapshots taken while routing stay valid. */
  #sessions = new Map<string, readonly AgentEventSink[]>();
  #wildcards: readonly { handle: WildcardHandle; sink: AgentEventSink }[] = [];
  #nextWildcard = 1;
  readonly #faults = new HandlerFaults();

  registerSink(sessionId: string, sink: AgentEventSink): void {
    checkSession(sessionId);
    checkSink(sink, 'registerSink');
    this.#sessions.set(sessionId, [...(this.#sessions.get(sessionId) ?? []), sink]);
  }

  registerWildcardSink(sink: AgentEventSink): WildcardHandle {
    checkSink(sink, 'registerWildcardSink');
    const handle: WildcardHandle = Object.freeze({ id: this.#nextWildcard++ });
    this.#wildcards = [...this.#wildcards, { handle, sink }];
    return handle;
  }

  /** Removes a wildcard sink; false when the handle was not registered (or already removed). */
  unregisterWildcardSink(handle: WildcardHandle): boolean {
    const before = this.#wildcards.length;
    this.#wildcards = this.#wildcards.filter((w) => w.handle !== handle);
    return this.#wildcards.length !== before;
  }

  /** Sinks registered for a session (not counting wildcards). */
  sessionSinkCount(sessionId: string): number {
    return this.#sessions.get(sessionId)?.length ?? 0;
  }

  get wildcardCount(): number {
    return this.#wildcards.length;
  }

  /**
   * Delivers to the sinks of the event's `session_id` (when it is a string), then to every
   * wildcard sink. Never throws: a sink that throws is reported by the next flush over it.
   */
  emitEvent(event: AgentEvent, context?: EventContext): void {
    if (event === null || typeof event !== 'object') return;
    const sid = (event as { session_id?: unknown }).session_id;
    const targets = typeof sid === 'string' ? this.#sessions.get(sid) : undefined;
    const wildcards = this.#wildcards;
    this.#faults.guard(() => {
      if (targets !== undefined) this.#faults.deliver(targets, event, context);
      if (wildcards.length > 0) this.#faults.deliver(wildcards.map((w) => w.sink), event, context);
    });
  }

  /**
   * A causal barrier for a session: resolves when every event emitted before the call reached its
   * session sinks and the wildcard sinks and they flushed. Every sink is flushed even when one
   * fails; rejects with the first failure, droppedEvents summed over all.
   */
  flushSessionSinks(sessionId: string): Promise<void> {
    checkSession(sessionId);
    return flushAll(this.#barrierSinks(sessionId), this.#faults, REGISTRY);
  }

  /** Forgets the session's sinks (wildcards stay). Events already handed to them are theirs to write. */
  clearSessionSinks(sessionId: string): void {
    checkSession(sessionId);
    this.#sessions.delete(sessionId);
  }

  /** Flushes the session's sinks, then removes them even when the flush failed, and reports the failure. */
  async flushAndClearSessionSinks(sessionId: string): Promise<void> {
    checkSession(sessionId);
    const sinks = this.#barrierSinks(sessionId);
    const own = this.#sessions.get(sessionId);
    try {
      await flushAll(sinks, this.#faults, REGISTRY);
    } finally {
      // Only the lists flushed above go: a sink registered for the session meanwhile stays.
      const now = this.#sessions.get(sessionId);
      if (now !== undefined && own !== undefined) {
        const rest = now.filter((s) => !own.includes(s));
        if (rest.length === 0) this.#sessions.delete(sessionId);
        else this.#sessions.set(sessionId, rest);
      }
    }
  }

  /** A handle for producer threads: in the thread, `connectRegistry(handle).emitEvent(event)`. */
  handle(): ProducerHandle {
    return serve('ringlog.registry', {
      deliver: (e, c) => this.emitEvent(e, c),
      flush: (sid) => (sid === undefined ? flushAll(this.#allSinks(), this.#faults, REGISTRY) : this.flushSessionSinks(sid)),
      name: REGISTRY,
    });
  }

  #barrierSinks(sessionId: string): AgentEventSink[] {
    return unique([...(this.#sessions.get(sessionId) ?? []), ...this.#wildcards.map((w) => w.sink)]);
  }

  #allSinks(): AgentEventSink[] {
    return unique([...[...this.#sessions.values()].flat(), ...this.#wildcards.map((w) => w.sink)]);
  }
}

/** Producer side of SessionRegistry.handle(). */
export class ConnectedRegistry extends ConnectedSink {
  constructor(handle: ProducerHandle) {
    super(handle, 'ringlog.registry');
  }

  emitEvent(event: AgentEvent, context?: EventContext): void {
    this.handleEvent(event, context);
  }

  /** Barrier in the owner's registry: this producer's earlier events included. */
  flushSessionSinks(sessionId: string): Promise<void> {
    checkSession(sessionId);
    return this.barrier(sessionId);
  }
}

export function connectRegistry(handle: ProducerHandle): ConnectedRegistry {
  return new ConnectedRegistry(handle);
}

function unique(sinks: AgentEventSink[]): AgentEventSink[] {
  return [...new Set(sinks)];
}

function checkSession(sessionId: string): void {
  if (typeof sessionId !== 'string') throw new TypeError(`ringlog: session id must be a string, got ${typeof sessionId}`);
}

function checkSink(sink: AgentEventSink, fn: string): void {
  if (sink === null || typeof sink !== 'object' || typeof sink.handleEvent !== 'function' || typeof sink.flush !== 'function') {
    throw new TypeError(`ringlog: ${fn} expects a sink (an object with handleEvent and flush methods)`);
  }
}

/** The process-wide registry (per thread: worker threads reach it through defaultRegistry.handle()). */
export const defaultRegistry = new SessionRegistry();

export const registerSink = (sessionId: string, sink: AgentEventSink): void => defaultRegistry.registerSink(sessionId, sink);
export const registerWildcardSink = (sink: AgentEventSink): WildcardHandle => defaultRegistry.registerWildcardSink(sink);
export const unregisterWildcardSink = (handle: WildcardHandle): boolean => defaultRegistry.unregisterWildcardSink(handle);
export const emitEvent = (event: AgentEvent, context?: EventContext): void => defaultRegistry.emitEvent(event, context);
export const flushSessionSinks = (sessionId: string): Promise<void> => defaultRegistry.flushSessionSinks(sessionId);
export const clearSessionSinks = (sessionId: string): void => defaultRegistry.clearSessionSinks(sessionId);
export const flushAndClearSessionSinks = (sessionId: string): Promise<void> => defaultRegistry.flushAndClearSessionSinks(sessionId);
