// The Redis backend's link to the server: loading node-redis (an optional dependency), making a
// client or a cluster client with the backend's settings, reading what the server is, and telling
// what a failed command says (did it run?) and what it means for the log (a typed error).

import { EventLogError, EventLogErrorCode } from './errors.js';
import type { RedisEventLogOptions } from './redis-options.js';

const INSTALL_HINT = 'npm install redis';

/** Reconnection backoff after the log is open: doubling from 50 ms, capped at 500 ms, so a server
 *  back from a restart is found within half a second (a connection attempt is cheap). Also how
 *  often a writer or a subscription looks again while the connection is down. */
export const RECONNECT_MIN_MS = 50;
const RECONNECT_MAX_MS = 500;

/** What this backend needs of a node-redis client or cluster client. */
export interface Connection {
  send<T>(key: string, readonly: boolean, args: (string | Buffer)[]): Promise<T>;
  /** Every key matching a glob pattern: SCAN on the server, on each master of a cluster. */
  scan(pattern: string): Promise<string[]>;
  connect(): Promise<unknown>;
  duplicate(): Connection;
  close(): Promise<void>;
  destroy(): void;
}

export type RedisModule = typeof import('redis');

export async function loadRedis(): Promise<RedisModule> {
  try {
    return await import('redis');
  } catch (err) {
    throw new EventLogError(EventLogErrorCode.UNAVAILABLE, `ringlog: the redis backend needs the optional dependency redis (node-redis): ${INSTALL_HINT}`, { cause: err });
  }
}

/** The URL without its password, for messages and describe(). */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable url)';
  }
}

export function connection(redis: RedisModule, o: RedisEventLogOptions, state: { opened: boolean }): Connection {
  const reconnectStrategy = (retries: number, cause: Error): number | Error => {
    // Before the log is open, a refused connection is the answer: open() fails with it.
    if (!state.opened) return cause;
    return Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** Math.min(retries, 10));
  };
  const socket = { connectTimeout: o.connectTimeoutMs, reconnectStrategy };
  // No offline queue: a command made while the connection is down fails at once (ClientOfflineError,
  // certainly not run), so the append path decides what waits and for how long (TopicWriter).
  const disableOfflineQueue = true;
  // Without a listener, node-redis's 'error' events would end the process. The commands that fail
  // carry the same errors, and are what the log reports.
  const onError = (): void => {};
  if (o.cluster) {
    // The nodes the client discovers get `defaults` only, not what the URL says: its user, password
    // and TLS go there too, or every node but the first would refuse (NOAUTH) or speak plain text.
    const u = new URL(o.url);
    const auth = {
      ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
      ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    };
    const nodeSocket = u.protocol === 'rediss:' ? { ...socket, tls: true as const } : socket;
    const make = (): Connection => {
      const c = redis.createCluster({ rootNodes: [{ url: o.url }], defaults: { ...auth, socket: nodeSocket, disableOfflineQueue } });
      c.on('error', onError);
      return {
        send: (key, ro, args) => c.sendCommand(key, ro, args) as Promise<never>,
        scan: async (pattern) => {
          const keys: string[] = [];
          for (const master of c.masters) keys.push(...(await scanAll((a) => c.nodeClient(master).then((n) => n.sendCommand(a)), pattern)));
          return keys;
        },
        connect: () => c.connect(),
        duplicate: make,
        close: () => c.close(),
        destroy: () => c.destroy(),
      };
    };
    return make();
  }
  const make = (): Connection => {
    const c = redis.createClient({ url: o.url, socket, disableOfflineQueue });
    c.on('error', onError);
    // The socket holds the process only while a command waits for its reply (as the SQLite
    // backend's thread does): a process that forgets close() still exits once its appends are in.
    // (node-redis's cluster client has no ref/unref: a cluster log must be closed.)
    let pending = 0;
    const send = <T>(args: (string | Buffer)[]): Promise<T> => {
      if (pending++ === 0) c.ref();
      return (c.sendCommand(args) as Promise<T>).finally(() => {
        if (--pending === 0) c.unref();
      });
    };
    return {
      send: (_key, _ro, args) => send(args),
      scan: (pattern) => scanAll(send, pattern),
      connect: async () => {
        await c.connect();
        if (pending === 0) c.unref();
      },
      duplicate: make,
      close: () => c.close(),
      destroy: () => c.destroy(),
    };
  };
  return make();
}

/** Keys per SCAN call: a hint to the server, large enough for few round trips over a big key space. */
const SCAN_COUNT = '1000';

/** SCAN from cursor 0 until the server says 0 again; a key can come twice (SCAN's contract), so the set. */
async function scanAll(send: (args: string[]) => Promise<unknown>, pattern: string): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = (await send(['SCAN', cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT])) as [string, string[]];
    for (const k of batch) keys.add(String(k));
    cursor = String(next);
  } while (cursor !== '0');
  return [...keys];
}

