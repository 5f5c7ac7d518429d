// Typed errors with stable codes: asynchronous failures reach the user as SinkError, never as a
// swallowed exception or an untyped string.

export const ErrorCode = {
  /** The path cannot be used: reported synchronously by open(). */
  OPEN: 'ERR_RINGLOG_OPEN',
  /**
   * Another live sink (in another process, or in this one) writes the path: one writer per path.
   * Reported synchronously by open(), with the holder's pid in `holderPid`.
   */
  LOCKED: 'ERR_RINGLOG_LOCKED',
  /** Writing the file failed; the events that could not be written are counted as dropped. */
  WRITE: 'ERR_RINGLOG_WRITE',
  /** Events were dropped by the overload policy. */
  DROPPED: 'ERR_RINGLOG_DROPPED',
  /** A blocking barrier ran out of time. */
  TIMEOUT: 'ERR_RINGLOG_TIMEOUT',
  /** The writer thread could not be started or kept running. */
  WORKER: 'ERR_RINGLOG_WORKER',
  /** A sink inside a MultiSink or the session registry threw from handleEvent or flush. */
  SINK: 'ERR_RINGLOG_SINK',
  /** A closed segment could not be compressed; it stays in place uncompressed. Writing is unaffected. */
  COMPRESS: 'ERR_RINGLOG_COMPRESS',
  /** An old segment could not be removed under maxFiles. Writing is unaffected. */
  RETENTION: 'ERR_RINGLOG_RETENTION',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class SinkError extends Error {
  override readonly name = 'SinkError';
  /** Which sink failed (for a JSONL sink, its base path). */
  readonly sink: string;
  /** Events known lost so far (never written, never will be). */
  readonly droppedEvents: number;
  readonly code: ErrorCode;
  /** Set when several sinks failed at one barrier (MultiSink, session registry): each one's error, first first. */
  readonly failures: readonly SinkError[] | undefined;
  /**
   * Set with code ERR_RINGLOG_LOCKED: the pid of the process holding the path (this process's own
   * pid when another sink in it holds the path). On another host when the message says so.
   */
  readonly holderPid: number | undefined;

  constructor(
    message: string,
    opts: { sink: string; code: ErrorCode; droppedEvents?: number; cause?: unknown; failures?: readonly SinkError[]; holderPid?: number },
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.sink = opts.sink;
    this.code = opts.code;
    this.droppedEvents = opts.droppedEvents ?? 0;
    this.failures = opts.failures;
    this.holderPid = opts.holderPid;
  }
}

/** The parts of an fs error worth carrying across threads. */
export interface FaultInfo {
  readonly code: string;
  readonly message: string;
  readonly syscall?: string;
}

export function faultInfo(err: unknown): FaultInfo {
  const e = err as NodeJS.ErrnoException;
  return { code: typeof e?.code === 'string' ? e.code : 'EUNKNOWN', message: String(e?.message ?? err), ...(e?.syscall ? { syscall: e.syscall } : {}) };
}

/** A failure as a SinkError: SinkErrors pass through, anything else is wrapped with the sink's name. */
export function asSinkError(err: unknown, sink: string): SinkError {
  if (err instanceof SinkError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SinkError(`ringlog: sink ${sink} failed: ${message}`, { sink, code: ErrorCode.SINK, cause: err });
}

/**
 * Several sinks failed at one barrier: the first failure speaks for all of them (its message,
 * sink, code and cause) with `droppedEvents` summed over every failure; `failures` lists each.
 */
export function combineFailures(failures: readonly SinkError[]): SinkError {
  const first = failures[0]!;
  if (failures.length === 1) return first;
  return new SinkError(first.message, {
    sink: first.sink,
    code: first.code,
    droppedEvents: failures.reduce((n, f) => n + f.droppedEvents, 0),
    cause: first.cause ?? first,
    failures,
    ...(first.holderPid !== undefined ? { holderPid: first.holderPid } : {}),
  });
}
