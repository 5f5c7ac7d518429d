// Producer handles: several worker threads emitting into one sink or one session registry. In the
// producer thread, connect(handle) gives back an ordinary AgentEventSink (or a registry emitter).
// A JsonlEventSink's handle shares its ring: the producer writes into it directly, under the claim
// lock that keeps the index gap-free and in one order across threads (fan-out/direct.ts). Any
// other sink, and a registry, is served on the owner's thread: each producer posts its events
// through a MessagePort, which copies them at the call (postMessage clones synchronously) and never
// waits, and flush() is a barrier that round-trips.

import { MessageChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { trackInbound, untrackInbound, type InboundQueue } from '../caller/exit.js';
import { asSinkError, ErrorCode, SinkError } from '../errors.js';
import { flushAll, HandlerFaults, sinkName } from './deliver.js';
import type { ProducerHandle, ToOwner, ToProducer } from './messages.js';
import type { AgentEvent, AgentEventSink, EventContext } from '../types.js';
import { JsonlEventSink, shareRing } from '../caller/sink.js';
import { DirectProducer } from './direct.js';

export type { ProducerHandle } from './messages.js';

interface Target {
  /** `to`: a registry's ids of the sinks the event is for (see ToOwner). */
  deliver(event: AgentEvent, context: EventContext | undefined, to: readonly number[] | undefined): void;
  flush(sessionId: string | undefined, executionId: string | undefined): Promise<void>;
  readonly name: string;
}

/**
 * Owner side: serves one port. Events that could not be sent are reported by the next flush. The
 * port does not keep the owner's process alive, so at exit (and on a signal) whatever producers
 * already sent is taken off the port synchronously and delivered before the sinks write for good:
 * the process may end at any moment and with the producers gone, and none of it is lost.
 */
export function serve(kind: ProducerHandle['kind'], target: Target): { handle: { kind: ProducerHandle['kind']; port: MessagePort }; toProducer: MessagePort } {
  const { port1, port2 } = new MessageChannel();
  let unsendable = 0;
  let firstReason = '';
  const handle = (msg: ToOwner): void => {
    if (msg.type === 'event') target.deliver(msg.event, msg.context, msg.to);
    else if (msg.type === 'unsendable') {
      if (unsendable++ === 0) firstReason = msg.reason;
    } else {
      const lost = unsendable;
      unsendable = 0;
      let done: Promise<void>;
      try {
        done = Promise.resolve(target.flush(msg.sessionId, msg.executionId));
      } catch (err) {
        done = Promise.reject(err);
      }
      done.then(
        () => {
          if (lost > 0) reply(msg.id, new SinkError(unsendableMessage(lost, firstReason), { sink: target.name, code: ErrorCode.DROPPED, droppedEvents: lost }));
          else port1.postMessage({ type: 'flushed', id: msg.id } satisfies ToProducer);
        },
        (err: unknown) => reply(msg.id, asSinkError(err, target.name), lost),
      );
    }
  };
  const queue: InboundQueue = {
    deliverNow(ending: boolean, deadline: number): void {
      let taken = 0;
      for (let m = receiveMessageOnPort(port1); m !== undefined; m = receiveMessageOnPort(port1)) {
        const msg = m.message as ToOwner;
        // A barrier's answer could never arrive at exit: only events matter then.
        if (!ending || msg.type !== 'flush') handle(msg);
        // The clock is read once per 1,024 messages: a few microseconds' worth.
        if ((++taken & 1023) === 0 && Date.now() >= deadline) {
          if (ending) process.stderr.write(`ringlog: a producer thread was still sending when the process ended; what it sent after the first ${taken} event(s) of the end was not taken (${target.name})\n`);
          break;
        }
      }
      // No flush will report these any more: say it where a person will see it.
      if (ending && unsendable > 0) process.stderr.write(`ringlog: ${unsendableMessage(unsendable, firstReason)} (${target.name})\n`);
    },
  };
  port1.on('message', handle);
  port1.on('close', () => untrackInbound(queue));
  trackInbound(queue);
  // The owner's side must not keep its process alive: producers are the ones with work to do.
  port1.unref();
  function reply(id: number, err: SinkError, extraLost = 0): void {
    port1.postMessage({ type: 'flushed', id, error: { message: err.message, sink: err.sink, code: err.code, droppedEvents: err.droppedEvents + extraLost } } satisfies ToProducer);
  }
  return { handle: { kind, port: port2 }, toProducer: port1 };
}

function unsendableMessage(lost: number, reason: string): string {
  return `ringlog: ${lost} event(s) from a producer thread could not be sent: ${reason}`;
}

/** A handle for producer threads that emit into `sink`. Pass it in workerData with `port` in the transferList. */
export function sinkHandle(sink: AgentEventSink): ProducerHandle {
  if (sink === null || typeof sink !== 'object' || typeof sink.handleEvent !== 'function' || typeof sink.flush !== 'function') throw new TypeError('ringlog: sinkHandle expects a sink (an object with handleEvent and flush methods)');
  // Through the same guards as MultiSink: a throwing handleEvent must not kill the owner's thread
  // (the port's listener would turn it into an uncaught exception), and is reported at flush.
  const faults = new HandlerFaults();
  const name = sinkName(sink);
  const { handle } = serve('ringlog.sink', { deliver: (e, c) => faults.deliver([sink], e, c), flush: () => flushAll([sink], faults, name), name });
  return sink instanceof JsonlEventSink ? { ...handle, ring: shareRing(sink) } : handle;
}

/** Producer side of a handle: an AgentEventSink whose events go to the owner's thread. */
export class ConnectedSink implements AgentEventSink {
  readonly #port: MessagePort;
  /** Set for a JsonlEventSink's handle: events go straight into its ring. */
  readonly #direct: DirectProducer | undefined;
  /** Events sent to the owner since the last flush (too big for the ring, or no ring). */
  #posted = 0;
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: unknown) => void }>();
  #nextId = 1;
  #closed = false;

  constructor(handle: ProducerHandle, expected: ProducerHandle['kind'] = 'ringlog.sink') {
    if (handle === null || typeof handle !== 'object' || handle.kind !== expected || handle.port === undefined) {
      throw new TypeError(`ringlog: expected a ${expected === 'ringlog.sink' ? 'sinkHandle()' : 'registry handle()'} passed through workerData (with its port in the transferList)`);
    }
    this.#port = handle.port as MessagePort;
    this.#port.on('message', (msg: ToProducer) => this.#receive(msg));
    // Posting needs no ref; only a pending flush must keep the producer's thread alive.
    this.#port.unref();
    this.#direct = handle.ring === undefined || expected !== 'ringlog.sink' ? undefined : new DirectProducer(handle.ring, (e, c) => this.send(e, c));
  }

  #receive(msg: ToProducer): void {
    if (msg.type === 'route' || msg.type === 'unrouted') {
      this.onRoute(msg);
      return;
    }
    const p = this.#pending.get(msg.id);
    if (p === undefined) return;
    this.#pending.delete(msg.id);
    if (this.#pending.size === 0) this.#port.unref();
    if (msg.error === undefined) p.resolve();
    else p.reject(new SinkError(msg.error.message, { sink: msg.error.sink, code: msg.error.code as ErrorCode, droppedEvents: msg.error.droppedEvents }));
  }

  /** A registry's routing update (ConnectedRegistry); a sink's handle gets none. */
  protected onRoute(_msg: Exclude<ToProducer, { type: 'flushed' }>): void {}

  /** Takes what the owner posted off the port now, without waiting for this thread's loop. */
  protected receiveNow(): void {
    for (let m = receiveMessageOnPort(this.#port); m !== undefined; m = receiveMessageOnPort(this.#port)) this.#receive(m.message as ToProducer);
  }

  protected get closed(): boolean {
    return this.#closed;
  }

  handleEvent(event: AgentEvent, context?: EventContext): void {
    if (this.#closed) return;
    if (this.#direct !== undefined) this.#direct.handleEvent(event, context);
    else this.send(event, context);
  }

  /** Posts one event to the owner's thread (`to`: see ToOwner). */
  protected send(event: AgentEvent, context: EventContext | undefined, to?: readonly number[]): void {
    this.#posted++;
    const msg: ToOwner = to !== undefined ? { type: 'event', event, context, to } : context === undefined ? { type: 'event', event } : { type: 'event', event, context };
    try {
      this.#port.postMessage(msg);
    } catch (err) {
      // Functions, symbols or class instances postMessage refuses: fall back to JSON, which is
      // what the event would become in the file anyway; an event JSON cannot carry either is lost.
      this.#post(fallback(event, context, to, err));
    }
  }

  /** An event that cannot reach the owner: counted there and reported by the next flush. */
  protected lost(reason: string): void {
    this.#post({ type: 'unsendable', reason });
  }

  #post(msg: ToOwner): void {
    try {
      this.#port.postMessage(msg);
    } catch (err) {
      this.#port.postMessage({ type: 'unsendable', reason: String((err as Error)?.message ?? err) } satisfies ToOwner);
    }
  }

  /** Resolves once the owner handled every event posted before and its sink flushed. */
  flush(): Promise<void> {
    if (this.#direct === undefined) return this.barrier(undefined);
    if (this.#closed) return this.barrier(undefined);
    const direct = this.#direct.flush();
    // Events that went to the owner are behind a barrier of their own; both are waited for.
    return this.takePosted() === 0 ? direct : Promise.all([direct, this.barrier(undefined)]).then(() => undefined);
  }

  /** How many events went to the owner since the last call. */
  protected takePosted(): number {
    const posted = this.#posted;
    this.#posted = 0;
    return posted;
  }

  protected barrier(sessionId: string | undefined, executionId?: string): Promise<void> {
    if (this.#closed) return Promise.reject(new SinkError('ringlog: this producer handle is closed', { sink: 'handle', code: ErrorCode.WORKER }));
    const id = this.#nextId++;
    return new Promise<void>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#port.ref();
      this.#port.postMessage({ type: 'flush', id, ...(sessionId === undefined ? {} : { sessionId }), ...(executionId === undefined ? {} : { executionId }) } satisfies ToOwner);
    });
  }

  /** Closes the port; events posted before still reach the owner. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#port.close();
  }
}

function fallback(event: AgentEvent, context: EventContext | undefined, to: readonly number[] | undefined, cloneErr: unknown): ToOwner {
  try {
    const json = JSON.stringify(event);
    if (json === undefined) throw new TypeError('not a JSON value');
    const copy = JSON.parse(json) as AgentEvent;
    return { type: 'event', event: copy, ...(context === undefined ? {} : { context }), ...(to === undefined ? {} : { to }) };
  } catch (err) {
    return { type: 'unsendable', reason: `${(cloneErr as Error)?.message ?? cloneErr}; as JSON: ${(err as Error)?.message ?? err}` };
  }
}

/** In a producer thread: the sink behind a sinkHandle(). */
export function connectSink(handle: ProducerHandle): ConnectedSink {
  return new ConnectedSink(handle, 'ringlog.sink');
}
