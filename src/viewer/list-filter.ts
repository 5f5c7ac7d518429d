// Which lines the viewer's list shows: all of them, or those of some types, of one session, and
// containing some text. Types and sessions are in the index (one array lookup per line); text needs
// each candidate line read, so a text search looks at a bounded number of lines per request and
// says when it stopped early (the list then offers to go on).

import type { LogIndex } from './log-index.js';

export interface ListFilter {
  /** Type ids to show; null: every type. */
  readonly types: ReadonlySet<number> | null;
  /** Session id to show (0: lines without a session); null: every session. */
  readonly session: number | null;
  /** Lower-cased text a line must contain; null: no text filter. */
  readonly text: string | null;
}

export const NO_FILTER: ListFilter = { types: null, session: null, text: null };

/** Lines a text search reads per request and direction: ~26 MB of the reference corpus, well under a second from the page cache. */
const TEXT_SCAN_LINES = 20_000;
/** Lines read at a time by a text search: few reads, little memory. */
const TEXT_CHUNK = 256;
/** Bytes of each line searched: a line longer than this is searched in its start only. */
const TEXT_BYTES = 64 * 1024;

export function isFiltered(f: ListFilter): boolean {
  return f.types !== null || f.session !== null || f.text !== null;
}

function cheapMatch(ix: LogIndex, f: ListFilter, o: number): boolean {
  if (f.types !== null && !f.types.has(ix.typeIdAt(o))) return false;
  if (f.session !== null && ix.sessionIdAt(o) !== f.session) return false;
  return true;
}

export interface Found {
  /** Matching ordinals, in the order walked (ascending for step 1, descending for -1). */
  readonly ordinals: number[];
  /** Whether lines remain in that direction that were not looked at (the walk stopped at `want` or its budget). */
  readonly more: boolean;
  /** Whether the walk stopped at its budget (a text search), not at `want` or the end. */
  readonly cut: boolean;
}

/** Up to `want` matching ordinals from `from` (inclusive) in direction `step`. */
export async function findMatches(ix: LogIndex, f: ListFilter, from: number, step: 1 | -1, want: number): Promise<Found> {
  const ordinals: number[] = [];
  const inRange = (o: number): boolean => o >= 0 && o < ix.count;
  let o = from;
  if (f.text === null) {
    for (; inRange(o) && ordinals.length < want; o += step) if (cheapMatch(ix, f, o)) ordinals.push(o);
    return { ordinals, more: inRange(o), cut: false };
  }
  let read = 0;
  while (inRange(o) && ordinals.length < want && read < TEXT_SCAN_LINES) {
    const end = step === 1 ? Math.min(ix.count, o + TEXT_CHUNK) : o + 1;
    const start = step === 1 ? o : Math.max(0, o - TEXT_CHUNK + 1);
    const lines = await ix.readLines(start, end, TEXT_BYTES);
    read += end - start;
    for (let k = step === 1 ? 0 : lines.length - 1; k >= 0 && k < lines.length && ordinals.length < want; k += step) {
      const ord = start + k;
      if (cheapMatch(ix, f, ord) && lines[k]!.text.toLowerCase().includes(f.text)) ordinals.push(ord);
      o = ord + step;
    }
    if (ordinals.length < want) o = step === 1 ? end : start - 1;
  }
  return { ordinals, more: inRange(o), cut: inRange(o) && ordinals.length < want };
}
