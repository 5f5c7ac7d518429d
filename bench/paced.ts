// The paced phase: a steady load the logger can keep up with, with other timer work on the loop, as
// in an agent host. Measures the caller's cost (per burst and per call), the event-loop delay, and
// hands every burst's last event to the visibility probe.

import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AgentEventLike } from '../demo/corpus.js';
import { median, percentile } from './lib.js';

// The paced load: 20,000 events/s is the steady rate the caller targets are stated at. It arrives
// in bursts because an agent loop emits a turn's events together, not evenly spread.
export const PACED_EVENTS_PER_SEC = 20_000;
// One clock read costs ~40 ns (measured: process.hrtime.bigint on the 2-core VM), so a pair per
// 100 calls adds under 1 ns to each per-event sample, below 1% of the cheapest logger's call.
export const PACED_BURST = 100;
// Follows from the two above: 100 events every 5 ms is 20,000 events/s.
export const PACED_PERIOD_MS = (1000 * PACED_BURST) / PACED_EVENTS_PER_SEC;
// The finest monitorEventLoopDelay accepts: it samples with a libuv timer, and those tick in whole
// milliseconds. A coarser one would blur a stall between two 5 ms bursts into the bursts.
export const LOOP_DELAY_RESOLUTION_MS = 1;
// The other timer work: an agent host also runs heartbeats, progress updates and I/O callbacks.
// 1 ms is the finest setInterval period, so it is the timer most sensitive to a stalled loop.
export const SIDE_TIMER_MS = 1;
// Clock reads taken back to back to price one read; 10,000 gives a stable median in under 1 ms.
const CLOCK_CALIBRATION_READS = 10_000;

/** Lets the visibility probe tag one event per burst and learn when its call returned. */
export interface Probe {
  /** The event to log instead of `event`, carrying the probe's number and a t0 stamp. */
  tag(event: AgentEventLike): AgentEventLike;
  /** Called right after the tagged event's log() returned. */
  returned(): void;
}

export interface PacedResult {
  events: number;
  /** One per burst timed as a whole: its time ÷ its size, in nanoseconds. */
  burstSamples: number[];
  /** One per call, from the bursts timed call by call, clock read subtracted, in nanoseconds. */
  callSamples: Float64Array;
  clockReadNs: number;
  eventsPerSec: number;
  loopDelayP99Ms: number;
  loopDelayMaxMs: number;
}

/** Median cost of one performance.now(), the clock used for the per-call samples. */
function clockReadNs(): number {
  const d = new Float64Array(CLOCK_CALIBRATION_READS);
  let prev = performance.now();
  for (let i = 0; i < d.length; i++) {
    const t = performance.now();
    d[i] = (t - prev) * 1e6;
    prev = t;
  }
  return median(Array.from(d));
}

/**
 * A small JSON status snapshot every SIDE_TIMER_MS: the kind of work other timers do, enough to
 * give the loop something to be late for without being a load of its own (~2 µs, <1% of a core).
 */
function startSideTimer(): () => number {
  const status = { phase: 'paced', ticks: 0, queue: [1, 2, 3], ok: true, note: 'heartbeat' };
  let chars = 0;
  const timer = setInterval(() => {
    status.ticks++;
    chars += JSON.stringify(status).length;
  }, SIDE_TIMER_MS);
  return () => {
    clearInterval(timer);
    return chars;
  };
}

/**
 * Logs `bursts` bursts of PACED_BURST events, one every PACED_PERIOD_MS. Each burst is due at a
 * fixed offset from the start rather than a period after the previous one, so timer lateness does
 * not accumulate and the average rate holds; a burst that is already late runs on the next turn
 * of the loop (setImmediate), still letting the logger's own callbacks run in between.
 *
 * Even bursts are timed as a whole (the headline caller cost, as before); odd bursts are timed call
 * by call, one clock read between calls, for the tail percentiles. Keeping the two apart keeps the
 * per-call clock reads out of the per-burst figure.
 */
/** A paced schedule: `burst` events every `periodMs`. */
export interface Pace {
  readonly burst: number;
  readonly periodMs: number;
}

