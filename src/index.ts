export { JsonlEventSink } from './sink.js';
export { SinkError, ErrorCode } from './errors.js';
export type { JsonlEventSinkOptions, OverloadPolicy, WriterResourceLimits } from './options.js';
export type { AgentEvent, AgentEventSink, EventContext, SinkStats } from './types.js';
