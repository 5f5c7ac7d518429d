// The per-line work shared by every reader: split a chunk into lines, decode each, check its index
// against the line before, select by range and type. It runs synchronously over a whole chunk and
// hands back a batch, so a reader pays one promise turn per chunk rather than per line; issues
// travel inside the batch, in line order, so they reach the caller between the right records.

import { decodeEnvelope, decodeParsed, parseLine, type Envelope } from './decode.js';
import type { PersistedEvent, RawRecord, ReadIssue, ReadIssueCode, ReadOptions } from './types.js';
import { ReadError } from './types.js';

const NEWLINE = 0x0a;

/** How a reader turns a line into what it yields. */
export interface LineKind<T> {
  /** Envelope of buf[start, end), the parsed value when the kind parses whole lines, or why not. */
  decode(buf: Buffer, start: number, end: number): { env: Envelope; value?: unknown } | string;
  build(env: Envelope, value: unknown, buf: Buffer, start: number, end: number, file: string, line: number): T;
}

export const RECORDS: LineKind<RawRecord> = {
  decode(buf, start, end) {
    const env = decodeEnvelope(buf, start, end);
    return typeof env === 'string' ? env : { env };
  },
  build(env, _value, buf, start, end, file, line) {
    return {
      index: env.index,
      emittedAtMs: env.emittedAtMs,
      type: env.type,
      text: buf.toString('utf8', start, end),
      bytes: end - start + 1,
      file,
      line,
      covers: env.covers,
    };
  },
};

export const EVENTS: LineKind<PersistedEvent> = {
  decode(buf, start, end) {
    const value = parseLine(buf.toString('utf8', start, end));
    const env = decodeParsed(value);
    return typeof env === 'string' ? env : { env, value };
  },
  build(_env, value) {
    return value as PersistedEvent;
  },
};

/** An issue inside a batch. */
export class IssueItem {
  constructor(readonly issue: ReadIssue) {}
}

/**
 * Checks each record's index. Two positions are kept: where the line before ends (`follow`) and
 * where the highest line read so far ends (`high`). A line continuing either is fine: `follow` is
 * a replayed run going on after its first line was reported, `high` the stream resuming after a
 * stray line. Judging a line against `follow` alone would let one bad index move the
 * expectation — one index rewritten backwards would then report every index between it and the
 * truth as missing — so gaps are measured from `high`, which no line moves backwards.
 */
export class IndexChecker {
  private prevIndex = -1;
  private follow: number | undefined;
  private high = 0;

  /**
   * Before the first line: the index it must have. Only the base file's first line has one (0);
   * anywhere else the set's first line starts it, whatever its index (retention removed what came
   * before). Ignored once a line was checked.
   */
  startAt(index: number | undefined): void {
    if (this.prevIndex >= 0) return;
    this.follow = index;
    this.high = index ?? 0;
  }

  check(env: Envelope, file: string, line: number): ReadIssue | undefined {
    const { index } = env;
    const follow = this.follow;
    const high = this.high;
    const prev = this.prevIndex;
    this.prevIndex = index;
    this.follow = index + env.covers;
    this.high = Math.max(high, this.follow);
    if (follow === undefined || index === follow || index === high) return undefined;
    const at = `${file}:${line}`;
    const mk = (code: ReadIssueCode, message: string, expected: number): ReadIssue => ({ code, message: `${at}: ${message}`, file, line, index, expected });
    if (index > high) {
      const missing = index - high === 1 ? `index ${high} is` : `indexes ${high}…${index - 1} are`;
      return mk('ERR_RINGLOG_READ_GAP', `index ${index} where ${high} was expected: ${missing} missing`, high);
    }
    if (index >= prev) return mk('ERR_RINGLOG_READ_DUPLICATE', `index ${index} again (an earlier line already covers it; ${follow} was expected)`, follow);
    return mk('ERR_RINGLOG_READ_ORDER', `index ${index} after ${prev}: out of order (${follow} was expected)`, follow);
  }
}

export interface Selection {
  from: number;
  to: number;
  types: ReadonlySet<string> | null;
}

/** Validates the range and type options (before any I/O, so a bad call fails at once). */
export function selection(opts: ReadOptions): Selection {
  const bound = (name: string, v: number | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== 'number') throw new TypeError(`${name} must be a number`);
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${v}`);
    return v;
  };
  const from = bound('fromIndex', opts.fromIndex, 0);
  const to = bound('toIndex', opts.toIndex, Number.POSITIVE_INFINITY);
  let types: Set<string> | null = null;
  if (opts.types !== undefined) {
    if (!Array.isArray(opts.types) || opts.types.some((t) => typeof t !== 'string')) throw new TypeError('types must be an array of strings');
    types = new Set(opts.types);
  }
  if (opts.issues !== undefined && opts.issues !== 'throw' && opts.issues !== 'warn') throw new RangeError(`issues must be 'throw' or 'warn'`);
  if (opts.onIssue !== undefined && typeof opts.onIssue !== 'function') throw new TypeError('onIssue must be a function');
  if (opts.onTornTail !== undefined && typeof opts.onTornTail !== 'function') throw new TypeError('onTornTail must be a function');
  return { from, to, types };
}

/** What the caller does with an issue: throw it, or hand it on. */
export function issueSink(opts: ReadOptions): (issue: ReadIssue) => void {
  if ((opts.issues ?? 'throw') === 'throw') {
    return (issue) => {
      throw ReadError.fromIssue(issue);
    };
  }
  return opts.onIssue ?? ((issue) => process.emitWarning(issue.message, { type: 'RinglogReadWarning', code: issue.code }));
}

/** Splits and checks the lines of one source (a segment or a stream). */
export class LineProcessor<T> {
  /** Line number of the last complete line seen in the current file. */
  line = 0;
  /** Set once a record past `to` was seen: nothing further can be selected. */
  done = false;
  file = '';

  constructor(
    private readonly kind: LineKind<T>,
    private readonly sel: Selection,
    private readonly checker: IndexChecker,
  ) {}

  /**
   * Processes the complete lines of data[0, …) into `out`; returns the offset just past the last
   * complete line (the rest is a line still being cut). Stops early when `done` becomes true.
   */
  chunk(data: Buffer, out: (T | IssueItem)[]): number {
    const { kind, sel, checker, file } = this;
    let pos = 0;
    for (;;) {
      const nl = data.indexOf(NEWLINE, pos);
      if (nl < 0) return pos;
      const start = pos;
      pos = nl + 1;
      const line = ++this.line;
      const d = kind.decode(data, start, nl);
      if (typeof d === 'string') {
        out.push(new IssueItem({ code: 'ERR_RINGLOG_READ_PARSE', message: `${file}:${line}: ${d}`, file, line }));
        continue;
      }
      const env = d.env;
      const issue = checker.check(env, file, line);
      if (issue) out.push(new IssueItem(issue));
      if (env.index > sel.to) {
        this.done = true;
        return pos;
      }
      if (env.index + env.covers - 1 < sel.from) continue;
      if (sel.types !== null && (env.type === undefined || !sel.types.has(env.type))) continue;
      out.push(kind.build(env, d.value, data, start, nl, file, line));
    }
  }

  /** The issue for an unterminated line that is not allowed to be one. */
  torn(bytes: number): IssueItem {
    const line = this.line + 1;
    return new IssueItem({
      code: 'ERR_RINGLOG_READ_TORN',
      message: `${this.file}:${line}: torn line (${bytes} bytes without a newline) where more data follows`,
      file: this.file,
      line,
    });
  }
}
