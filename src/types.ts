// The names users type: the sink interface of the harn runtime, in TypeScript.

/**
 * An agent event: any object; by convention it has a string `type`. Plain `object` so that events
 * declared as interfaces (which have no index signature, so a record type refuses them) and object
 * literals with any fields (which a type naming `type` would check for excess properties) are
 * accepted as they are, while primitives are still refused. Read its fields after narrowing.
 */
export type AgentEvent = object;

export interface EventContext {
  /** Call-stack depth at emission; written as `frame_depth` (null when absent). */
  readonly frameDepth?: number;
  /** Written as `execution_id` right after `frame_depth` when given. */
  readonly executionId?: string;
}

export interface AgentEventSink {
  handleEvent(event: AgentEvent, context?: EventContext): void;
  flush(): Promise<void>;
}

export interface SinkStats {
  /** handleEvent calls since open: indexes handed out, plus calls after close() (all dropped). */
  readonly accepted: number;
  /** Indexes whose line is in the file (events, and rejection markers). */
  readonly written: number;
  /** Events that never reached the file: overload drops, write faults, calls after close. */
  readonly dropped: number;
  /** Streaming snapshots durable projection left out, each standing in an `events_projected`
   *  marker of the file (option durableProjection). */
  readonly projected: number;
  /** Events written as an `event_rejected` marker because they could not be snapshotted. */
  readonly rejected: number;
  /** Accepted, not yet written, dropped or projected. */
  readonly pending: number;
  /** Bytes written to the files since open. */
  readonly bytes: number;
  /** Current segment number (0 = the base file). */
  readonly segment: number;
  /** Rotations since open. */
  readonly rotations: number;
  readonly ringBytes: number;
  /** Most ring bytes ever in use at once. */
  readonly ringHighWater: number;
  /** Bytes waiting in the overflow queue (and big events held outside the ring). */
  readonly bufferedBytes: number;
  readonly bufferHighWater: number;
  /** Blocking waits that ran out (blockTimeoutMs). Each stall of the writer costs the caller at
   *  most one such wait, however many events meet it (README, "Overload"). */
  readonly stalls: number;
  /** Writer threads started after the first one died. */
  readonly workerRestarts: number;
  /** Persistent write faults reported. */
  readonly faults: number;
  /** Closed segments compressed to `.gz` by this sink (`compress: 'gzip'`). */
  readonly segmentsCompressed: number;
  /** Old segments removed by retention (`maxFiles`). */
  readonly segmentsRemoved: number;
}
