// The event filters `cat`, `tail`, `stats` and `pretty` share: a time window (--since, --until), the
// types (--type), top-level field values (--where key=value) and a text match (--grep). A record
// passes when it passes every filter given. Parsing checks the values: a bad one is a usage error.

import type { Command } from 'commander';
import type { RawRecord } from '../reader/index.js';
import { collect } from './args.js';
import { CliError, EXIT_USAGE, warn } from './output.js';
import { TIME_KEYS } from '../reader/summary.js';

export interface FilterOptions {
  since?: string;
  until?: string;
  type?: string[];
  where?: string[];
  grep?: string;
}

export interface Filter {
  /** Whether any filter was given (none: every record passes, nothing is parsed). */
  readonly active: boolean;
  readonly types: ReadonlySet<string> | null;
  /** Whether the record passes; parses its text only for --where. */
  test(rec: RawRecord): boolean;
  /** After the run: each --type that matched no record, with the types that were seen. */
  unmatchedTypes(): { missing: string[]; seen: string[] };
}

/** Units of a duration (`90s`, `10m`, `2h`, `1d`, `500ms`), in milliseconds. */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * A point in time: an ISO date-time (or date), or a duration before `now` (`10m` = ten minutes
 * ago). A bare number is refused: seconds or milliseconds would be a guess.
 */
export function parseTime(option: string, value: string, now: number): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(value.trim());
  if (m) return now - Number(m[1]) * UNIT_MS[m[2]!]!;
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return t;
  }
  throw new CliError(`${option} ${JSON.stringify(value)}: expected an ISO time (2026-12-03T10:00:00Z, 2026-12-03) or a duration ago (90s, 10m, 2h, 1d, 500ms)`, EXIT_USAGE);
}

function parseWhere(items: readonly string[]): [string, string][] {
  return items.map((item) => {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new CliError(`--where ${JSON.stringify(item)}: expected key=value (a top-level field, e.g. session_id=s1)`, EXIT_USAGE);
    return [item.slice(0, eq), item.slice(eq + 1)];
  });
}

/** A field's value as --where compares it: strings as they are, numbers, booleans and null as JSON writes them. */
function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return undefined;
}

export function makeFilter(o: FilterOptions, now = Date.now()): Filter {
  const since = o.since === undefined ? -Infinity : parseTime('--since', o.since, now);
  const until = o.until === undefined ? Infinity : parseTime('--until', o.until, now);
  if (since > until) throw new CliError(`--since is after --until: nothing can match`, EXIT_USAGE);
  const types = o.type !== undefined && o.type.length > 0 ? new Set(o.type) : null;
  const where = parseWhere(o.where ?? []);
  const grep = o.grep;
  if (grep === '') throw new CliError('--grep needs some text', EXIT_USAGE);
  const timed = o.since !== undefined || o.until !== undefined;
  const active = timed || types !== null || where.length > 0 || grep !== undefined;
  const seen = new Set<string>();
  const matched = new Set<string>();
  return {
    active,
    types,
    test(rec) {
      if (rec.type !== undefined) seen.add(rec.type);
      if (!active) return true;
      if (types !== null && (rec.type === undefined || !types.has(rec.type))) return false;
      if (timed && !(rec.emittedAtMs >= since && rec.emittedAtMs <= until)) return false;
      if (grep !== undefined && !rec.text.includes(grep)) return false;
      if (where.length > 0) {
        let value: unknown;
        try {
          value = JSON.parse(rec.text);
        } catch {
          return false;
        }
        if (typeof value !== 'object' || value === null) return false;
        const fields = value as Record<string, unknown>;
        for (const [k, v] of where) if (asText(fields[k]) !== v) return false;
      }
      if (rec.type !== undefined) matched.add(rec.type);
      return true;
    },
    unmatchedTypes() {
      return { missing: types === null ? [] : [...types].filter((t) => !matched.has(t)), seen: [...seen].sort() };
    },
  };
}

/** Adds the shared filter options to a command. */
export function addFilterOptions(cmd: Command): Command {
  return cmd
    .option('--type <T>', 'only events of type T (repeat for more types)', collect)
    .option('--since <T>', 'only events at or after T: an ISO time, or a duration ago (10m, 2h, 1d)')
    .option('--until <T>', 'only events at or before T (same forms as --since)')
    .option('--where <key=value>', 'only events whose top-level field key equals value, e.g. session_id=s1 (repeat: all must hold)', collect)
    .option('--grep <text>', 'only events whose line contains text');
}

/**
 * A record of a line known only as text (tail's backward reads, other tools' NDJSON on stdin): the
 * envelope when it has one, else what the line's own fields say (type or kind; the first time field
 * of TIME_KEYS, a number of ms or a date string).
 */
export function recordOfText(text: string, file = '-', line = 0): RawRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const rec: RawRecord = { index: NaN, emittedAtMs: NaN, type: undefined, text, bytes: Buffer.byteLength(text) + 1, file, line, covers: 1 };
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return rec;
  const o = v as Record<string, unknown>;
  if (typeof o.index === 'number') rec.index = o.index;
  else if (typeof o.id === 'number') rec.index = o.id;
  rec.type = typeof o.type === 'string' ? o.type : typeof o.kind === 'string' ? o.kind : undefined;
  for (const k of TIME_KEYS) {
    const t = o[k];
    const ms = typeof t === 'number' ? t : typeof t === 'string' ? Date.parse(t) : NaN;
    if (!Number.isNaN(ms)) {
      rec.emittedAtMs = ms;
      break;
    }
  }
  return rec;
}

/** Says on stderr which --type matched nothing, and which types there were. */
export function reportUnmatchedTypes(filter: Filter): void {
  const { missing, seen } = filter.unmatchedTypes();
  for (const t of missing) warn(`--type ${JSON.stringify(t)} matched no event (types seen: ${seen.length === 0 ? 'none' : seen.join(', ')})`);
}