export interface ServerInfo {
  readonly version: string;
  readonly major: number;
  readonly minor: number;
  readonly mode: 'standalone' | 'cluster';
  readonly appendonly: boolean;
  readonly appendfsync: string;
}

export async function serverInfo(conn: Connection, cluster: boolean): Promise<ServerInfo> {
  // On a cluster INFO goes to the node owning the key's slot: any one tells the version.
  const info = await conn.send<string>('ringlog', true, ['INFO', 'server']);
  const persistence = await conn.send<string>('ringlog', true, ['INFO', 'persistence']);
  const field = (text: string, name: string): string => new RegExp(`^${name}:(.*)$`, 'm').exec(String(text))?.[1]?.trim() ?? '';
  const version = field(info, 'redis_version');
  const [major = 0, minor = 0] = version.split('.').map(Number);
  let appendfsync = 'unknown';
  try {
    // RESP2 answers [name, value]; RESP3 a map.
    const reply = await conn.send<string[] | Record<string, string>>('ringlog', true, ['CONFIG', 'GET', 'appendfsync']);
    appendfsync = (Array.isArray(reply) ? reply[1] : reply.appendfsync) ?? 'unknown';
  } catch {
    // CONFIG may be renamed or refused (managed services): the guarantee is then stated as unknown.
  }
  return { version, major, minor, mode: cluster ? 'cluster' : 'standalone', appendonly: field(persistence, 'aof_enabled') === '1', appendfsync };
}

/** Maps a server or connection failure to the log's typed error. */
export function asLogError(err: unknown, what: string, topic?: string): EventLogError {
  if (err instanceof EventLogError) return err;
  const msg = err instanceof Error ? err.message : String(err);
  const opts = { cause: err, ...(topic !== undefined ? { topic } : {}) };
  if (msg.startsWith('READONLY')) return new EventLogError(EventLogErrorCode.READ_ONLY, `ringlog: ${what}: the server is a read-only replica (${msg})`, opts);
  if (msg.startsWith('WRONGTYPE')) return new EventLogError(EventLogErrorCode.CORRUPT, `ringlog: ${what}: a key of the log holds another type of value (${msg})`, opts);
  return new EventLogError(EventLogErrorCode.IO, `ringlog: ${what}: ${msg}`, opts);
}

/**
 * What a failed command says about whether it ran. 'answered': the server replied with an error
 * (the script did nothing: it is refused whole, see redis-keys.ts); 'unsent': it never left this
 * process (the client was offline, or the server was still loading its data), so it did not run
 * and may be sent again; 'unknown': the connection broke while it was on its way or its reply
 * was, so only the server can tell; 'closed': the log is closing; 'early': an append batch came
 * before an earlier one of its writer (APPEND_SCRIPT), not run, to be sent again after it.
 */
export type Outcome = 'answered' | 'unsent' | 'unknown' | 'closed' | 'early';

export function outcomeOf(redis: RedisModule, err: unknown): Outcome {
  if (err instanceof redis.ClientClosedError) return 'closed';
  if (err instanceof redis.ClientOfflineError) return 'unsent';
  if (err instanceof redis.ErrorReply) {
    if (err.message.startsWith('RINGLOG_EARLY')) return 'early';
    // A server restarting answers LOADING until its AOF is replayed; a cluster in a failover,
    // CLUSTERDOWN or TRYAGAIN: the command did not run, and will once it is back.
    return /^(LOADING|CLUSTERDOWN|TRYAGAIN|BUSY|MASTERDOWN)\b/.test(err.message) ? 'unsent' : 'answered';
  }
  if (err instanceof EventLogError) return 'answered';
  return 'unknown';
}

/** WAITAOF exists from Redis 7.2, and means something only with the append-only file on. */
export function waitsForAof(s: ServerInfo): boolean {
  return s.appendonly && (s.major > 7 || (s.major === 7 && s.minor >= 2));
}

/** What flush() guarantees on this server, in words (README, "Redis"). */
export function durability(s: ServerInfo): string {
  if (waitsForAof(s)) return 'fsynced: flush() waits (WAITAOF) until the server has fsynced its append-only file past every earlier append';
  if (!s.appendonly) return 'acknowledged by the server, in its memory only: appendonly is off, so a restart keeps only what its last RDB snapshot holds';
  switch (s.appendfsync) {
    case 'always':
      return 'acknowledged after the server fsynced its append-only file (appendfsync always)';
    case 'everysec':
      return 'acknowledged by the server and in its append-only file; fsynced within about a second (appendfsync everysec): a crash of the machine can lose the last second';
    case 'no':
      return 'acknowledged by the server and in its append-only file; fsynced when the OS decides (appendfsync no)';
    default:
      return `acknowledged by the server; its fsync policy could not be read (appendfsync ${s.appendfsync})`;
  }
}
