// Typed, stable errors of the event log. Misuse (bad arguments) throws TypeError/RangeError
// synchronously; these are the asynchronous failures.

export const EventLogErrorCode = {
  /** A subscriber fell further behind than the queue depth. */
  LAGGED: 'ERR_RINGLOG_EVENT_LOG_LAGGED',
  /** An append, ack or compaction on a log opened read-only. */
  READ_ONLY: 'ERR_RINGLOG_EVENT_LOG_READ_ONLY',
  /** The log was closed. */
  CLOSED: 'ERR_RINGLOG_EVENT_LOG_CLOSED',
  /** The chosen backend cannot be used here (better-sqlite3 not installed). */
  UNAVAILABLE: 'ERR_RINGLOG_EVENT_LOG_UNAVAILABLE',
  /** The storage failed (file system or database error); `cause` holds the original. */
  IO: 'ERR_RINGLOG_EVENT_LOG_IO',
  /** Stored data could not be read back (a damaged line or row). */
  CORRUPT: 'ERR_RINGLOG_EVENT_LOG_CORRUPT',
} as const;
export type EventLogErrorCode = (typeof EventLogErrorCode)[keyof typeof EventLogErrorCode];

export class EventLogError extends Error {
  override readonly name = 'EventLogError';
  readonly code: EventLogErrorCode;
  /** LAGGED: the last id the subscriber received (resubscribe from it to continue without a gap). */
  readonly lastSeenId: number | undefined;
  /** The topic concerned, when there is one. */
  readonly topic: string | undefined;

  constructor(code: EventLogErrorCode, message: string, opts: { topic?: string; lastSeenId?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.code = code;
    this.topic = opts.topic;
    this.lastSeenId = opts.lastSeenId;
  }
}

export function closedError(backend: string): EventLogError {
  return new EventLogError(EventLogErrorCode.CLOSED, `ringlog: the ${backend} event log is closed`);
}
