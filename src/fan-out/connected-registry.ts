// A producer thread's side of SessionRegistry.handle(). The owner sends its routing (per session,
// per execution of a session, and the wildcards): the JsonlEventSinks among a session's sinks are written straight into their
// rings, as a sinkHandle() is (fan-out/direct.ts), so those events are in the ring at the call and
// survive any end of the process or of this thread; only other sinks need the event posted to the
// owner's thread. Routes are taken off the port at the next emit after the owner bumps the
// generation, so a route the owner set before the producer's emit is used without its loop turning.

import { Scratch } from '../caller/encoder.js';
import { ErrorCode, SinkError } from '../errors.js';
import { DirectProducer, SCRATCH_INITIAL } from './direct.js';
import { ConnectedSink } from './handle.js';
import type { ProducerHandle, ToProducer } from './messages.js';
import type { AgentEvent, EventContext } from '../types.js';

interface Route {
  readonly direct: readonly Used[];
  /** The registry's ids of the sinks served on the owner's thread: the event is posted for them. */
  readonly indirect: readonly number[];
}

const NOWHERE: Route = { direct: [], indirect: [] };

/** Int32 slots of ProducerHandle.routes. */
export const Routes = {
  /** Routing messages the owner has posted (bumped after each). */
  PUBLISHED: 0,
  /** Routing messages this producer has taken in: the difference is what waits in its port. */
  APPLIED: 1,
} as const;
export const ROUTES_SLOTS = 2;

/** A sink's direct producer and how many routes use it; at 0 it is flushed once more, then forgotten. */
interface Used {
  readonly id: number;
  readonly producer: DirectProducer;
  refs: number;
}

export class ConnectedRegistry extends ConnectedSink {
  readonly #gen: Int32Array;
  #seenGen = 0;
  /** Routing messages taken in. */
  #applied = 0;
  /** The owner stopped sending routes (this producer left too many unread): every event is posted. */
  #unrouted = false;
  readonly #sessions = new Map<string, Route>();
  /** Routes of the sinks registered for one execution: session id → execution id → route. */
  readonly #executions = new Map<string, Map<string, Route>>();
  #wildcards: Route = NOWHERE;
  readonly #used = new Map<number, Used>();
  /** Producers no route uses any more, until what they placed is written. */
  #retired: DirectProducer[] = [];
  /** What forgotten producers had lost and no flush has told yet. */
  #retiredLost = 0;
  /** One encoding buffer for every ring: emits are never encoded two at a time (see #later). */
  readonly #scratch = new Scratch(SCRATCH_INITIAL);
  #emitting = false;
  /** Emits made from inside an emit (a getter, a toJSON): placed after it, in order. */
  readonly #later: { event: AgentEvent; context: EventContext | undefined }[] = [];

  constructor(handle: ProducerHandle) {
    super(handle, 'ringlog.registry');
    if (!(handle.routes instanceof SharedArrayBuffer) || handle.routes.byteLength < ROUTES_SLOTS * 4) throw new TypeError('ringlog: expected a registry handle() passed through workerData (its routes are missing)');
    this.#gen = new Int32Array(handle.routes);
  }

  emitEvent(event: AgentEvent, context?: EventContext): void {
    this.handleEvent(event, context);
  }

