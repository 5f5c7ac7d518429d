export { JsonlEventSink } from './caller/sink.js';
export { SinkError, ErrorCode } from './errors.js';
export type { JsonlEventSinkOptions, OverloadPolicy, WriterResourceLimits } from './caller/options.js';
export type { AgentEvent, AgentEventSink, EventContext, SinkStats } from './types.js';
export { openEventLog, DEFAULT_QUEUE_DEPTH } from './event-log/open.js';
export type { EventLogOptions } from './event-log/open.js';
export { MemoryEventLog } from './event-log/memory.js';
export { Topic, sanitizeTopicComponent } from './event-log/topic.js';
export { EventLogError, EventLogErrorCode } from './event-log/errors.js';
export type { BackendName, CompactResult, EventLog, EventLogDescription, IdempotentAppend, LogEvent, NewLogEvent, SubscribeOptions, TopicLike } from './event-log/types.js';
export { EventLogSink } from './event-log/sink.js';
export type { EventLogSinkOptions, EventLogSinkStats } from './event-log/sink.js';
export { MultiSink } from './fan-out/multi-sink.js';
export {
  SessionRegistry,
  defaultRegistry,
  registerSink,
  registerWildcardSink,
  unregisterWildcardSink,
  emitEvent,
  flushSessionSinks,
  clearSessionSinks,
  flushAndClearSessionSinks,
} from './fan-out/registry.js';
export { connectRegistry, ConnectedRegistry } from './fan-out/connected-registry.js';
export type { WildcardHandle, ExecutionScope } from './fan-out/registry.js';
export { sinkHandle, connectSink, ConnectedSink } from './fan-out/handle.js';
export type { ProducerHandle } from './fan-out/handle.js';
export { DurableProjector, MAX_TRACKED_STREAMS, MAX_TRACKED_KEY_BYTES } from './writer/projector.js';
export { createRedactor, DEFAULT_REDACT_KEYS, DEFAULT_REDACT_QUERY_PARAMS, DEFAULT_CENSOR } from './writer/redact.js';
export type { RedactOption, RedactConfig, RedactFunction } from './writer/redact.js';
export {
  readEvents,
  readRecords,
  followEvents,
  followRecords,
  eventAt,
  readStream,
  readStdin,
  listSegments,
  sparseIndexPath,
  ReadError,
} from './reader/index.js';
export type { EventEnvelope, LogMarker, PersistedEvent, UntypedEvent, RawRecord, ReadIssue, ReadIssueCode, ReadErrorCode, ReadOptions, FollowOptions, SegmentInfo, TornTail } from './reader/index.js';
