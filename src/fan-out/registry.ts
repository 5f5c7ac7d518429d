// The session registry: sinks registered per session id, plus wildcard sinks that see every
// session. emitEvent routes an event by its `session_id`. Like MultiSink, routing works on
// snapshots, so a sink may register, unregister or emit from inside its own handleEvent.
// Producer threads emit through handle(): the registry sends each of them its routing whenever it
// changes, so they write into the rings of JsonlEventSinks themselves (connected-registry.ts) and
// post here only what other sinks need.

import type { MessagePort } from 'node:worker_threads';
import { JsonlEventSink, shareRing } from '../caller/sink.js';
import { checkSession, Routes, ROUTES_SLOTS } from './connected-registry.js';
import { flushAll, HandlerFaults } from './deliver.js';
import { serve, type ProducerHandle } from './handle.js';
import type { DirectRoute, ToProducer } from './messages.js';
import type { AgentEvent, AgentEventSink, EventContext } from '../types.js';

const REGISTRY = 'session_registry';
/** Routing messages a producer may leave unread before it gets no more (then it posts every
 *  event): each holds a session's sinks, a few hundred bytes, so a stale handle pins < 1 MB. */
const MAX_UNREAD_ROUTES = 4096;

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
  /** Producer threads' connections: where routing updates go. */
  readonly #links = new Set<{ readonly toProducer: MessagePort; readonly gen: Int32Array }>();
  /** Each sink a route named, by id (weakly: a route does not keep a sink alive). */
  readonly #ids = new WeakMap<AgentEventSink, number>();
  readonly #byId = new Map<number, WeakRef<AgentEventSink>>();
  readonly #forget = new FinalizationRegistry<number>((id) => this.#byId.delete(id));
  #nextId = 1;
  /** JsonlEventSinks whose rings producers write into. */
  readonly #direct = new WeakMap<AgentEventSink, DirectRoute>();
  /** JsonlEventSinks whose ring could not be shared: served on this thread for good, so a
   *  producer's events for it never switch path (and order) half way. */
  readonly #unshared = new WeakSet<AgentEventSink>();

  registerSink(sessionId: string, sink: AgentEventSink): void {
    checkSession(sessionId);
    checkSink(sink, 'registerSink');
    this.#sessions.set(sessionId, [...(this.#sessions.get(sessionId) ?? []), sink]);
    this.#publish(sessionId);
  }

  registerWildcardSink(sink: AgentEventSink): WildcardHandle {
    checkSink(sink, 'registerWildcardSink');
    const handle: WildcardHandle = Object.freeze({ id: this.#nextWildcard++ });
    this.#wildcards = [...this.#wildcards, { handle, sink }];
    this.#publish(null);
    return handle;
  }

  /** Removes a wildcard sink; false when the handle was not registered (or already removed). */
  unregisterWildcardSink(handle: WildcardHandle): boolean {
    const before = this.#wildcards.length;
    this.#wildcards = this.#wildcards.filter((w) => w.handle !== handle);
    if (this.#wildcards.length === before) return false;
    this.#publish(null);
    return true;
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
    this.#publish(sessionId);
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
        this.#publish(sessionId);
      }
    }
  }

  /**
   * A handle for producer threads: in the thread, `connectRegistry(handle).emitEvent(event)`.
   * Pass it in workerData with its `port` in the transferList.
   */
  handle(): ProducerHandle {
    // Sinks this producer's events were delivered to since its last barrier: the barrier covers
    // them even if they were unregistered meanwhile (they still hold its events).
    const reached = new Set<AgentEventSink>();
    const { handle, toProducer } = serve('ringlog.registry', {
      deliver: (e, c, to) => (to === undefined ? this.emitEvent(e, c) : this.#deliverTo(to, e, c, reached)),
      flush: (sid) => {
        const also = [...reached];
        reached.clear();
        return flushAll(unique([...(sid === undefined ? this.#allSinks() : this.#barrierSinks(sid)), ...also]), this.#faults, REGISTRY);
      },
      name: REGISTRY,
    });
    const routes = new SharedArrayBuffer(ROUTES_SLOTS * 4);
    const link = { toProducer, gen: new Int32Array(routes) };
    // Posted before the port crosses: the producer finds the whole routing at its first emit.
    let posted = 0;
    for (const sid of this.#sessions.keys()) {
      toProducer.postMessage(this.#route(sid));
      posted++;
    }
    if (this.#wildcards.length > 0) {
      toProducer.postMessage(this.#route(null));
      posted++;
    }
    link.gen[Routes.PUBLISHED] = posted;
    this.#links.add(link);
    toProducer.on('close', () => this.#links.delete(link));
    return { ...handle, routes };
  }

  /** Tells every connected producer the session's (or, for null, the wildcards') routing. */
  #publish(session: string | null): void {
    if (this.#links.size === 0) return;
    const msg = this.#route(session);
    for (const link of this.#links) {
      // A handle never connected, or a producer that stopped emitting, reads none of this: past
      // MAX_UNREAD_ROUTES it is told it has no routes, and posts every event from then on.
      if (Atomics.load(link.gen, Routes.PUBLISHED) - Atomics.load(link.gen, Routes.APPLIED) >= MAX_UNREAD_ROUTES) {
        link.toProducer.postMessage({ type: 'unrouted' } satisfies ToProducer);
        Atomics.add(link.gen, Routes.PUBLISHED, 1);
        this.#links.delete(link);
        continue;
      }
      link.toProducer.postMessage(msg);
      Atomics.add(link.gen, Routes.PUBLISHED, 1);
    }
  }

  #route(session: string | null): ToProducer {
    const sinks = session === null ? this.#wildcards.map((w) => w.sink) : this.#sessions.get(session) ?? [];
    const direct: DirectRoute[] = [];
    const indirect: number[] = [];
    for (const sink of sinks) {
      const d = this.#directRoute(sink);
      if (d === undefined) indirect.push(this.#idOf(sink));
      else direct.push(d);
    }
    return { type: 'route', session, direct, indirect };
  }

  #idOf(sink: AgentEventSink): number {
    let id = this.#ids.get(sink);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(sink, id);
      this.#byId.set(id, new WeakRef(sink));
      this.#forget.register(sink, id);
    }
    return id;
  }

  /** A JsonlEventSink's ring, shared once (from then on its own thread claims too: ring/claim.ts). */
  #directRoute(sink: AgentEventSink): DirectRoute | undefined {
    if (!(sink instanceof JsonlEventSink) || this.#unshared.has(sink)) return undefined;
    let d = this.#direct.get(sink);
    if (d === undefined) {
      let ring;
      try {
        ring = shareRing(sink);
      } catch {
        // Its queue could not be written first (the writer stuck past the deadline, or a call from
        // the sink's own getter): served on this thread instead, which loses nothing.
        this.#unshared.add(sink);
        return undefined;
      }
      d = { id: this.#idOf(sink), ring };
      this.#direct.set(sink, d);
    }
    return d;
  }

  /** A producer's event, for the sinks its routing named when it emitted (the registry's ids). */
  #deliverTo(to: readonly number[], event: AgentEvent, context: EventContext | undefined, reached: Set<AgentEventSink>): void {
    const sinks: AgentEventSink[] = [];
    for (const id of to) {
      const sink = this.#byId.get(id)?.deref();
      if (sink === undefined) continue;
      sinks.push(sink);
      reached.add(sink);
    }
    this.#faults.guard(() => this.#faults.deliver(sinks, event, context));
  }

  #barrierSinks(sessionId: string): AgentEventSink[] {
    return unique([...(this.#sessions.get(sessionId) ?? []), ...this.#wildcards.map((w) => w.sink)]);
  }

  #allSinks(): AgentEventSink[] {
    return unique([...[...this.#sessions.values()].flat(), ...this.#wildcards.map((w) => w.sink)]);
  }
}

function unique(sinks: AgentEventSink[]): AgentEventSink[] {
  return [...new Set(sinks)];
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
