// The SQLite worker: owns the one better-sqlite3 connection of a SqliteEventLog and runs every
// statement, so the caller's event loop never waits on a lock, a page read or an fsync. Requests are
// handled one at a time in the order they arrive (better-sqlite3 is synchronous, and this thread has
// nothing else to do), which is what keeps a log's operations in call order.

import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import type BetterSqlite3 from 'better-sqlite3';
import { chainEvent, GENESIS, hashOfJson } from './provenance.js';
import type { AppendItem, SqliteReply, SqliteRequest, SqliteResult, SqliteWorkerInit, StoredRow, WorkerFailure } from './sqlite-messages.js';

/** Bumped whenever the tables below change shape; 0 is SQLite's value for a database nobody set up. */
const SCHEMA_VERSION = 1;

// events is an ordinary rowid table (its primary key becomes a separate index) rather than WITHOUT
// ROWID: SQLite advises WITHOUT ROWID only for rows under about 1/20 of a page, and event payloads
// (tool output, model turns) are routinely larger. topics keeps the last id ever assigned, so ids
// stay unique after compaction deletes every row of a topic. topics and cursors have small rows.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  topic TEXT NOT NULL,
  id INTEGER NOT NULL,
  kind TEXT NOT NULL,
  payload TEXT NOT NULL,
  headers TEXT NOT NULL,
  occurred_at_ms INTEGER NOT NULL,
  PRIMARY KEY (topic, id)
);
CREATE TABLE IF NOT EXISTS topics (
  topic TEXT PRIMARY KEY NOT NULL,
  latest INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cursors (
  topic TEXT NOT NULL,
  consumer TEXT NOT NULL,
  id INTEGER NOT NULL,
  PRIMARY KEY (topic, consumer)
) WITHOUT ROWID;
`;

type Database = BetterSqlite3.Database;
type Statement = BetterSqlite3.Statement;

interface Statements {
  readonly latest: Statement;
  readonly insert: Statement;
  readonly setLatest: Statement;
  readonly read: Statement;
  readonly ack: Statement;
  readonly cursor: Statement;
  readonly remove: Statement;
  readonly firstId: Statement;
  readonly topics: Statement;
  readonly headersOf: Statement;
}

const port = parentPort!;
const init = workerData as SqliteWorkerInit;

function post(msg: SqliteReply): void {
  port.postMessage(msg);
}

function failure(err: unknown): WorkerFailure {
  const e = err as { code?: unknown; message?: unknown } | null;
  const code = e !== null && typeof e === 'object' && typeof e.code === 'string' ? e.code : 'UNKNOWN';
  const message = e !== null && typeof e === 'object' && typeof e.message === 'string' ? e.message : String(err);
  return { code, message };
}

class SchemaTooNew extends Error {
  readonly code = 'RINGLOG_SCHEMA_TOO_NEW';
}

function checkVersion(db: Database): number {
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > SCHEMA_VERSION) {
    throw new SchemaTooNew(`${init.path} has schema version ${version}; this ringlog understands up to ${SCHEMA_VERSION} (written by a newer ringlog?)`);
  }
  return version;
}

function prepare(db: Database): Statements {
  return {
    latest: db.prepare('SELECT latest FROM topics WHERE topic = ?').pluck(),
    insert: db.prepare('INSERT INTO events (topic, id, kind, payload, headers, occurred_at_ms) VALUES (?, ?, ?, ?, ?, ?)'),
    setLatest: db.prepare('INSERT INTO topics (topic, latest) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET latest = excluded.latest'),
    read: db.prepare('SELECT id, kind, payload, headers, occurred_at_ms AS occurredAtMs FROM events WHERE topic = ? AND id > ? ORDER BY id LIMIT ?'),
    // max(): an ack never moves a cursor back, even when two processes ack out of order.
    ack: db.prepare('INSERT INTO cursors (topic, consumer, id) VALUES (?, ?, ?) ON CONFLICT (topic, consumer) DO UPDATE SET id = max(id, excluded.id)'),
    cursor: db.prepare('SELECT id FROM cursors WHERE topic = ? AND consumer = ?').pluck(),
    remove: db.prepare('DELETE FROM events WHERE topic = ? AND id <= ?'),
    firstId: db.prepare('SELECT min(id) FROM events WHERE topic = ?').pluck(),
    // Byte order (BINARY collation), as JavaScript's sort() orders the other backends' ASCII names.
    topics: db.prepare('SELECT topic FROM topics WHERE latest > 0 ORDER BY topic').pluck(),
    headersOf: db.prepare('SELECT headers FROM events WHERE topic = ? AND id = ?').pluck(),
  };
}

/** Loads better-sqlite3 and opens the database; reports failure (and returns undefined) itself. */
function open(): Database | undefined {
  let Sqlite: typeof BetterSqlite3;
  try {
    // By the absolute path the owner resolved: this thread runs from embedded source text, with no
    // module location of its own to resolve a package from.
    Sqlite = createRequire(init.betterSqlite3)(init.betterSqlite3) as typeof BetterSqlite3;
  } catch (err) {
    // The caller checked that the package resolves; this catches one that resolves but does not
    // load (native binding missing or built for another Node ABI, or a loader hook refusing it).
    post({ type: 'openFailed', unavailable: true, error: failure(err) });
    return undefined;
  }
  let conn: Database | undefined;
  try {
    if (!init.readOnly) fs.mkdirSync(path.dirname(init.path), { recursive: true });
    conn = new Sqlite(init.path, { readonly: init.readOnly, fileMustExist: init.readOnly, timeout: init.busyTimeoutMs });
    // Set explicitly so the value does not depend on how better-sqlite3 maps its option.
    conn.pragma(`busy_timeout = ${init.busyTimeoutMs}`);
    if (init.readOnly) {
      // A database nobody has appended to yet has no tables; reads report "empty" until a writer
      // creates them (see statements()).
      if (checkVersion(conn) === SCHEMA_VERSION) stmts = prepare(conn);
      return conn;
    }
    const c = conn;
    // Two processes opening a new database at the same moment: switching it to WAL and creating
    // the schema can answer SQLITE_BUSY without going through the busy handler (a journal-mode
    // change needs the database to itself), so this part retries on its own within the timeout.
    retryBusy(init.busyTimeoutMs, () => setUp(c, init.path));
    stmts = prepare(c);
    return c;
  } catch (err) {
    try {
      conn?.close();
    } catch {
      // The open already failed; that failure is the one to report.
    }
    post({ type: 'openFailed', unavailable: false, error: failure(err) });
    return undefined;
  }
}

/** WAL, durability level and schema of a read-write connection. */
function setUp(conn: Database, file: string): void {
  const mode = conn.pragma('journal_mode = WAL', { simple: true }) as string;
  if (mode !== 'wal') throw Object.assign(new Error(`${file}: SQLite refused WAL mode (journal_mode stayed ${mode}; network file systems cannot use WAL)`), { code: 'RINGLOG_NO_WAL' });
  // NORMAL: in WAL mode a commit is then atomic and survives a crash of this process; only an OS
  // crash or power loss can undo the last commits, because the WAL is fsynced at checkpoints
  // rather than at every commit. flush() is the durability point (it checkpoints, or fsyncs the
  // WAL itself), which keeps appends free of an fsync each.
  conn.pragma('synchronous = NORMAL');
  // IMMEDIATE: two processes creating the same new database serialize here instead of both
  // seeing version 0 and racing.
  conn.transaction(() => {
    if (checkVersion(conn) === 0) {
      conn.exec(SCHEMA);
      conn.pragma(`user_version = ${SCHEMA_VERSION}`);
    }
  }).immediate();
}

/** Pause between attempts of retryBusy: short against a peer's setup, which takes milliseconds. */
const BUSY_RETRY_MS = 10;
const napCell = new Int32Array(new SharedArrayBuffer(4));

/** Runs `fn` again while it fails with SQLITE_BUSY*, until `timeoutMs` have passed. */
function retryBusy(timeoutMs: number, fn: () => void): void {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return fn();
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw err;
      // This thread has nothing else to do until the database is set up: a blocking nap is fine here.
      Atomics.wait(napCell, 0, 0, BUSY_RETRY_MS);
    }
  }
}

let db: Database;
let stmts: Statements | undefined;
const opened = open();
// On failure no 'message' listener is added, so nothing keeps this thread alive: it ends.
if (opened !== undefined) serve(opened);

/** The prepared statements, or undefined while a read-only log looks at a database without tables. */
function statements(): Statements | undefined {
  if (stmts === undefined && checkVersion(db) === SCHEMA_VERSION) stmts = prepare(db);
  return stmts;
}

/** Stores `e` as record `id` of its topic after record `last`; returns its headers as stored. */
type Insert = (e: AppendItem, id: number, last: number) => string;

/**
 * An IMMEDIATE transaction that inserts events: it takes the write lock before the ids are read,
 * so another process sharing the database waits (busy_timeout) instead of assigning the same id.
 * With provenance, `insert` chains each record, and the chain tips it made are this connection's
 * only once the transaction has committed (a rolled-back one must not leave its hashes behind).
 */
function writeTransaction(s: Statements, body: (insert: Insert) => SqliteResult): SqliteResult {
  const newTips = new Map<string, { id: number; hash: string }>();
  // Made before the transaction: a rollback must not take the table from under its statements.
  if (init.provenance) chainTipTable();
  const insert: Insert = (e, id, last) => {
    const stored = init.provenance ? chained(s, e, id, last, newTips) : e.headersJson;
    s.insert.run(e.topic, id, e.kind, e.payloadJson, stored, e.occurredAtMs);
    return stored;
  };
  const result = db.transaction(() => body(insert)).immediate();
  for (const [topic, tip] of newTips) tips.set(topic, tip);
  return result;
}

function append(s: Statements, events: readonly AppendItem[]): SqliteResult {
  return writeTransaction(s, (insert) => {
    const next = new Map<string, number>();
    const ids: number[] = [];
    const headers: string[] = [];
    for (const e of events) {
      let last = next.get(e.topic);
      if (last === undefined) last = (s.latest.get(e.topic) as number | undefined) ?? 0;
      const id = last + 1;
      headers.push(insert(e, id, last));
      next.set(e.topic, id);
      ids.push(id);
    }
    for (const [topic, latest] of next) s.setLatest.run(topic, latest);
    return init.provenance ? { type: 'append', ids, headers } : { type: 'append', ids };
  });
}

/** Provenance: the chain's tip per topic as this connection last wrote it (id and record_hash). */
const tips = new Map<string, { id: number; hash: string }>();

/**
 * The chain's tip per topic in the database (what compaction cannot remove), in a table of its own
 * made on first use: a database written without provenance, or by an older ringlog, needs no
 * schema change for it.
 */
let chainTipStatements: { get: Statement; set: Statement } | undefined;

function chainTipTable(): { get: Statement; set: Statement } {
  if (chainTipStatements === undefined) {
    db.exec('CREATE TABLE IF NOT EXISTS chain_tips (topic TEXT PRIMARY KEY, hash TEXT NOT NULL) WITHOUT ROWID');
    chainTipStatements = {
      get: db.prepare('SELECT hash FROM chain_tips WHERE topic = ?').pluck(),
      set: db.prepare('INSERT INTO chain_tips (topic, hash) VALUES (?, ?) ON CONFLICT (topic) DO UPDATE SET hash = excluded.hash'),
    };
  }
  return chainTipStatements;
}

/**
 * Inside the append's transaction: the headers `e` is stored with as record `id` of its topic,
 * chained to record `last` (its record_hash known when this connection wrote it, else read from
 * its row, or from chain_tips when compaction removed it). The new tip goes into `newTips`, which
 * the caller makes the tips once the transaction has committed.
 */
function chained(s: Statements, e: AppendItem, id: number, last: number, newTips: Map<string, { id: number; hash: string }>): string {
  let prev = GENESIS;
  const known = newTips.get(e.topic) ?? tips.get(e.topic);
  if (known !== undefined && known.id === last) prev = known.hash;
  else if (last > 0) {
    const row = s.headersOf.get(e.topic, last) as string | undefined;
    prev = row !== undefined ? hashOfJson(row) : ((chainTipTable().get.get(e.topic) as string | undefined) ?? GENESIS);
  }
  const c = chainEvent(e.topic, id, { kind: e.kind, payloadJson: e.payloadJson, headersJson: e.headersJson, occurredAtMs: e.occurredAtMs }, prev);
  newTips.set(e.topic, { id, hash: c.hash });
  chainTipTable().set.run(e.topic, c.hash);
  return c.event.headersJson;
}

/**
 * The lookup of one header's values: an expression index on (topic, the header's value), made the
 * first time appendIdempotent uses that header (once per database; every later insert keeps it up
 * to date, whoever makes it), and the statement that uses it. Header names are checked by the
 * caller ([A-Za-z0-9_.:-]), so the name is safe inside the JSON path as it is.
 */
const headerLookups = new Map<string, Statement>();

function headerLookup(header: string): Statement {
  let st = headerLookups.get(header);
  if (st === undefined) {
    const expr = `json_extract(headers, '$."${header}"')`;
    // An identifier of its own per header: the name's letters and a hash of the whole name.
    const ident = `events_header_${header.replace(/[^A-Za-z0-9_]/g, '_')}_${createHash('sha256').update(header).digest('hex').slice(0, 8)}`;
    db.exec(`CREATE INDEX IF NOT EXISTS ${ident} ON events (topic, ${expr})`);
    st = db.prepare(`SELECT id FROM events WHERE topic = ? AND ${expr} = ? ORDER BY id DESC LIMIT 1`).pluck();
    headerLookups.set(header, st);
  }
  return st;
}

function idempotent(s: Statements, header: string, value: string, e: AppendItem): SqliteResult {
  const lookup = headerLookup(header);
  // The write lock is held from the look-up to the insert: no other process can append the value in between.
  return writeTransaction(s, (insert) => {
    const held = lookup.get(e.topic, value) as number | undefined;
    if (held !== undefined) return { type: 'idempotent', id: held, inserted: false };
    const last = (s.latest.get(e.topic) as number | undefined) ?? 0;
    const stored = insert(e, last + 1, last);
    s.setLatest.run(e.topic, last + 1);
    return init.provenance ? { type: 'idempotent', id: last + 1, inserted: true, headers: stored } : { type: 'idempotent', id: last + 1, inserted: true };
  });
}

function compact(s: Statements, topic: string, before: number): SqliteResult {
  return db.transaction((): SqliteResult => {
    const removed = s.remove.run(topic, before).changes;
    const latest = (s.latest.get(topic) as number | undefined) ?? null;
    // Ids are gap-free and compaction only removes a prefix, so what is left is first..latest:
    // an index seek instead of counting every remaining row.
    const first = s.firstId.get(topic) as number | null;
    const remaining = first === null || latest === null ? 0 : latest - first + 1;
    return { type: 'compact', result: { removed, remaining, latest } };
  }).immediate();
}

interface CheckpointRow {
  busy: number;
  log: number;
  checkpointed: number;
}

function flush(): void {
  // PASSIVE never waits for (or blocks) other connections. When it copies every WAL frame into
  // the database, SQLite has fsynced the WAL and then the database file, so every commit is durable.
  const row = (db.pragma('wal_checkpoint(PASSIVE)') as CheckpointRow[])[0];
  if (row !== undefined && row.busy === 0 && row.log >= 0 && row.checkpointed === row.log) return;
  // A reader elsewhere pins older frames, so some commits live only in the WAL: fsync it ourselves,
  // which is what synchronous=FULL would have done at each commit (recovery replays the WAL). The
  // separate descriptor is harmless because SQLite keeps no locks on the -wal file (they are on -shm).
  let fd: number;
  try {
    fd = fs.openSync(`${init.path}-wal`, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function handle(req: SqliteRequest): SqliteResult {
  switch (req.type) {
    case 'append':
      return append(statements()!, req.events);
    case 'read': {
      const s = statements();
      return { type: 'read', rows: s === undefined ? [] : (s.read.all(req.topic, req.after, req.limit) as StoredRow[]) };
    }
    case 'ack':
      statements()!.ack.run(req.topic, req.consumer, req.upTo);
      return { type: 'ack' };
    case 'cursor': {
      const s = statements();
      return { type: 'cursor', id: s === undefined ? null : ((s.cursor.get(req.topic, req.consumer) as number | undefined) ?? null) };
    }
    case 'latest': {
      const s = statements();
      return { type: 'latest', latest: s === undefined ? null : ((s.latest.get(req.topic) as number | undefined) ?? null) };
    }
    case 'topics': {
      const s = statements();
      return { type: 'topics', topics: s === undefined ? [] : (s.topics.all() as string[]) };
    }
    case 'idempotent':
      return idempotent(statements()!, req.header, req.value, req.event);
    case 'compact':
      return compact(statements()!, req.topic, req.before);
    case 'flush':
      if (!init.readOnly) flush();
      return { type: 'flush' };
    case 'close':
      db.close();
      return { type: 'close' };
  }
}

function serve(conn: Database): void {
  db = conn;
  const onMessage = (req: SqliteRequest): void => {
    let result: SqliteResult;
    try {
      result = handle(req);
    } catch (err) {
      post({ type: 'failed', reqId: req.reqId, error: failure(err) });
      if (req.type === 'close') port.off('message', onMessage);
      return;
    }
    post({ type: 'ok', reqId: req.reqId, result });
    // Without a listener nothing holds this thread open: after the close reply it ends.
    if (req.type === 'close') port.off('message', onMessage);
  };
  port.on('message', onMessage);
  post({ type: 'ready' });
}
