// The session registry: sinks registered per session id (or per execution of a session: the
// context's executionId), plus wildcard sinks that see every session. emitEvent routes an event by
// its `session_id` and its context's `executionId`. Like MultiSink, routing works on
// snapshots, so a sink may register, unregister or emit from inside its own handleEvent.
// Producer threads emit through handle(): the registry sends each of them its routing whenever it
// changes, so they write into the rings of JsonlEventSinks themselves (connected-registry.ts) and
// post here only what other sinks need.

import type { MessagePort } from 'node:worker_threads';
import { JsonlEventSink, shareRing } from '../caller/sink.js';
import { checkSession, executionIn, executionOf, Routes, ROUTES_SLOTS, type ExecutionScope } from './connected-registry.js';

export type { ExecutionScope } from './connected-registry.js';
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
  /** Sinks registered for one execution of a session: session id → execution id → sinks. */
  readonly #executions = new Map<string, Map<string, readonly AgentEventSink[]>>();
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

  /**
   * Registers `sink` for the session's events; with `{ executionId }`, for the events of that
   * execution only (emitted with that `context.executionId`).
   */
  registerSink(sessionId: string, sink: AgentEventSink, scope?: ExecutionScope): void {
    checkSession(sessionId);
    checkSink(sink, 'registerSink');
    const execution = executionOf(scope, 'registerSink');
    this.#setSinks(sessionId, execution, [...this.#sinksOf(sessionId, execution), sink]);
  }

  /** The sinks registered for the session (execution undefined) or for one execution of it. */
  #sinksOf(sessionId: string, execution: string | undefined): readonly AgentEventSink[] {
    return (execution === undefined ? this.#sessions.get(sessionId) : this.#executions.get(sessionId)?.get(execution)) ?? [];
  }

  #setSinks(sessionId: string, execution: string | undefined, sinks: readonly AgentEventSink[]): void {
    if (execution === undefined) {
      if (sinks.length === 0) this.#sessions.delete(sessionId);
      else this.#sessions.set(sessionId, sinks);
    } else {
      let byExecution = this.#executions.get(sessionId);
      if (sinks.length > 0) {
        if (byExecution === undefined) this.#executions.set(sessionId, (byExecution = new Map()));
        byExecution.set(execution, sinks);
      } else if (byExecution !== undefined) {
        byExecution.delete(execution);
        if (byExecution.size === 0) this.#executions.delete(sessionId);
      }
    }
    this.#publish(sessionId, execution);
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

  /** Sinks registered for a session, or for one execution of it (not counting wildcards). */
  sessionSinkCount(sessionId: string, scope?: ExecutionScope): number {
    return this.#sinksOf(sessionId, executionOf(scope, 'sessionSinkCount')).length;
  }

  get wildcardCount(): number {
    return this.#wildcards.length;
  }

  /**
   * Delivers to the sinks of the event's `session_id` (when it is a string), then to those of its
   * execution (`context.executionId`), then to every wildcard sink. Never throws: a sink that
   * throws is reported by the next flush over it.
   */
  emitEvent(event: AgentEvent, context?: EventContext): void {
    if (event === null || typeof event !== 'object') return;
    const sid = (event as { session_id?: unknown }).session_id;
    const targets = typeof sid === 'string' ? this.#sessions.get(sid) : undefined;
    const exec = executionIn(context);
    const scoped = typeof sid === 'string' && exec !== undefined ? this.#executions.get(sid)?.get(exec) : undefined;
    const wildcards = this.#wildcards;
    this.#faults.guard(() => {
      if (targets !== undefined) this.#faults.deliver(targets, event, context);
      if (scoped !== undefined) this.#faults.deliver(scoped, event, context);
      if (wildcards.length > 0) this.#faults.deliver(wildcards.map((w) => w.sink), event, context);
    });
  }

  /**
   * A causal barrier for a session: resolves when every event emitted before the call reached the
   * sinks that get it — the session's, those of its executions, the wildcards — and they flushed.
   * With `{ executionId }`, for that execution's events: the session's sinks, that execution's and
   * the wildcards. Every sink is flushed even when one fails; rejects with the first failure,
   * droppedEvents summed over all.
   */
  flushSessionSinks(sessionId: string, scope?: ExecutionScope): Promise<void> {
    checkSession(sessionId);
    return flushAll(this.#barrierSinks(sessionId, executionOf(scope, 'flushSessionSinks')), this.#faults, REGISTRY);
  }

  /**
   * Forgets the session's sinks and those of its executions (wildcards stay); with `{ executionId }`,
   * that execution's only. Events already handed to them are theirs to write.
   */
  clearSessionSinks(sessionId: string, scope?: ExecutionScope): void {
    checkSession(sessionId);
    const execution = executionOf(scope, 'clearSessionSinks');
    for (const e of this.#cleared(sessionId, execution)) this.#setSinks(sessionId, e, []);
  }

  /** The registrations a clear of the session (execution undefined) or of one execution removes. */
  #cleared(sessionId: string, execution: string | undefined): (string | undefined)[] {
    if (execution !== undefined) return [execution];
    return [undefined, ...(this.#executions.get(sessionId)?.keys() ?? [])];
  }

  /** Flushes as flushSessionSinks, then removes what clearSessionSinks would even when the flush
   *  failed, and reports the failure. */
  async flushAndClearSessionSinks(sessionId: string, scope?: ExecutionScope): Promise<void> {
    checkSession(sessionId);
    const execution = executionOf(scope, 'flushAndClearSessionSinks');
    const sinks = this.#barrierSinks(sessionId, execution);
    const owned = this.#cleared(sessionId, execution).map((e) => [e, this.#sinksOf(sessionId, e)] as const);
    try {
      await flushAll(sinks, this.#faults, REGISTRY);
    } finally {
      // Only the lists flushed above go: a sink registered meanwhile stays.
      for (const [e, own] of owned) {
        const now = this.#sinksOf(sessionId, e);
        if (now.length > 0 && own.length > 0) this.#setSinks(sessionId, e, now.filter((s) => !own.includes(s)));
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
      flush: (sid, exec) => {
        const also = [...reached];
        reached.clear();
        return flushAll(unique([...(sid === undefined ? this.#allSinks() : this.#barrierSinks(sid, exec)), ...also]), this.#faults, REGISTRY);
      },
      name: REGISTRY,
    });
    const routes = new SharedArrayBuffer(ROUTES_SLOTS * 4);
    const link = { toProducer, gen: new Int32Array(routes) };
    // Posted before the port crosses: the producer finds the whole routing at its first emit.
    let posted = 0;
    for (const sid of this.#sessions.keys()) {
      toProducer.postMessage(this.#route(sid, undefined));
      posted++;
    }
    for (const [sid, byExecution] of this.#executions) {
      for (const exec of byExecution.keys()) {
        toProducer.postMessage(this.#route(sid, exec));
        posted++;
      }
    }
    if (this.#wildcards.length > 0) {
      toProducer.postMessage(this.#route(null, undefined));
      posted++;
    }
    link.gen[Routes.PUBLISHED] = posted;
    this.#links.add(link);
    toProducer.on('close', () => this.#links.delete(link));
    return { ...handle, routes };
  }

  /** Tells every connected producer the routing of the session (or of one execution of it, or
   *  for null the wildcards'). */
  #publish(session: string | null, execution?: string): void {
    if (this.#links.size === 0) return;
    const msg = this.#route(session, execution);
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

  #route(session: string | null, execution: string | undefined): ToProducer {
    const sinks = session === null ? this.#wildcards.map((w) => w.sink) : this.#sinksOf(session, execution);
    const direct: DirectRoute[] = [];
    const indirect: number[] = [];
    for (const sink of sinks) {
      const d = this.#directRoute(sink);
      if (d === undefined) indirect.push(this.#idOf(sink));
      else direct.push(d);
    }
    return { type: 'route', session, ...(execution === undefined ? {} : { execution }), direct, indirect };
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

  /** The sinks an event of the session (of that execution, when given) may have reached. */
  #barrierSinks(sessionId: string, execution: string | undefined): AgentEventSink[] {
    const scoped = execution === undefined ? [...(this.#executions.get(sessionId)?.values() ?? [])].flat() : this.#sinksOf(sessionId, execution);
    return unique([...(this.#sessions.get(sessionId) ?? []), ...scoped, ...this.#wildcards.map((w) => w.sink)]);
  }

  #allSinks(): AgentEventSink[] {
    const scoped = [...this.#executions.values()].flatMap((byExecution) => [...byExecution.values()].flat());
    return unique([...[...this.#sessions.values()].flat(), ...scoped, ...this.#wildcards.map((w) => w.sink)]);
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

export const registerSink = (sessionId: string, sink: AgentEventSink, scope?: ExecutionScope): void => defaultRegistry.registerSink(sessionId, sink, scope);
export const registerWildcardSink = (sink: AgentEventSink): WildcardHandle => defaultRegistry.registerWildcardSink(sink);
export const unregisterWildcardSink = (handle: WildcardHandle): boolean => defaultRegistry.unregisterWildcardSink(handle);
export const emitEvent = (event: AgentEvent, context?: EventContext): void => defaultRegistry.emitEvent(event, context);
export const flushSessionSinks = (sessionId: string, scope?: ExecutionScope): Promise<void> => defaultRegistry.flushSessionSinks(sessionId, scope);
export const clearSessionSinks = (sessionId: string, scope?: ExecutionScope): void => defaultRegistry.clearSessionSinks(sessionId, scope);
export const flushAndClearSessionSinks = (sessionId: string, scope?: ExecutionScope): Promise<void> => defaultRegistry.flushAndClearSessionSinks(sessionId, scope);
