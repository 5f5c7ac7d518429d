// MultiSink: fan-out to several sinks in push order. handleEvent walks a snapshot of the list, so a
// sink may push to this MultiSink, or emit into it again, from inside its own handleEvent: the new
// sink gets the next event, and re-entrant emits are delivered to the sinks of that moment.

import { flushAll, HandlerFaults } from './deliver.js';
import type { AgentEvent, AgentEventSink, EventContext } from '../types.js';

export class MultiSink implements AgentEventSink {
  /** Replaced (never mutated) on push, so a snapshot taken by handleEvent stays valid. */
  #sinks: readonly AgentEventSink[] = [];
  readonly #faults = new HandlerFaults();

  constructor(sinks: Iterable<AgentEventSink> = []) {
    for (const s of sinks) this.push(s);
  }

  push(sink: AgentEventSink): void {
    if (sink === null || typeof sink !== 'object' || typeof sink.handleEvent !== 'function' || typeof sink.flush !== 'function') {
      throw new TypeError('ringlog: MultiSink.push expects a sink (an object with handleEvent and flush methods)');
    }
    if (sink === (this as AgentEventSink)) throw new TypeError('ringlog: a MultiSink cannot contain itself');
    this.#sinks = [...this.#sinks, sink];
  }

  get size(): number {
    return this.#sinks.length;
  }

  /** Never throws: a sink that throws is skipped for this event and reported by the next flush. */
  handleEvent(event: AgentEvent, context?: EventContext): void {
    const sinks = this.#sinks;
    this.#faults.guard(() => this.#faults.deliver(sinks, event, context));
  }

  /** Flushes every sink, even after one fails; rejects with the first failure, droppedEvents summed over all. */
  flush(): Promise<void> {
    return flushAll(this.#sinks, this.#faults, 'multi_sink');
  }
}
