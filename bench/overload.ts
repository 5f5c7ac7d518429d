// The overload phase (`--phase overload`, its own child): a producer that logs faster than any
// writer can write, for a fixed time, while RSS is watched. A logger with bounded memory levels
// off once its buffers are full and holds the producer to the writer's pace; one that queues
// without bound grows for as long as the overload lasts.

import { setImmediate as turn } from 'node:timers/promises';
import type { AgentEventLike } from '../demo/corpus.js';
import type { OverloadResult } from './lib.js';

// The producer yields to the event loop after this many events, as an agent loop does between
// turns; loggers that write from loop callbacks (sonic-boom, winston) need the turns to make any
// progress at all. 1,000 large events are ~1.3 MB, far more than any writer drains in one turn.
const CHUNK = 1_000;
// Growth past this ends the phase early. It is ~30x ringlog's own bound (4 MiB ring + 64 MiB
// overflow queue) and below V8's default heap limit on this machine, so a logger that queues
// strings on the heap is reported as capped instead of crashing the child.
export const OVERLOAD_RSS_CAP_BYTES = 2 * 1024 ** 3;

type GlobalWithGc = typeof globalThis & { gc?: () => void };

export async function overloadPhase(
  log: (event: AgentEventLike, poolIndex: number) => void,
  pool: readonly AgentEventLike[],
  seconds: number,
): Promise<OverloadResult> {
  // The child is started with --expose-gc so that garbage left by building the pool is not
  // counted as the logger's growth.
  (globalThis as GlobalWithGc).gc?.();
  const baseline = process.memoryUsage.rss();
  let peak = baseline;
  let events = 0;
  let capped = 0;
  let j = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  // The peak over the first half: growth after it tells a logger still queueing from one that
  // filled its buffers and levelled off.
  let halfPeak: number | null = null;
  const half = start + (seconds * 1000) / 2;
  while (performance.now() < deadline) {
    if (halfPeak === null && performance.now() >= half) halfPeak = peak;
    for (let i = 0; i < CHUNK; i++) {
      log(pool[j]!, j);
      if (++j === pool.length) j = 0;
    }
    events += CHUNK;
    peak = Math.max(peak, process.memoryUsage.rss());
    if (peak - baseline > OVERLOAD_RSS_CAP_BYTES) {
      capped = 1;
      break;
    }
    await turn();
  }
  const elapsed = (performance.now() - start) / 1000;
  // maxRSS (kilobytes) also catches a peak between two samples.
  peak = Math.max(peak, process.resourceUsage().maxRSS * 1024);
  const above = peak - baseline;
  return {
    // A logger capped before half-time has no second half to measure; its cap says enough.
    overloadSecondHalfGrowthBytes: halfPeak === null ? null : peak - halfPeak,
    overloadBaselineRssBytes: baseline,
    overloadPeakRssAboveBaselineBytes: above,
    overloadSeconds: elapsed,
    overloadEvents: events,
    overloadCapped: capped,
    // MB = 10^6 bytes, as elsewhere in the results.
    overloadGrowthMbPerSec: above / 1e6 / elapsed,
  };
}
