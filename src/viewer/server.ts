// `ringlog view <base>`: a local web viewer of a rotated set. node:http only. The set is scanned
// once into a compact index (log-index.ts) and every answer — summary, histogram, pages, one event,
// time lookup — is computed here, so the browser only ever receives what it shows.
//
// Who may talk to it: the server binds 127.0.0.1 and nothing else, and every request must carry
// the token (32 random hex characters) that is only in the URL printed to whoever started it.
// Other local users can reach the port but cannot guess the token; web pages in the user's own
// browser cannot read cross-origin responses, and a DNS-rebinding page (evil.example resolving to
// 127.0.0.1, which makes the browser treat the viewer as same-origin with it) is refused by the
// Host check, because its requests say `Host: evil.example:<port>`.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { gistOf, isObject } from '../reader/summary.js';
import { findMatches, isFiltered, type ListFilter } from './list-filter.js';
import { LogIndex, listSetFiles } from './log-index.js';
import { APP_CSS, APP_JS, pageHtml } from './page.js';
import { pairOf, type PairAnswer } from './tool-pairs.js';

export interface ViewerOptions {
  /** TCP port on 127.0.0.1; 0 or undefined picks a free one. */
  port?: number;
  /** The secret every request must carry; default 32 hex characters from crypto.randomBytes. */
  token?: string;
  /** Keep indexing what is appended (new lines, new segments); default true. */
  follow?: boolean;
}

export interface Viewer {
  /** The page, token included: `http://127.0.0.1:<port>/?token=<token>`. */
  readonly url: string;
  readonly port: number;
  readonly token: string;
  /** The bound address (always 127.0.0.1), as the server reports it. */
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/** The only interface the viewer ever binds: reachable from this machine alone. */
const HOST = '127.0.0.1';
/** 16 random bytes: 128 bits, beyond guessing by anyone probing the port. */
const TOKEN_BYTES = 16;
/** A given token must be URL-safe (it goes into the URL as is) and long enough not to be guessable. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{16,256}$/;
export const TOKEN_HEADER = 'x-ringlog-token';
/** How often a followed set is checked for growth: twice per page poll, so the page sees news within ~1.5 s. */
const FOLLOW_POLL_MS = 500;
/** How long a replaced index keeps its inflated copies, for requests that were reading through it. */
const OLD_INDEX_GRACE_MS = 10_000;
/** Lines per page at most: a screenful or two, so a page stays a few tens of KB even for big events. */
const MAX_PAGE = 200;
const DEFAULT_PAGE = 50;
/** Buckets per histogram at most: more than a wide screen has pixel columns to show. */
const MAX_BUCKETS = 2000;
const DEFAULT_BUCKETS = 200;
/** Types stacked by name in the histogram; the rest are summed as one "other" series, as a legend of more is unreadable. */
const HISTOGRAM_TYPES = 11;
/** Types listed in the summary (by count); a set with more is summarised by the total. */
const SUMMARY_TYPES = 200;
/** Bytes of each line read for a list preview: a whole line of ordinary events (so its summary can
 *  be made from the parsed event); a longer one is previewed from its start. */
const PREVIEW_READ_BYTES = 16 * 1024;
/** Sessions listed in the summary (by count): the session filter's choices. */
const SUMMARY_SESSIONS = 1000;
/** Characters of preview shown per line in the list. */
const PREVIEW_CHARS = 160;
/** Largest event sent whole: a bigger one is cut (and says so), so one huge event cannot stall the page. */
const MAX_EVENT_BYTES = 16 * 1024 * 1024;

export async function startViewer(basePath: string, options: ViewerOptions = {}): Promise<Viewer> {
  if (typeof basePath !== 'string') throw new TypeError('startViewer: basePath must be a string');
  if (basePath.length === 0) throw new RangeError('startViewer: basePath must not be empty');
  if (typeof options !== 'object' || options === null) throw new TypeError('startViewer: options must be an object');
  const { port = 0, follow = true } = options;
  if (typeof port !== 'number') throw new TypeError('startViewer: options.port must be a number');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError('startViewer: options.port must be an integer from 0 to 65535');
  if (typeof follow !== 'boolean') throw new TypeError('startViewer: options.follow must be a boolean');
  let token: string;
  if (options.token === undefined) token = randomBytes(TOKEN_BYTES).toString('hex');
  else if (typeof options.token !== 'string') throw new TypeError('startViewer: options.token must be a string');
  else if (!TOKEN_PATTERN.test(options.token)) throw new RangeError('startViewer: options.token must be 16 to 256 characters of A-Z a-z 0-9 _ -');
  else token = options.token;

  if ((await listSetFiles(basePath)).length === 0) {
    const err = new Error(`startViewer: no event log at ${basePath} (neither the base file nor numbered segments exist)`) as NodeJS.ErrnoException;
    err.code = 'ENOENT';
    throw err;
  }
  const state = new ViewerState(basePath, await LogIndex.build(basePath), follow);

  const server = http.createServer((req, res) => {
    handle(req, res, state, token, boundPort).catch((err: unknown) => {
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', `internal error: ${(err as Error).message}`);
      else res.destroy();
    });
  });
  let boundPort = 0;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: HOST, port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  boundPort = address.port;
  if (follow) state.startFollowing();

  let closing: Promise<void> | undefined;
  return {
    url: `http://${HOST}:${boundPort}/?token=${token}`,
    port: boundPort,
    token,
    address,
    close(): Promise<void> {
      closing ??= (async () => {
        await state.stop();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          // Idle keep-alive connections of the browser would hold close() open indefinitely.
          server.closeAllConnections();
        });
      })();
      return closing;
    },
  };
}

