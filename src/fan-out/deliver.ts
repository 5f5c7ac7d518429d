// Delivery to a list of sinks, shared by MultiSink and the session registry: one sink throwing
// from handleEvent must not keep the event from the others, and a barrier drains every sink even
// after one fails, then reports the first failure with the losses of all.

import { asSinkError, combineFailures, ErrorCode, SinkError } from '../errors.js';
import type { AgentEvent, AgentEventSink, EventContext } from '../types.js';

/** A sink's name in errors: its base path (JsonlEventSink), 'event_log', or its class name. */
export function sinkName(sink: AgentEventSink): string {
  const s = sink as { basePath?: unknown; sinkName?: unknown };
  if (typeof s.sinkName === 'string') return s.sinkName;
  if (typeof s.basePath === 'string') return s.basePath;
  return (sink as object).constructor?.name ?? 'sink';
}

/**
 * Sinks whose handleEvent threw: each throw counts as one event lost for that sink, reported by
 * the next barrier over it (then forgotten, so one bad call is not reported forever).
 */
export class HandlerFaults {
  /** Weak: a sink removed from the registry without a flush takes its unreported faults with it. */
  private readonly faults = new WeakMap<AgentEventSink, { first: unknown; count: number }>();
  private refused = 0;

  /**
   * Runs a delivery unless it is nested `MAX_DEPTH` deep inside this fan-out: a sink that
   * re-emits every event it handles would otherwise recurse until the stack overflows. Refused
   * events are counted and reported by the next barrier.
   */
  guard(run: () => void): void {
    if (this.depth >= MAX_DEPTH) {
      this.refused++;
      return;
    }
    this.depth++;
    try {
      run();
    } finally {
      this.depth--;
    }
  }
  private depth = 0;

  /** Takes the count of refused nested emits as a SinkError, if any. */
  takeRefused(owner: string): SinkError | undefined {
    const n = this.refused;
    if (n === 0) return undefined;
    this.refused = 0;
    return new SinkError(`ringlog: ${n} event(s) emitted more than ${MAX_DEPTH} levels deep into the ${owner} from its own sinks were dropped (a sink re-emitting every event it handles?)`, {
      sink: owner,
      code: ErrorCode.DROPPED,
      droppedEvents: n,
    });
  }

  deliver(sinks: readonly AgentEventSink[], event: AgentEvent, context: EventContext | undefined): void {
    for (const sink of sinks) {
      try {
        sink.handleEvent(event, context);
      } catch (err) {
        const f = this.faults.get(sink);
        if (f === undefined) this.faults.set(sink, { first: err, count: 1 });
        else f.count++;
      }
    }
  }

  /** Takes the recorded faults of `sink` as a SinkError, if any. */
  take(sink: AgentEventSink): SinkError | undefined {
    const f = this.faults.get(sink);
    if (f === undefined) return undefined;
    this.faults.delete(sink);
    const name = sinkName(sink);
    const why = f.first instanceof Error ? f.first.message : String(f.first);
    return new SinkError(`ringlog: sink ${name} threw from handleEvent ${f.count} time(s): ${why}`, { sink: name, code: ErrorCode.SINK, droppedEvents: f.count, cause: f.first });
  }
}

/** 32 levels is far beyond any sane chain of sinks relaying events to one another. */
const MAX_DEPTH = 32;

/** Flushes every sink (all of them, in parallel, whatever fails), then rejects with the combined failure. */
export async function flushAll(sinks: readonly AgentEventSink[], faults: HandlerFaults, owner: string): Promise<void> {
  const results = await Promise.allSettled(
    sinks.map((s) => {
      try {
        return Promise.resolve(s.flush());
      } catch (err) {
        return Promise.reject(err);
      }
    }),
  );
  const failures: SinkError[] = [];
  results.forEach((r, i) => {
    const sink = sinks[i]!;
    const handlerFault = faults.take(sink);
    if (handlerFault !== undefined) failures.push(handlerFault);
    if (r.status === 'rejected') failures.push(asSinkError(r.reason, sinkName(sink)));
  });
  const refused = faults.takeRefused(owner);
  if (refused !== undefined) failures.push(refused);
  if (failures.length > 0) throw combineFailures(failures);
}
