// Public shapes of the reader: what a record and an issue look like, and the one error class.

/** The fields ringlog writes before an event's own. */
export interface EventEnvelope {
  index: number;
  emitted_at_ms: number;
  frame_depth: number | null;
  /** Present when the event was logged with an `executionId`. */
  execution_id?: string;
}

/** An event the reader is told nothing about: any fields, `type` a string when present. */
export interface UntypedEvent {
  type?: string;
  [field: string]: unknown;
}

/** The lines ringlog itself writes in place of events: lost ones, ones durable projection left
 *  out (streaming snapshots a later line repeats), and ones it could not write. */
export type LogMarker =
  | { type: 'events_dropped'; /** Indexes covered, this line's first. */ count: number }
  | { type: 'events_projected'; /** Indexes covered, this line's first. */ count: number }
  | { type: 'event_rejected'; reason: string };

/**
 * One line of the log, parsed: the envelope, then the event's own fields. `E` is the caller's word
 * for what the log holds (nothing checks it while reading); markers come through as they are, so
 * `E | LogMarker` is the honest type of a log that may have lost or refused events.
 */
export type PersistedEvent<E extends object = UntypedEvent> = EventEnvelope & E;

/** One line of the log as bytes on disk, with only the envelope decoded. */
export interface RawRecord {
  index: number;
  emittedAtMs: number;
  type: string | undefined;
  /** The line as in the file, without '\n'. */
  text: string;
  /** UTF-8 bytes incl. newline. */
  bytes: number;
  file: string;
  /** 1-based line number in its file. */
  line: number;
  /** Indexes this record covers: 1, or `count` for an events_dropped or events_projected marker. */
  covers: number;
}

export type ReadIssueCode =
  | 'ERR_RINGLOG_READ_GAP'
  | 'ERR_RINGLOG_READ_DUPLICATE'
  | 'ERR_RINGLOG_READ_ORDER'
  | 'ERR_RINGLOG_READ_PARSE'
  | 'ERR_RINGLOG_READ_TORN'
  /** A compressed segment that ends early or does not inflate: the lines before the damage are read. */
  | 'ERR_RINGLOG_READ_CORRUPT';

export interface ReadIssue {
  code: ReadIssueCode;
  message: string;
  file: string;
  /** 1-based line number in `file` (0 when the issue is not about one line). */
  line: number;
  /** The index found on the line, when it has one. */
  index?: number;
  /** The index the line should have had (GAP, DUPLICATE, ORDER). */
  expected?: number;
}

export type ReadErrorCode = ReadIssueCode | 'ERR_RINGLOG_READ_IO';

export class ReadError extends Error {
  override readonly name = 'ReadError';
  readonly code: ReadErrorCode;
  readonly file: string;
  readonly line: number;
  readonly index?: number;
  readonly expected?: number;

  constructor(
    message: string,
    opts: { code: ReadErrorCode; file: string; line: number; index?: number; expected?: number; cause?: unknown },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = opts.code;
    this.file = opts.file;
    this.line = opts.line;
    if (opts.index !== undefined) this.index = opts.index;
    if (opts.expected !== undefined) this.expected = opts.expected;
  }

  static fromIssue(issue: ReadIssue): ReadError {
    return new ReadError(issue.message, issue);
  }
}

export interface ReadOptions {
  /** First index wanted: records whose index range reaches it are yielded. */
  fromIndex?: number;
  /** Last index wanted, inclusive. */
  toIndex?: number;
  /** Only records of these types are yielded (all records are still checked). */
  types?: readonly string[];
  /**
   * 'throw' (default): the first issue rejects the iterator with a ReadError; 'warn': issues go to
   * onIssue (default: process.emitWarning) and reading goes on.
   */
  issues?: 'throw' | 'warn';
  onIssue?: (issue: ReadIssue) => void;
  /**
   * Hears the torn last line of a set or stream (a writer killed mid-line), which reading skips
   * without an issue: where it is and how many bytes it has. Not called when following (there
   * the line is waited for) or when the read ends early (toIndex, abort).
   */
  onTornTail?: (tail: TornTail) => void;
  /** Aborting ends the iteration: the pending next() resolves `done`. */
  signal?: AbortSignal;
}

export interface TornTail {
  /** The file (`-` for a stream). */
  file: string;
  /** Bytes after its last newline. */
  bytes: number;
}

export interface FollowOptions extends ReadOptions {
  signal: AbortSignal;
  /** How often to look for growth when no file-system notification came (default 100 ms). */
  pollIntervalMs?: number;
}

export interface SegmentInfo {
  path: string;
  /** 0 for the base file, n for `<stem>-00000n.<ext>`. */
  number: number;
  compressed: boolean;
  /** Size on disk (compressed size for a .gz segment). */
  bytes: number;
}