/** The current index and the follow loop that keeps it up to date (or replaces it). */
class ViewerState {
  /** Bumped when the set was replaced (a new session in truncate mode) and the index rebuilt. */
  generation = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** Last error of the follow loop, shown in the summary (it keeps retrying). */
  lastError: string | undefined;

  constructor(
    readonly basePath: string,
    public index: LogIndex,
    readonly follow: boolean,
  ) {}

  startFollowing(): void {
    const tick = (): void => {
      this.running = this.refresh().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, FOLLOW_POLL_MS).unref();
      });
    };
    this.timer = setTimeout(tick, FOLLOW_POLL_MS).unref();
  }

  private async refresh(): Promise<void> {
    try {
      if (!(await this.index.refresh())) {
        // Build the replacement fully before swapping, so requests meanwhile see the old set whole.
        const fresh = await LogIndex.build(this.basePath);
        if (this.stopped) {
          await fresh.dispose();
          return;
        }
        const old = this.index;
        this.index = fresh;
        this.generation++;
        // Requests already reading through the old index finish first (they take milliseconds).
        setTimeout(() => void old.dispose().catch(() => undefined), OLD_INDEX_GRACE_MS).unref();
      }
      this.lastError = undefined;
    } catch (err) {
      this.lastError = (err as Error).message;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
    await this.index.dispose();
  }
}

// -----------------------------------------------------------------------------------------------
// Requests.

