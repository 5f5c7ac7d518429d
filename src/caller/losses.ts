// What a sink has lost and why, in one place: the counts kept on the caller's thread, the ones
// the writer and other producers keep in the ring's slots, the first write fault and the reason
// of the first overload drop; onError hears each fault streak once; flush() and close() throw
// the error built here.

import { ErrorCode, SinkError, type FaultInfo } from '../errors.js';
import type { RingViews } from '../ring/memory.js';
import { Ctl, Num } from '../ring/slots.js';
import type { JsonlEventSinkOptions } from './options.js';

/** How long a flush waits for the details of faults the writer has counted (they come by message). */
const FAULT_MESSAGE_WAIT_MS = 1000;

export class Losses {
  readonly #ring: RingViews;
  readonly #sink: string;
  readonly #overload: string;
  readonly #onError: JsonlEventSinkOptions['onError'];

  /** Events dropped on this thread by the overload policy. */
  policyDropped = 0;
  /** handleEvent calls after close(): counted as dropped, no index spent. */
  afterClose = 0;
  /** Events written as `event_rejected` (their snapshot failed): written, so not lost. */
  rejected = 0;
  #dropReason: string | undefined;
  #firstFault: FaultInfo | undefined;
  /** Set from a fault until a write succeeds again: onError hears each streak once. */
  #faultStreak = false;
  #faults = 0;
  #faultMessages = 0;

  constructor(ring: RingViews, sink: string, overload: string, onError: JsonlEventSinkOptions['onError']) {
    this.#ring = ring;
    this.#sink = sink;
    this.#overload = overload;
    this.#onError = onError;
  }

  get faults(): number {
    return this.#faults;
  }

  /** Every event lost so far, by any thread. */
  total(): number {
    const { ctl, num } = this.#ring;
    return this.policyDropped + this.afterClose + num[Num.LOST]! + Atomics.load(ctl, Ctl.CLAIM_DROPPED) + Atomics.load(ctl, Ctl.PRODUCER_LOST);
  }

  /** Remembers why the first event found no room (asked only for the first). */
  noRoom(why: () => string): void {
    this.#dropReason ??= why();
  }

  /** A write fault (counted by the writer), told by message (`fromWorker`) or by this thread's own drain. */
  fault(fault: FaultInfo, lost: number, fromWorker: boolean): void {
    if (fromWorker) this.#faultMessages++;
    this.#faults++;
    this.#firstFault ??= fault;
    if (this.#faultStreak) return;
    this.#faultStreak = true;
    this.report(
      new SinkError(`ringlog: write to "${this.#sink}" failed (${fault.code}: ${fault.message}); ${lost} event(s) lost`, {
        sink: this.#sink,
        code: ErrorCode.WRITE,
        droppedEvents: this.total(),
        cause: fault,
      }),
    );
  }

  /** A write succeeded after a fault: the next fault is a new streak. */
  recovered(): void {
    this.#faultStreak = false;
  }

  /** Hands an asynchronous failure to onError; an exception from onError itself surfaces uncaught. */
  report(err: SinkError): void {
    const onError = this.#onError;
    if (!onError) return;
    try {
      onError(err);
    } catch (thrown) {
      queueMicrotask(() => {
        throw thrown;
      });
    }
  }

  /** A SinkError carrying what went wrong first, with the total, once anything was lost. */
  throwIfLost(): void {
    const lost = this.total();
    if (lost === 0) return;
    const cause = this.#firstFault;
    const producerLost = Atomics.load(this.#ring.ctl, Ctl.PRODUCER_LOST);
    const why = cause
      ? `write failed (${cause.code}: ${cause.message})`
      : producerLost > 0
        ? `${producerLost} of them taken by a producer thread that died before it wrote them`
        : this.afterClose > 0 && this.policyDropped === 0
          ? 'events were logged after close()'
          : (this.#dropReason ?? `the writer could not keep up (overload policy '${this.#overload}')`);
    throw new SinkError(`ringlog: ${lost} event(s) lost in "${this.#sink}": ${why}`, {
      sink: this.#sink,
      code: cause ? ErrorCode.WRITE : ErrorCode.DROPPED,
      droppedEvents: lost,
      cause,
    });
  }

  /** Fault details travel by message: waits (briefly) until every fault the writer counted has arrived. */
  async faultMessagesArrived(writerAlive: () => boolean): Promise<void> {
    const { ctl } = this.#ring;
    const deadline = Date.now() + FAULT_MESSAGE_WAIT_MS;
    while (this.#faultMessages < Atomics.load(ctl, Ctl.ERRORS) && Date.now() < deadline && writerAlive()) {
      await new Promise((r) => setImmediate(r));
    }
  }
}
