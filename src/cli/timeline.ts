// Events over time in one pass and bounded memory, whatever the length of the set: a histogram of
// fine buckets whose width doubles (merging pairs) whenever a timestamp falls past its end, cut
// into a few display buckets at the end.

/**
 * Fine buckets. After any doubling the span fills at least half of them, so each of 20 display
 * buckets gathers at least ~100 fine ones and a fine bucket straddling a display boundary shifts
 * at most ~1% of a display bucket's count. 4,096 doubles are 32 KiB.
 */
const FINE_BUCKETS = 4096;
/** Timestamps are whole milliseconds, so no finer width can tell events apart. */
const INITIAL_WIDTH_MS = 1;

export interface TimelineBucket {
  /** Start of the bucket, ms since the epoch (fractional for a width that is not whole ms). */
  startMs: number;
  events: number;
  /** events / bucket width. */
  perSecond: number;
}

export interface TimelineResult {
  bucketMs: number;
  buckets: TimelineBucket[];
}

export class Timeline {
  private readonly fine = new Float64Array(FINE_BUCKETS);
  private origin: number | null = null;
  private width = INITIAL_WIDTH_MS;
  private last = -Infinity;

  /** Counts one event at `ms`. One earlier than the first counted lands in the first bucket. */
  add(ms: number): void {
    if (this.origin === null) this.origin = ms;
    const offset = Math.max(0, ms - this.origin);
    while (offset >= this.width * FINE_BUCKETS) this.coarsen();
    this.fine[Math.floor(offset / this.width)]! += 1;
    if (ms > this.last) this.last = ms;
  }

  private coarsen(): void {
    const f = this.fine;
    for (let i = 0; i < FINE_BUCKETS / 2; i++) f[i] = f[2 * i]! + f[2 * i + 1]!;
    f.fill(0, FINE_BUCKETS / 2);
    this.width *= 2;
  }

  /** `count` buckets spanning the first to the last timestamp; one bucket when they coincide. */
  result(count: number): TimelineResult {
    if (this.origin === null) return { bucketMs: 0, buckets: [] };
    const span = this.last - this.origin;
    if (span <= 0) {
      const total = this.fine.reduce((a, b) => a + b, 0);
      return { bucketMs: 0, buckets: [{ startMs: this.origin, events: total, perSecond: 0 }] };
    }
    // The last timestamp belongs to the last bucket, hence the span plus one millisecond.
    const bucketMs = (span + INITIAL_WIDTH_MS) / count;
    const events = new Array<number>(count).fill(0);
    for (let i = 0; i < FINE_BUCKETS; i++) {
      const n = this.fine[i]!;
      if (n === 0) continue;
      // At the initial width a fine bucket is one exact millisecond; wider ones are assigned by
      // their middle, kept within the range of real timestamps.
      const middle = this.width === INITIAL_WIDTH_MS ? i : Math.min((i + 0.5) * this.width, span);
      const b = Math.min(count - 1, Math.floor(middle / bucketMs));
      events[b]! += n;
    }
    return {
      bucketMs,
      buckets: events.map((n, b) => ({ startMs: this.origin! + b * bucketMs, events: n, perSecond: n / (bucketMs / 1000) })),
    };
  }
}