/** 20,000 events/s in bursts of 100; a slower rate (the huge corpus) in smaller bursts, 200 a second. */
export function paceFor(eventsPerSec: number): Pace {
  const burst = eventsPerSec >= PACED_EVENTS_PER_SEC ? PACED_BURST : Math.max(1, Math.round(eventsPerSec / 200));
  return { burst, periodMs: (1000 * burst) / eventsPerSec };
}

export function pacedPhase(
  log: (event: AgentEventLike, poolIndex: number) => void,
  pool: readonly AgentEventLike[],
  bursts: number,
  probe: Probe | null,
  pace: Pace = { burst: PACED_BURST, periodMs: PACED_PERIOD_MS },
): Promise<PacedResult> {
  const PACED_BURST = pace.burst;
  const PACED_PERIOD_MS = pace.periodMs;
  const clockNs = clockReadNs();
  const burstSamples: number[] = [];
  const callSamples = new Float64Array(Math.floor(bursts / 2) * PACED_BURST);
  let calls = 0;
  const loopDelay = monitorEventLoopDelay({ resolution: LOOP_DELAY_RESOLUTION_MS });
  const last = PACED_BURST - 1;
  return new Promise((resolve) => {
    let burst = 0;
    let j = 0;
    let lastStart = 0;
    const stopSideTimer = startSideTimer();
    loopDelay.enable();
    const start = performance.now();
    const tick = () => {
      lastStart = performance.now();
      // Tagging copies the event, so it happens before the clock starts.
      const probeJ = (j + last) % pool.length;
      const probed = probe ? probe.tag(pool[probeJ]!) : null;
      if (burst % 2 === 0) {
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < PACED_BURST; i++) {
          if (i === last && probed) {
            log(probed, j);
            // One clock read and a store, once per burst: under 1 ns per event of the sample.
            probe!.returned();
          } else log(pool[j]!, j);
          if (++j === pool.length) j = 0;
        }
        const t1 = process.hrtime.bigint();
        burstSamples.push(Number(t1 - t0) / PACED_BURST);
      } else {
        let prev = performance.now();
        for (let i = 0; i < PACED_BURST; i++) {
          if (i === last && probed) log(probed, j);
          else log(pool[j]!, j);
          const t = performance.now();
          callSamples[calls++] = Math.max(0, (t - prev) * 1e6 - clockNs);
          if (i === last && probed) probe!.returned();
          prev = performance.now();
          if (++j === pool.length) j = 0;
        }
      }
      burst++;
      if (burst < bursts) {
        const wait = start + burst * PACED_PERIOD_MS - performance.now();
        if (wait > 0) setTimeout(tick, wait);
        else setImmediate(tick);
        return;
      }
      loopDelay.disable();
      stopSideTimer();
      // The schedule's span ends one period after the last burst starts, as the first one's
      // began at 0; on time, this gives exactly PACED_EVENTS_PER_SEC.
      const spanMs = lastStart - start + PACED_PERIOD_MS;
      resolve({
        events: bursts * PACED_BURST,
        burstSamples,
        callSamples: callSamples.subarray(0, calls),
        clockReadNs: clockNs,
        eventsPerSec: (bursts * PACED_BURST) / (spanMs / 1000),
        // The histogram is in nanoseconds.
        loopDelayP99Ms: loopDelay.percentile(99) / 1e6,
        loopDelayMaxMs: loopDelay.max / 1e6,
      });
    };
    tick();
  });
}

/** The caller-cost figures of a paced run, as they go into the result line. */
export function callerFigures(p: PacedResult) {
  return {
    callerNsPerEvent: median(p.burstSamples),
    callerP99NsPerEvent: percentile(p.burstSamples, 99),
    callerCallP50Ns: percentile(p.callSamples, 50),
    callerCallP99Ns: percentile(p.callSamples, 99),
    callerCallP999Ns: percentile(p.callSamples, 99.9),
    callerCallSamples: p.callSamples.length,
    clockReadNs: p.clockReadNs,
  };
}
