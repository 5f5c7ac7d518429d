// The caller's thread writing its sink's file itself: flushSync(), the exit, close() after a
// writer that died, and every write when no writer thread can run. It takes the ring's lock as a
// writer does (writer/hold.ts: repair after a holder that died, then drain), writes the ring with
// the writer's own consumer, then what this thread holds outside the ring (overflow.ts), so the
// file stays in index order.

import * as fs from 'node:fs';
import type { Janitor } from '../files/janitor.js';
import { ErrorCode, faultInfo, SinkError } from '../errors.js';
import type { KeyTable } from '../ring/keys.js';
import type { RingViews } from '../ring/memory.js';
import { Ctl } from '../ring/slots.js';
import { sleepSync } from '../ring/wait.js';
import { RingConsumer } from '../writer/consumer.js';
import { heldBatch, holdFromOutside, release } from '../writer/hold.js';
import { compileRedaction, type RedactSpec } from '../writer/redact.js';
import type { Losses } from './losses.js';
import type { Overflow } from './overflow.js';
import type { WriterLink } from './writer-service.js';

/** How long a drain waits between looks for an external record (one that should never be missing). */
const EXTERNAL_RETRY_MS = 1;

export interface DrainHereParts {
  readonly ring: RingViews;
  readonly writer: WriterLink;
  readonly basePath: string;
  readonly rotateBytes: number;
  readonly redact: RedactSpec | null;
  readonly keys: KeyTable;
  readonly overflow: Overflow;
  readonly losses: Losses;
  readonly janitor: Janitor | undefined;
}

export class DrainHere {
  readonly #p: DrainHereParts;
  #consumer: RingConsumer | undefined;

  constructor(parts: DrainHereParts) {
    this.#p = parts;
  }

  /**
   * Takes the ring's lock on this thread (waiting for the writer thread to let go, up to
   * `deadline`) and writes everything pending, ring then overflow; `afterWrite` runs while the lock
   * is still held. A `final` drain keeps the lock: nothing may write the file after it. Throws a
   * SinkError (ERR_RINGLOG_TIMEOUT) when the lock is not had by the deadline.
   */
  run(deadline: number, final: boolean, afterWrite: () => void): void {
    const { ring, writer, basePath, losses } = this.#p;
    const { ctl } = ring;
    // A writer that died idle, unheard: its descriptors must be marked closed (a tracked writer's
    // go with it) before this thread writes through the shared one.
    writer.poll();
    // A writer that died holding the lock, unheard (this thread is not turning its loop), is found
    // by poll(); a replacement, if one starts, competes for the lock like any writer.
    const writerAlive = (): boolean => {
      writer.poll();
      return writer.alive;
    };
    if (!holdFromOutside(ctl, writerAlive, deadline)) {
      throw new SinkError(`ringlog: flushSync timed out: the writer held "${basePath}" past the deadline`, {
        sink: basePath,
        code: ErrorCode.TIMEOUT,
        droppedEvents: losses.total(),
      });
    }
    try {
      const consumer = this.#ownConsumer();
      heldBatch(ctl, consumer, () => {
        while (consumer.drain(true) === 'waiting-external') {
          // This thread holds every external record until READ_POS passes it, so this is a broken
          // invariant: a barrier that fails says so, where a spin would hang the process.
          if (Date.now() >= deadline) {
            throw new SinkError(`ringlog: an external record of "${basePath}" is missing; the drain stopped before it`, {
              sink: basePath,
              code: ErrorCode.TIMEOUT,
              droppedEvents: losses.total(),
            });
          }
          sleepSync(EXTERNAL_RETRY_MS);
        }
        this.#p.overflow.writeInto(consumer);
        consumer.commit();
        afterWrite();
      });
    } finally {
      if (!final) {
        this.#ownConsumer().writer.closeIfTracked();
        release(ctl);
      }
    }
  }

  /** fsync of what run() wrote; then FSYNC_DONE says `target`. Only with no writer thread alive. */
  fsync(target: number): void {
    try {
      // fsync is per file: a descriptor opened now covers what a closed one wrote. No writer
      // thread is alive here, so the fd is this thread's to open.
      fs.fsyncSync(this.#ownConsumer().writer.currentFd());
    } catch {
      // Not every file supports fsync; the data is written.
    }
    Atomics.store(this.#p.ring.ctl, Ctl.FSYNC_DONE, target);
  }

  #ownConsumer(): RingConsumer {
    if (this.#consumer) return this.#consumer;
    const { ring, keys, basePath, rotateBytes, redact, overflow, losses, janitor } = this.#p;
    // The one time redaction runs on the caller's thread: when this thread drains the ring itself.
    // Same builder, same policy as the writer's.
    this.#consumer = new RingConsumer(
      ring,
      keys,
      basePath,
      rotateBytes,
      {
        external: (id) => overflow.external(id),
        externalDone: () => {},
        fault: (err, lost) => losses.fault(faultInfo(err), lost, false),
        recovered: () => losses.recovered(),
        // This thread rotates when it drains itself.
        rotated: (segment) => janitor?.closed(segment),
      },
      compileRedaction(redact),
    );
    return this.#consumer;
  }
}
