// Parsers of option values for commander: a bad value is a usage error (exit 2), reported by
// commander with the option's name.

import { InvalidArgumentError } from 'commander';

/** An integer option of at least `min`; decimal digits only, so `1e3`, `0x10` or `-1` are refused. */
export function intOption(min: number): (value: string) => number {
  return (value) => {
    const n = /^\d+$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(min === 0 ? 'expected a non-negative integer' : `expected an integer of at least ${min}`);
    return n;
  };
}

/** A repeatable option: each occurrence adds to the list. */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

/** A TCP port, 0 to let the system pick one. */
export function portOption(value: string): number {
  const n = intOption(0)(value);
  // 65535: the largest port number TCP has (16 bits).
  if (n > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return n;
}
