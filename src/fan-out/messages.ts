// Messages between a producer thread's connected handle and the thread that owns the sink or
// registry (types only). Ports deliver in order, so a flush request answers for every event the
// producer posted before it.

import type { MessagePort } from 'node:worker_threads';
import type { SharedRing } from '../ring/claim.js';
import type { AgentEvent, EventContext } from '../types.js';

export type ToOwner =
  /** One event, as structured-cloned by postMessage (a snapshot). `to`: the registry's ids of the
   *  sinks it is for, as the producer routed it when it emitted (a sinkHandle's events have none). */
  | { readonly type: 'event'; readonly event: AgentEvent; readonly context?: EventContext; readonly to?: readonly number[] }
  /** An event postMessage could not clone and JSON could not carry: the owner records it as lost. */
  | { readonly type: 'unsendable'; readonly reason: string }
  /** Barrier: answer once everything posted before is handled and the sink(s) flushed. */
  | { readonly type: 'flush'; readonly id: number; readonly sessionId?: string; readonly executionId?: string };

/** A JsonlEventSink of a registry whose ring producers write into, by the registry's id for it. */
export interface DirectRoute {
  readonly id: number;
  readonly ring: SharedRing;
}

export type ToProducer =
  | { readonly type: 'flushed'; readonly id: number; readonly error?: { readonly message: string; readonly sink: string; readonly code: string; readonly droppedEvents: number } }
  /**
   * A registry's routing for one session (`session: null`: the wildcard sinks), or with `execution`
   * for one execution of it (the sinks registered for that execution only), sent whenever it
   * changes: the rings to write into, and the ids of the other sinks (served on the owner's thread,
   * the event posted to them). Both empty: no sinks any more.
   */
  | { readonly type: 'route'; readonly session: string | null; readonly execution?: string; readonly direct: readonly DirectRoute[]; readonly indirect: readonly number[] }
  /** No more routes for this producer (it left too many unread): it posts every event from now on,
   *  routed on the owner's thread. (Going back to routes could reorder a sink's events: those
   *  posted meanwhile may not have reached it yet.) */
  | { readonly type: 'unrouted' };

/** What crosses to the producer thread: pass it in workerData and list `port` in transferList. */
export interface ProducerHandle {
  readonly kind: 'ringlog.sink' | 'ringlog.registry';
  readonly port: MessagePort;
  /** A JsonlEventSink's ring: the producer thread writes into it directly (fan-out/direct.ts);
   *  the port then carries only events too big for the ring, and flush barriers for them. */
  readonly ring?: SharedRing;
  /** A registry's routing generations (two Int32, Routes in connected-registry.ts): the owner
   *  bumps the first after each 'route' message it posts, so a producer takes new routes off its
   *  port at its next emit, without its loop turning; the producer stores the second. */
  readonly routes?: SharedArrayBuffer;
}