const COMMON_HEADERS: Readonly<Record<string, string>> = {
  // Answers change as the log grows, and the token is in the URL: nothing may be cached.
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  // The URL carries the token; no request the page makes may pass it on as a referrer.
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

/** The page loads its script and style from this server only and talks to nothing else. */
const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

function send(res: http.ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}): void {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  res.writeHead(status, { ...COMMON_HEADERS, 'content-type': type, 'content-length': String(bytes.length), ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : bytes);
}

function sendJson(res: http.ServerResponse, value: unknown): void {
  send(res, 200, 'application/json; charset=utf-8', JSON.stringify(value));
}

class BadRequest extends Error {}

function tokenMatches(given: string | null | undefined, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(token, 'utf8');
  // Constant-time comparison, so response timing does not reveal how much of a guess was right.
  return a.length === b.length && timingSafeEqual(a, b);
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, state: ViewerState, token: string, port: number): Promise<void> {
  // DNS-rebinding defence: a foreign page whose name resolves to 127.0.0.1 reaches this port with
  // its own name in Host; only the names this server is really reached by are accepted.
  const host = (req.headers.host ?? '').toLowerCase();
  if (host !== `${HOST}:${port}` && host !== `localhost:${port}`) {
    send(res, 421, 'text/plain; charset=utf-8', 'misdirected request: unknown Host\n');
    return;
  }
  const url = new URL(req.url ?? '/', `http://${HOST}:${port}`);
  const header = req.headers[TOKEN_HEADER];
  const given = typeof header === 'string' ? header : url.searchParams.get('token');
  if (!tokenMatches(given, token)) {
    send(res, 403, 'text/plain; charset=utf-8', 'forbidden: missing or wrong token\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
    return;
  }
  try {
    switch (url.pathname) {
      case '/':
        send(res, 200, 'text/html; charset=utf-8', pageHtml(token, path.basename(state.basePath)), { 'content-security-policy': PAGE_CSP });
        return;
      case '/app.js':
        send(res, 200, 'text/javascript; charset=utf-8', APP_JS);
        return;
      case '/app.css':
        send(res, 200, 'text/css; charset=utf-8', APP_CSS);
        return;
      case '/api/summary':
        sendJson(res, summary(state));
        return;
      case '/api/histogram':
        sendJson(res, histogram(state.index, url.searchParams));
        return;
      case '/api/events':
        sendJson(res, await events(state.index, url.searchParams));
        return;
      case '/api/event':
        sendJson(res, await oneEvent(state.index, url.searchParams));
        return;
      case '/api/locate':
        sendJson(res, locate(state.index, url.searchParams));
        return;
      case '/api/pair':
        sendJson(res, await pair(state.index, url.searchParams));
        return;
      default:
        send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    }
  } catch (err) {
    if (err instanceof BadRequest) send(res, 400, 'text/plain; charset=utf-8', `${err.message}\n`);
    else throw err;
  }
}

function numberParam(params: URLSearchParams, name: string): number | undefined {
  const raw = params.get(name);
  if (raw === null || raw === '') return undefined;
  const v = Number(raw);
  if (!Number.isFinite(v)) throw new BadRequest(`${name} must be a number`);
  return v;
}

function intParam(params: URLSearchParams, name: string, min: number, max: number): number | undefined {
  const v = numberParam(params, name);
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) throw new BadRequest(`${name} must be an integer from ${min} to ${max}`);
  return v;
}

// -----------------------------------------------------------------------------------------------
// The JSON API.

function summary(state: ViewerState): unknown {
  const ix = state.index;
  const { first, last } = ix.timeRange();
  const order = ix.types.names.map((_, id) => id).sort((a, b) => ix.types.counts[b]! - ix.types.counts[a]!);
  return {
    base: state.basePath,
    // A drop or projection marker is a line but no event: it stands for indexes that have none.
    events: ix.count - ix.markerLines,
    lines: ix.count,
    firstIndex: ix.count > 0 ? ix.indexOf(0) : null,
    lastIndex: ix.count > 0 ? ix.lastIndex : null,
    firstTime: Number.isFinite(first) ? first : null,
    lastTime: Number.isFinite(last) ? last : null,
    droppedIndexes: ix.droppedIndexes,
    projectedIndexes: ix.projectedIndexes,
    typeCount: ix.types.names.length,
    types: order.slice(0, SUMMARY_TYPES).map((id) => ({ name: ix.types.names[id]!, count: ix.types.counts[id]! })),
    sessions: ix.sessions.names
      .map((name, id) => ({ name, count: ix.sessions.counts[id]! }))
      .filter((x, id) => id > 0 && x.count > 0)
      .sort((a, b) => b.count - a.count)
      .slice(0, SUMMARY_SESSIONS),
    segments: ix.segments.map((s) => ({ number: s.number, file: path.basename(s.path), bytes: s.scannedEnd })),
    follow: state.follow,
    generation: state.generation,
    timesSorted: ix.timesSorted,
    scanner: ix.scanner,
    issues: { count: ix.issues, samples: ix.issueSamples },
    error: state.lastError ?? null,
  };
}

interface HistogramAnswer {
  from: number;
  to: number;
  buckets: number;
  bucketMs: number;
  total: number;
  series: { type: string; total: number; counts: number[] }[];
}

function histogram(ix: LogIndex, params: URLSearchParams): HistogramAnswer {
  const buckets = intParam(params, 'buckets', 1, MAX_BUCKETS) ?? DEFAULT_BUCKETS;
  const range = ix.timeRange();
  const from = numberParam(params, 'from') ?? (Number.isFinite(range.first) ? range.first : 0);
  let to = numberParam(params, 'to') ?? (Number.isFinite(range.last) ? range.last : from);
  if (to < from) throw new BadRequest('to must not be before from');
  // Every event in one millisecond (or an empty set) still needs a range that is not empty.
  if (to === from) to = from + 1;
  const width = (to - from) / buckets;

  // Series: the most frequent types by name, the rest summed as one.
  const order = ix.types.names.map((_, id) => id).sort((a, b) => ix.types.counts[b]! - ix.types.counts[a]!);
  const named = order.slice(0, HISTOGRAM_TYPES);
  const other = order.length > HISTOGRAM_TYPES ? named.length : -1;
  const slotOf = new Int32Array(ix.types.names.length).fill(other);
  named.forEach((id, slot) => (slotOf[id] = slot));
  const slots = named.length + (other >= 0 ? 1 : 0);
  const counts = new Uint32Array(slots * buckets);

  // Only the lines in range are visited when times are sorted (binary search for the start).
  const start = ix.timesSorted ? ix.ordinalAtTime(from) : 0;
  let total = 0;
  for (let o = start; o < ix.count; o++) {
    const t = ix.timeOf(o);
    if (t > to) {
      if (ix.timesSorted) break;
      continue;
    }
    if (t < from) continue;
    const b = Math.min(buckets - 1, Math.floor((t - from) / width));
    counts[slotOf[ix.typeIdAt(o)]! * buckets + b]!++;
    total++;
  }
  const series: HistogramAnswer['series'] = [];
  for (let s = 0; s < slots; s++) {
    const row = Array.from(counts.subarray(s * buckets, (s + 1) * buckets));
    const sum = row.reduce((a, c) => a + c, 0);
    if (sum === 0) continue;
    series.push({ type: s < named.length ? ix.types.names[named[s]!]! : 'other', total: sum, counts: row });
  }
  return { from, to, buckets, bucketMs: width, total, series };
}

/**
 * The list text of a line: the event's summary (reader/summary.ts: a message's text, a tool's name
 * and arguments, a result's status), or, for a line too long to parse from its start, what follows
 * the envelope, the type and the session (both shown in their own columns).
 */
function preview(text: string, truncated: boolean): string {
  if (!truncated) {
    try {
      const value: unknown = JSON.parse(text);
      if (isObject(value)) return cutPreview(gistOf(value).summary);
    } catch {
      // Not JSON: shown as it is below.
    }
  }
  const rest = text
    .replace(/^\{"index":[^,]*,"emitted_at_ms":[^,]*,"frame_depth":[^,}]*(,"execution_id":"(?:[^"\\]|\\.)*")?/, '')
    .replace(/^,"type":"(?:[^"\\]|\\.)*"/, '')
    .replace(/^,"session_id":"(?:[^"\\]|\\.)*"/, '')
    .replace(/^,/, '');
  return cutPreview(rest === '}' || rest === '' ? '' : rest.endsWith('}') ? rest.slice(0, -1) : rest);
}