  /** Routed as SessionRegistry.emitEvent routes: by the event's session_id, then to the wildcards. */
  override handleEvent(event: AgentEvent, context?: EventContext): void {
    if (this.closed || event === null || typeof event !== 'object') return;
    if (this.#emitting) {
      this.#later.push({ event, context });
      return;
    }
    this.#emitting = true;
    try {
      this.#route(event, context);
      for (let i = 0; i < this.#later.length; i++) this.#route(this.#later[i]!.event, this.#later[i]!.context);
    } finally {
      this.#later.length = 0;
      this.#emitting = false;
    }
  }

  #route(event: AgentEvent, context: EventContext | undefined): void {
    const gen = Atomics.load(this.#gen, Routes.PUBLISHED);
    if (gen !== this.#seenGen) {
      this.#seenGen = gen;
      this.receiveNow();
    }
    if (this.#unrouted) {
      // The owner routes it, as its own emitEvent does.
      this.send(event, context);
      return;
    }
    let sid: unknown;
    try {
      sid = (event as { session_id?: unknown }).session_id;
    } catch (err) {
      // A getter or a proxy that throws: the event cannot be routed. Lost, and told by the next
      // flush, as an event postMessage cannot carry is; emitEvent itself never throws.
      this.lost(`its session_id could not be read: ${(err as Error)?.message ?? String(err)}`);
      return;
    }
    const session = typeof sid === 'string' ? this.#sessions.get(sid) ?? NOWHERE : NOWHERE;
    const exec = executionIn(context);
    const scoped = typeof sid === 'string' && exec !== undefined ? this.#executions.get(sid)?.get(exec) ?? NOWHERE : NOWHERE;
    const wild = this.#wildcards;
    // In the owner's order: the session's sinks, the execution's, the wildcards.
    for (const u of session.direct) u.producer.handleEvent(event, context);
    for (const u of scoped.direct) u.producer.handleEvent(event, context);
    for (const u of wild.direct) u.producer.handleEvent(event, context);
    // Routed here, at the emit, like the direct sinks: a sink registered or cleared on the owner's
    // thread while the event travels gets what it would have got had the producer posted nothing.
    const indirect = [session.indirect, scoped.indirect, wild.indirect].filter((ids) => ids.length > 0);
    if (indirect.length > 0) this.send(event, context, indirect.length === 1 ? indirect[0] : indirect.flat());
  }

  protected override onRoute(msg: Exclude<ToProducer, { type: 'flushed' }>): void {
    // Taken off the port here or by this thread's loop: either way, not piling up.
    Atomics.store(this.#gen, Routes.APPLIED, ++this.#applied);
    if (msg.type === 'unrouted') {
      this.#unrouted = true;
      for (const route of this.#allRoutes()) this.#release(route);
      this.#sessions.clear();
      this.#executions.clear();
      this.#wildcards = NOWHERE;
      return;
    }
    const before = msg.session === null ? this.#wildcards : msg.execution === undefined ? this.#sessions.get(msg.session) ?? NOWHERE : this.#executions.get(msg.session)?.get(msg.execution) ?? NOWHERE;
    const direct = msg.direct.map(({ id, ring }) => {
      let used = this.#used.get(id);
      if (used === undefined) {
        const to = [id];
        used = { id, producer: new DirectProducer(ring, (e, c) => this.send(e, c, to), this.#scratch), refs: 0 };
        this.#used.set(id, used);
      }
      used.refs++;
      return used;
    });
    const after: Route = direct.length + msg.indirect.length === 0 ? NOWHERE : { direct, indirect: msg.indirect };
    if (msg.session === null) this.#wildcards = after;
    else if (msg.execution !== undefined) this.#setExecution(msg.session, msg.execution, after);
    else if (after === NOWHERE) this.#sessions.delete(msg.session);
    else this.#sessions.set(msg.session, after);
    this.#release(before);
  }

  #setExecution(session: string, execution: string, route: Route): void {
    let byExecution = this.#executions.get(session);
    if (route === NOWHERE) {
      byExecution?.delete(execution);
      if (byExecution?.size === 0) this.#executions.delete(session);
      return;
    }
    if (byExecution === undefined) this.#executions.set(session, (byExecution = new Map()));
    byExecution.set(execution, route);
  }

  /** Every route this producer holds. */
  #allRoutes(): Route[] {
    return [...this.#sessions.values(), ...[...this.#executions.values()].flatMap((m) => [...m.values()]), this.#wildcards];
  }

  /** The routes a barrier over the session (that execution's events, when given) covers. */
  #sessionRoutes(sessionId: string, execution: string | undefined): Route[] {
    const byExecution = this.#executions.get(sessionId);
    const scoped = execution === undefined ? [...(byExecution?.values() ?? [])] : [byExecution?.get(execution) ?? NOWHERE];
    return [this.#sessions.get(sessionId) ?? NOWHERE, ...scoped, this.#wildcards];
  }

  /** A route is no longer used: producers no other route uses are retired. */
  #release(route: Route): void {
    for (const used of route.direct) {
      if (--used.refs > 0) continue;
      this.#used.delete(used.id);
      this.#retired.push(used.producer);
    }
    // Forgotten once written, flushed or not: a producer that never flushes keeps no ring alive
    // (sessions come and go all day). Its losses are kept for the next flush to tell.
    if (this.#retired.length > 0) {
      this.#retired = this.#retired.filter((p) => {
        if (!p.written) return true;
        this.#retiredLost += p.takeLosses();
        return false;
      });
    }
  }

  /** Barrier in the owner's registry over every sink, this producer's earlier events included. */
  override flush(): Promise<void> {
    return this.#flush(undefined, undefined);
  }

  /** Barrier in the owner's registry, as its flushSessionSinks: this producer's earlier events included. */
  flushSessionSinks(sessionId: string, scope?: ExecutionScope): Promise<void> {
    checkSession(sessionId);
    return this.#flush(sessionId, executionOf(scope, 'flushSessionSinks'));
  }

  async #flush(sessionId: string | undefined, execution: string | undefined): Promise<void> {
    if (this.closed) return this.barrier(sessionId, execution);
    this.receiveNow();
    // The rings this barrier covers: the session's, its executions' and the wildcards' (every ring
    // without a session), and those of routes that changed since (retired, until settled).
    const routes = sessionId === undefined ? this.#allRoutes() : this.#sessionRoutes(sessionId, execution);
    const producers = new Set(this.#retired);
    for (const r of routes) for (const u of r.direct) producers.add(u.producer);
    this.takePosted();
    const retiredLost = this.#retiredLost;
    this.#retiredLost = 0;
    // Each ring's flush counts what this thread lost in it; the owner's barrier (the other sinks,
    // and each sink's own flush, which counts every thread's losses) is waited for too, and its
    // failure reported only when this thread's own flushes had none, so no loss counts twice.
    const [own, owner] = await Promise.all([Promise.allSettled([...producers].map((p) => p.flush())), this.barrier(sessionId, execution).then(() => undefined, (err: unknown) => err ?? new Error('barrier failed'))]);
    let first: SinkError | undefined =
      retiredLost === 0 ? undefined : new SinkError(`ringlog: ${retiredLost} event(s) lost from a producer thread in sinks no longer routed to`, { sink: 'session_registry', code: ErrorCode.DROPPED, droppedEvents: retiredLost });
    let dropped = retiredLost;
    for (const r of own) {
      if (r.status === 'fulfilled') continue;
      const err = r.reason as SinkError;
      first ??= err;
      dropped += err.droppedEvents;
    }
    if (first === undefined) {
      if (owner !== undefined) throw owner;
      return;
    }
    // The owner's failure stays in `failures` (its count overlaps this thread's, so it is not added).
    const failures = owner instanceof SinkError ? [first, owner] : [first];
    if (dropped === first.droppedEvents && failures.length === 1) throw first;
    throw new SinkError(first.message, { sink: first.sink, code: first.code as ErrorCode, droppedEvents: dropped, cause: first, failures });
  }
}

export function connectRegistry(handle: ProducerHandle): ConnectedRegistry {
  return new ConnectedRegistry(handle);
}

export function checkSession(sessionId: string): void {
  if (typeof sessionId !== 'string') throw new TypeError(`ringlog: session id must be a string, got ${typeof sessionId}`);
}

/** Narrows registerSink, flushSessionSinks, clearSessionSinks, … to one execution of the session. */
export interface ExecutionScope {
  /** The execution: events emitted with `context.executionId` equal to it. */
  readonly executionId?: string;
}

/** The execution a scope argument names (undefined: the whole session); a bad one is a TypeError. */
export function executionOf(scope: ExecutionScope | undefined, fn: string): string | undefined {
  if (scope === undefined) return undefined;
  if (scope === null || typeof scope !== 'object' || Array.isArray(scope)) throw new TypeError(`ringlog: ${fn} scope must be an object like { executionId }, got ${scope === null ? 'null' : Array.isArray(scope) ? 'an array' : typeof scope}`);
  for (const k of Object.keys(scope)) if (k !== 'executionId') throw new TypeError(`ringlog: ${fn} scope has an unknown field '${k}' (known: executionId)`);
  const e = scope.executionId;
  if (e !== undefined && typeof e !== 'string') throw new TypeError(`ringlog: ${fn} executionId must be a string, got ${e === null ? 'null' : typeof e}`);
  return e;
}

/** The execution an emit's context names, or undefined (none, not a string, or a getter that
 *  throws: an emit never throws, and the event still reaches the session's sinks). */
export function executionIn(context: EventContext | undefined): string | undefined {
  try {
    const e = context?.executionId;
    return typeof e === 'string' ? e : undefined;
  } catch {
    return undefined;
  }
}
