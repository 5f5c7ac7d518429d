// Line visibility latency: how long after the producer's call returns its line can be read from
// the file. One event per paced burst is a probe (see paced.ts); a reader thread (visibility-reader.ts)
// tails the directory and stamps when each probe's line is whole in a file.

import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { AgentEventLike } from '../demo/corpus.js';
import { percentile } from './lib.js';
import type { Probe } from './paced.js';

// After drain() every line is in the file, so the reader sees the rest on its next poll; 2 s only
// matters for a contender whose drain() returned early, which the harness's line count then fails.
const SETTLE_MS = 2_000;
const SETTLE_POLL_MS = 5;

/** What the reader thread gets; the reader module only runs in the worker, so it lives here. */
export interface ReaderData {
  dir: string;
  /** Float64Array over a SharedArrayBuffer: seenAt[k], epoch ms, for probe k; 0 until seen. */
  seen: SharedArrayBuffer;
  /** Int32Array over a SharedArrayBuffer: [0] = STOP asks the reader to stop. */
  control: SharedArrayBuffer;
}

export const STOP = 1;

const now = () => performance.timeOrigin + performance.now();

export interface VisibilityFigures {
  visibilityP50Ms: number | null;
  visibilityP99Ms: number | null;
  visibilityMaxMs: number | null;
  visibilityProbes: number;
  visibilityMissing: number;
}

export class VisibilityProbe implements Probe {
  private n = 0;

  private constructor(
    private readonly worker: Worker,
    private readonly returnedAt: Float64Array,
    private readonly seenAt: Float64Array,
    private readonly control: Int32Array,
  ) {}

  /** Starts the reader on `dir` with room for `capacity` probes; resolves once it is running. */
  static async start(dir: string, capacity: number): Promise<VisibilityProbe> {
    const seen = new SharedArrayBuffer(capacity * Float64Array.BYTES_PER_ELEMENT);
    const control = new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
    const data: ReaderData = { dir, seen, control };
    const worker = new Worker(fileURLToPath(new URL('./visibility-reader.js', import.meta.url)), { workerData: data });
    await once(worker, 'online');
    return new VisibilityProbe(worker, new Float64Array(capacity), new Float64Array(seen), new Int32Array(control));
  }

  tag(event: AgentEventLike): AgentEventLike {
    if (this.n === this.returnedAt.length) return event;
    // t0 makes the line self-describing (when its event was made); the latency itself runs from
    // the call's return, recorded by returned().
    return { ...event, probe: this.n++, t0: now() };
  }

  returned(): void {
    // A probe past capacity was not tagged; its slot stays free.
    if (this.n > 0 && this.returnedAt[this.n - 1] === 0) this.returnedAt[this.n - 1] = now();
  }

  /** Waits for every probe to be seen (or SETTLE_MS), stops the reader and summarises. */
  async stop(): Promise<VisibilityFigures> {
    const deadline = performance.now() + SETTLE_MS;
    while (performance.now() < deadline && this.seenAt.subarray(0, this.n).includes(0)) await sleep(SETTLE_POLL_MS);
    Atomics.store(this.control, 0, STOP);
    Atomics.notify(this.control, 0);
    await once(this.worker, 'exit');
    const lat: number[] = [];
    for (let k = 0; k < this.n; k++) {
      // A synchronous writer's line is readable before its call returns: that is a latency of 0.
      if (this.seenAt[k] !== 0) lat.push(Math.max(0, this.seenAt[k]! - this.returnedAt[k]!));
    }
    const empty = lat.length === 0;
    return {
      visibilityP50Ms: empty ? null : percentile(lat, 50),
      visibilityP99Ms: empty ? null : percentile(lat, 99),
      visibilityMaxMs: empty ? null : Math.max(...lat),
      visibilityProbes: this.n,
      visibilityMissing: this.n - lat.length,
    };
  }
}