function cutPreview(body: string): string {
  return body.length > PREVIEW_CHARS ? `${body.slice(0, PREVIEW_CHARS - 1)}…` : body;
}

/** The list filter of a request: `types` (comma-separated names), `session`, `q` (text). */
function listFilter(ix: LogIndex, params: URLSearchParams): ListFilter {
  const rawTypes = params.get('types');
  const rawSession = params.get('session');
  const q = params.get('q');
  // A name no line has matches nothing: an id no line has.
  const types = rawTypes === null || rawTypes === '' ? null : new Set(rawTypes.split(',').map((t) => ix.typeIdNamed(t) ?? -1));
  const session = rawSession === null || rawSession === '' ? null : (ix.sessionIdNamed(rawSession) ?? -1);
  const text = q === null || q.trim() === '' ? null : q.toLowerCase();
  return { types, session, text };
}

async function events(ix: LogIndex, params: URLSearchParams): Promise<unknown> {
  const limit = intParam(params, 'limit', 1, MAX_PAGE) ?? DEFAULT_PAGE;
  const around = intParam(params, 'around', 0, Number.MAX_SAFE_INTEGER);
  const fromIndex = intParam(params, 'from', 0, Number.MAX_SAFE_INTEGER);
  const before = intParam(params, 'before', 0, Number.MAX_SAFE_INTEGER);
  const given = [around, fromIndex, before].filter((v) => v !== undefined).length;
  if (given > 1) throw new BadRequest('give one of around, from, before');
  const filter = listFilter(ix, params);
  let ordinals: number[] = [];
  let hasBefore = false;
  let hasAfter = false;
  let focus: number | null = null;
  // False when a text search stopped at its budget before finding what it looked for.
  let searchedAll = true;
  if (ix.count > 0) {
    if (fromIndex !== undefined) {
      const o = ix.ordinalOfIndex(fromIndex);
      // ordinalOfIndex gives the line at, covering or before the index; a page "from" starts at or after it.
      const next = o + 1 < ix.count ? ix.indexOf(o + 1) : ix.lastIndex + 1;
      const start = fromIndex >= next ? o + 1 : o;
      const after = await findMatches(ix, filter, start, 1, limit);
      ordinals = after.ordinals;
      hasBefore = start > 0;
      hasAfter = after.more;
    } else if (before !== undefined) {
      let o = ix.ordinalOfIndex(before);
      if (ix.indexOf(o) >= before) o--;
      const back = await findMatches(ix, filter, o, -1, limit);
      ordinals = back.ordinals.reverse();
      hasBefore = back.more;
      hasAfter = o + 1 < ix.count;
    } else {
      // The line asked for, or the nearest one the filter shows (after it, else before it).
      const o = ix.ordinalOfIndex(around ?? 0);
      const ahead1 = await findMatches(ix, filter, o, 1, 1);
      const back1 = ahead1.ordinals.length > 0 ? null : await findMatches(ix, filter, o - 1, -1, 1);
      const at = ahead1.ordinals[0] ?? back1?.ordinals[0];
      if (at === undefined) searchedAll = !ahead1.cut && !(back1?.cut ?? false);
      else {
        focus = ix.indexOf(at);
        const back = await findMatches(ix, filter, at - 1, -1, Math.floor((limit - 1) / 2));
        const ahead = await findMatches(ix, filter, at + 1, 1, limit - 1 - back.ordinals.length);
        // Near the end, fewer lines after: fill the page from before.
        const extra = limit - 1 - back.ordinals.length - ahead.ordinals.length;
        const more = extra > 0 && back.more ? await findMatches(ix, filter, (back.ordinals.at(-1) ?? at) - 1, -1, extra) : null;
        ordinals = [...(more?.ordinals.reverse() ?? []), ...back.ordinals.reverse(), at, ...ahead.ordinals];
        hasBefore = more !== null ? more.more : back.more;
        hasAfter = ahead.more;
      }
    }
  }
  const lines = await readOrdinals(ix, ordinals, PREVIEW_READ_BYTES);
  return {
    focus,
    total: ix.count,
    filtered: isFiltered(filter),
    searchedAll,
    hasBefore,
    hasAfter,
    events: lines.map((line, k) => {
      const o = ordinals[k]!;
      const sid = ix.sessionIdAt(o);
      return {
        index: ix.indexOf(o),
        time: ix.timeOf(o),
        type: ix.typeOf(o),
        session: sid === 0 ? null : ix.sessions.names[sid]!,
        bytes: line.bytes >= 0 ? line.bytes : null,
        preview: preview(line.text, line.truncated),
      };
    }),
  };
}

