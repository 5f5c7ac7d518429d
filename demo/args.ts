// Command-line number parsing shared by the demo and the benchmarks.

export function parsePositiveInt(raw: string | undefined, flag: string, fallback: number): number {
  if (raw === undefined) return fallback;
  // Accept 1_000_000 and 1e6 as well as 1000000: these are typed by hand on the command line.
  const n = Number(raw.replaceAll('_', ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(raw)}`);
  return n;
}
