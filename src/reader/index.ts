// The reader: a rotated set (or one NDJSON stream) back as events, in index order, checked.
export { readEvents, readRecords, followEvents, followRecords, eventAt, readStream, readStdin, DEFAULT_POLL_MS } from './walk.js';
export { listSegments, CHUNK_BYTES } from './files.js';
export { indexPath as sparseIndexPath, CHECKPOINT_BYTES } from './sparse-index.js';
export { ReadError } from './types.js';
export type { EventEnvelope, LogMarker, PersistedEvent, UntypedEvent, RawRecord, ReadIssue, ReadIssueCode, ReadErrorCode, ReadOptions, FollowOptions, SegmentInfo, TornTail } from './types.js';
