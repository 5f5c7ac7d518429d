// One run of the command: its stdout, the signal that ends long work early, and the exit code.

import { EXIT_OK, Output } from './output.js';

export type StopReason = 'broken-pipe' | 'signal';

export interface Run {
  readonly out: Output;
  /** Aborted when stdout's reader goes away or, for commands that run until stopped, on SIGINT/SIGTERM. */
  readonly signal: AbortSignal;
  readonly stopReason: StopReason | null;
  stop(reason: StopReason): void;
  /** What the process ends with unless an error decides otherwise. */
  exitCode: number;
}

export function createRun(stdout: NodeJS.WritableStream = process.stdout): Run {
  const controller = new AbortController();
  let stopReason: StopReason | null = null;
  const stop = (reason: StopReason): void => {
    stopReason ??= reason;
    controller.abort();
  };
  const out = new Output(stdout, () => stop('broken-pipe'));
  return {
    out,
    signal: controller.signal,
    get stopReason() {
      return stopReason;
    },
    stop,
    exitCode: EXIT_OK,
  };
}

/**
 * For commands that run until the user stops them (`tail -f`, `view`): SIGINT and SIGTERM end the
 * run cleanly instead of killing the process, so it closes what it opened and exits 0. Returns the
 * function that removes the handlers again.
 */
export function stopOnSignals(run: Run): () => void {
  const handler = (): void => run.stop('signal');
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}

/** Resolves when the run is stopped. */
export function stopped(run: Run): Promise<void> {
  if (run.signal.aborted) return Promise.resolve();
  return new Promise((resolve) => run.signal.addEventListener('abort', () => resolve(), { once: true }));
}
