// Fault injection for tests, read by the writer thread only, from the environment variable
// RINGLOG_TEST_INJECT (JSON). It exists for the failures that cannot be produced for real on
// demand (EIO, EBADF, an exception inside the writer); real faults (/dev/full, a full tmpfs, a
// read-only directory, a killed thread) are tested for real. Unset, it costs nothing.
import type { FileIo } from './segment-writer.js';

export interface Injection {
  /** errno code the writer's write() fails with, e.g. "EIO" or "EAGAIN". */
  readonly code?: string;
  /** Successful writes before the first injected failure. */
  readonly afterWrites?: number;
  /** How many writes fail (default: all from then on). */
  readonly times?: number;
  /** Throw from the writer's loop after this many batches (a crash inside the thread). */
  readonly crashAfterBatches?: number;
  /** Allocate without bound after this many batches: a real out-of-memory death of the thread
   *  (quick with the writerResourceLimits option). */
  readonly oomAfterBatches?: number;
}

export function readInjection(): Injection | undefined {
  const raw = process.env.RINGLOG_TEST_INJECT;
  if (!raw) return undefined;
  return JSON.parse(raw) as Injection;
}

export function faultyIo(base: FileIo, inj: Injection): FileIo {
  if (!inj.code) return base;
  let writes = 0;
  let failures = 0;
  return {
    ...base,
    write(fd, buf, off, len) {
      if (writes >= (inj.afterWrites ?? 0) && failures < (inj.times ?? Infinity)) {
        failures++;
        const err = new Error(`${inj.code}: injected fault, write`) as NodeJS.ErrnoException;
        err.code = inj.code;
        err.syscall = 'write';
        throw err;
      }
      writes++;
      return base.write(fd, buf, off, len);
    },
  };
}
