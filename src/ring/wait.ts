// Wait primitives. Blocking waits are for the writer's retries and for exit paths, where blocking
// is the point; everything the caller's loop awaits goes through waitAsync.

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` (Atomics.wait on a slot nobody notifies). */
export function sleepSync(ms: number): void {
  if (ms > 0) Atomics.wait(sleeper, 0, 0, ms);
}

/** Blocks until `ctl[slot]` differs from `expected` or `ms` passes. */
export function waitSync(ctl: Int32Array, slot: number, expected: number, ms: number): void {
  if (ms > 0) Atomics.wait(ctl, slot, expected, ms);
}

/** Resolves when `ctl[slot]` differs from `expected`, is notified, or `ms` passes. */
export function waitAsync(ctl: Int32Array, slot: number, expected: number, ms: number): Promise<unknown> {
  const r = Atomics.waitAsync(ctl, slot, expected, ms);
  return r.async ? r.value : Promise.resolve(r.value);
}
