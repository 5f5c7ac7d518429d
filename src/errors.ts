// Typed errors with stable codes: asynchronous failures reach the user as SinkError, never as a
// swallowed exception or an untyped string.

export const ErrorCode = {
  /** The path cannot be used: reported synchronously by open(). */
  OPEN: 'ERR_RINGLOG_OPEN',
  /** Writing the file failed; the events that could not be written are counted as dropped. */
  WRITE: 'ERR_RINGLOG_WRITE',
  /** Events were dropped by the overload policy. */
  DROPPED: 'ERR_RINGLOG_DROPPED',
  /** A blocking barrier ran out of time. */
  TIMEOUT: 'ERR_RINGLOG_TIMEOUT',
  /** The writer thread could not be started or kept running. */
  WORKER: 'ERR_RINGLOG_WORKER',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class SinkError extends Error {
  override readonly name = 'SinkError';
  /** Which sink failed (for a JSONL sink, its base path). */
  readonly sink: string;
  /** Events known lost so far (never written, never will be). */
  readonly droppedEvents: number;
  readonly code: ErrorCode;

  constructor(message: string, opts: { sink: string; code: ErrorCode; droppedEvents?: number; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.sink = opts.sink;
    this.code = opts.code;
    this.droppedEvents = opts.droppedEvents ?? 0;
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
