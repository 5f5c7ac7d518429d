// A producer thread's side of a shared sink ring: a handle of a JsonlEventSink lets any thread
// snapshot its events and place them straight into the sink's ring under the claim lock
// (src/ring/claim.ts): no postMessage, no turn of the owner's loop, and every placed event is in
// the ring at once, so it is written whenever and however the process or this thread ends.

import { EventEncoder, EXTERNAL_FRACTION, Scratch } from '../caller/encoder.js';
import { snapshot, SNAPSHOT_REJECTED } from '../caller/snapshot.js';
import { ErrorCode, SinkError } from '../errors.js';
import { KeyArea } from '../ring/key-areas.js';
import { CLOSED, DROPPED, SharedProducer, type PlaceOptions, type SharedRing } from '../ring/claim.js';
import { reached, ringViews, wakeWriter, type RingViews } from '../ring/memory.js';
import { Ctl } from '../ring/slots.js';
import { waitAsync } from '../ring/wait.js';
import type { AgentEvent, EventContext } from '../types.js';

/** The first scratch buffer of a producer thread; it doubles as needed. */
export const SCRATCH_INITIAL = 16 * 1024;
/** flush() looks at the writer's progress at least this often (it is notified sooner). */
const FLUSH_SLICE_MS = 10;
/** Period of that keep-alive timer: it never needs to fire, only to exist. */
const KEEP_ALIVE_MS = 60_000;

export class DirectProducer {
  readonly #ring: RingViews;
  readonly #svc: Int32Array;
  readonly #producer: SharedProducer;
  readonly #enc: EventEncoder;
  readonly #opts: PlaceOptions;
  readonly #name: string;
  /** Sends one event the ring cannot carry to the owner's thread (the handle's port). */
  readonly #viaOwner: (event: AgentEvent, context: EventContext | undefined) => void;
  #encoding = false;
  readonly #reentrant: { ts: number; event: AgentEvent; context: EventContext | undefined }[] = [];
  /** Index after this producer's last placed event: what flush() waits for. */
  #target = -1;
  #dropped = 0;
  #afterClose = 0;
  #rejected = 0;

  /**
   * `scratch` may be shared by the producers of one thread that never encode at the same time
   * (a connected registry's, which queues re-entrant emits): one buffer instead of one per sink.
   */
  constructor(shared: SharedRing, viaOwner: (event: AgentEvent, context: EventContext | undefined) => void, scratch = new Scratch(SCRATCH_INITIAL)) {
    this.#ring = ringViews(shared.sab);
    this.#svc = new Int32Array(shared.svc);
    this.#producer = new SharedProducer(this.#ring, { svc: this.#svc });
    // Its keys go into this thread's key area of the ring (ring/key-areas.ts), while one is free.
    this.#enc = new EventEncoder(shared.maxDepth, scratch, undefined, undefined, KeyArea.of(this.#ring));
    this.#opts = { wait: shared.overload !== 'drop', timeoutMs: shared.blockTimeoutMs };
    this.#name = shared.name;
    this.#viaOwner = viaOwner;
  }

  /** Everything it placed is in the file (its losses, if any, are still to be told: takeLosses). */
  get written(): boolean {
    return this.#target < 0 || reached(Atomics.load(this.#ring.ctl, Ctl.WRITTEN), this.#target | 0);
  }

  /** The events it could not place since the last flush (dropped, or after close), now told elsewhere. */
  takeLosses(): number {
    const lost = this.#dropped + this.#afterClose;
    this.#dropped = 0;
    this.#afterClose = 0;
    return lost;
  }

  /** Events this thread placed as `event_rejected` markers (they could not be snapshotted). */
  get rejected(): number {
    return this.#rejected;
  }

  handleEvent(event: AgentEvent, context: EventContext | undefined): void {
    const ts = Date.now();
    if (this.#encoding) {
      // From a getter or toJSON of the event being snapshotted: placed right after it.
      this.#reentrant.push({ ts, event, context });
      return;
    }
    this.#encoding = true;
    try {
      this.#one(ts, event, context);
      for (let i = 0; i < this.#reentrant.length; i++) {
        const r = this.#reentrant[i]!;
        this.#one(r.ts, r.event, r.context);
      }
    } finally {
      if (this.#reentrant.length > 0) this.#reentrant.length = 0;
      this.#encoding = false;
    }
  }

  /** Always into scratch: the record takes its index and its room when it is placed. */
  readonly #encodeEvent = (index: number, ts: number, frameDepth: unknown, executionId: string | undefined, body: object): boolean => {
    // writerSlack stays as begin() leaves it: a record this thread makes too big for the ring goes
    // to the owner's thread by postMessage, a snapshot with other semantics (structured clone), so
    // its size must not depend on how far behind the writer happened to be.
    this.#enc.begin();
    this.#enc.event(index, ts, frameDepth, executionId, body);
    return false;
  };

  #one(ts: number, event: AgentEvent, context: EventContext | undefined): void {
    const enc = this.#enc;
    const outcome = snapshot(enc, 0, ts, event, context, this.#encodeEvent);
    // Outside the ring only the owner's thread can arrange with the writer: such a record goes to it.
    if (enc.pos > this.#ring.size / EXTERNAL_FRACTION && outcome !== SNAPSHOT_REJECTED) {
      this.#viaOwner(event, context);
      return;
    }
    if (outcome === SNAPSHOT_REJECTED) this.#rejected++;
    const index = this.#producer.place(enc.scratch.buf, enc.pos, ts, this.#opts);
    if (index === DROPPED) this.#dropped++;
    else if (index === CLOSED) this.#afterClose++;
    else this.#target = index + 1;
  }

  /**
   * Resolves once every event this thread placed is in the file (written by whichever thread
   * holds the sink: its writer, or its owner). Rejects with a SinkError counting the events this
   * thread could not place since the last flush: dropped by the overload policy, or after close().
   */
  async flush(): Promise<void> {
    const { ctl } = this.#ring;
    if (this.#target >= 0) {
      const target = this.#target | 0;
      wakeWriter(this.#svc);
      // Atomics waits do not keep a thread's loop alive: a pending flush must.
      const keepAlive = setInterval(() => {}, KEEP_ALIVE_MS);
      try {
        for (;;) {
          const written = Atomics.load(ctl, Ctl.WRITTEN);
          if (reached(written, target)) break;
          await waitAsync(ctl, Ctl.WRITTEN, written, FLUSH_SLICE_MS);
        }
      } finally {
        clearInterval(keepAlive);
      }
    }
    const dropped = this.#dropped;
    const afterClose = this.#afterClose;
    this.#dropped = 0;
    this.#afterClose = 0;
    if (dropped + afterClose === 0) return;
    const why = dropped > 0 ? `the writer could not keep up (overload policy, from a producer thread)` : 'events were logged after the sink was closed';
    throw new SinkError(`ringlog: ${dropped + afterClose} event(s) lost in "${this.#name}": ${why}`, {
      sink: this.#name,
      code: ErrorCode.DROPPED,
      droppedEvents: dropped + afterClose,
    });
  }
}
