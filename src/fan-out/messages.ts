// Messages between a producer thread's connected handle and the thread that owns the sink or
// registry (types only). Ports deliver in order, so a flush request answers for every event the
// producer posted before it.

import type { MessagePort } from 'node:worker_threads';
import type { SharedRing } from '../ring/claim.js';
import type { AgentEvent, EventContext } from '../types.js';

export type ToOwner =
  /** One event, as structured-cloned by postMessage (a snapshot). */
  | { readonly type: 'event'; readonly event: AgentEvent; readonly context?: EventContext }
  /** An event postMessage could not clone and JSON could not carry: the owner records it as lost. */
  | { readonly type: 'unsendable'; readonly reason: string }
  /** Barrier: answer once everything posted before is handled and the sink(s) flushed. */
  | { readonly type: 'flush'; readonly id: number; readonly sessionId?: string };

export type ToProducer = { readonly type: 'flushed'; readonly id: number; readonly error?: { readonly message: string; readonly sink: string; readonly code: string; readonly droppedEvents: number } };

/** What crosses to the producer thread: pass it in workerData and list `port` in transferList. */
export interface ProducerHandle {
  readonly kind: 'ringlog.sink' | 'ringlog.registry';
  readonly port: MessagePort;
  /** A JsonlEventSink's ring: the producer thread writes into it directly (fan-out/direct.ts);
   *  the port then carries only events too big for the ring, and flush barriers for them. */
  readonly ring?: SharedRing;
}