/** The lines at these ordinals (ascending), read in runs of consecutive ordinals. */
async function readOrdinals(ix: LogIndex, ordinals: readonly number[], maxBytes: number): Promise<Awaited<ReturnType<LogIndex['readLines']>>> {
  const out: Awaited<ReturnType<LogIndex['readLines']>> = [];
  for (let k = 0; k < ordinals.length; ) {
    let end = k + 1;
    while (end < ordinals.length && ordinals[end] === ordinals[end - 1]! + 1) end++;
    out.push(...(await ix.readLines(ordinals[k]!, ordinals[end - 1]! + 1, maxBytes)));
    k = end;
  }
  return out;
}

async function pair(ix: LogIndex, params: URLSearchParams): Promise<PairAnswer> {
  const index = intParam(params, 'index', 0, Number.MAX_SAFE_INTEGER);
  if (index === undefined) throw new BadRequest('index is required');
  if (ix.count === 0) throw new BadRequest('the set is empty');
  return pairOf(ix, ix.ordinalOfIndex(index));
}

async function oneEvent(ix: LogIndex, params: URLSearchParams): Promise<unknown> {
  const index = intParam(params, 'index', 0, Number.MAX_SAFE_INTEGER);
  if (index === undefined) throw new BadRequest('index is required');
  if (ix.count === 0) throw new BadRequest('the set is empty');
  const o = ix.ordinalOfIndex(index);
  const span = ix.span(o);
  const [line] = await ix.readLines(o, o + 1, MAX_EVENT_BYTES);
  return {
    index: ix.indexOf(o),
    requested: index,
    time: ix.timeOf(o),
    type: ix.typeOf(o),
    segment: span.segment.number,
    file: path.basename(span.segment.path),
    offset: span.offset,
    bytes: line!.bytes >= 0 ? line!.bytes : null,
    truncated: line!.truncated,
    line: line!.text,
  };
}

function locate(ix: LogIndex, params: URLSearchParams): unknown {
  const time = numberParam(params, 'time');
  if (time === undefined) throw new BadRequest('time is required');
  if (ix.count === 0) return { time, index: null, emittedAtMs: null, after: false };
  const o = ix.ordinalAtTime(time);
  // Past the last event: the last one, flagged, so the page can say so.
  const at = Math.min(o, ix.count - 1);
  return { time, index: ix.indexOf(at), emittedAtMs: ix.timeOf(at), after: o >= ix.count };
}
