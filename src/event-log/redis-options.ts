// The Redis backend's resolved options and their defaults (checked in open.ts), apart from the
// backend itself so that choosing another backend loads nothing of it.

/** How long opening waits for the server before it fails: a server that answers at all does in
 *  milliseconds; 5 s also covers a first TLS handshake across a region. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
/** How long a batch keeps being retried over a lost connection before its appends fail: a
 *  restart or a failover of a Redis server takes seconds. */
export const DEFAULT_RETRY_TIMEOUT_MS = 10_000;

export interface RedisEventLogOptions {
  readonly url: string;
  readonly cluster: boolean;
  readonly keyPrefix: string;
  readonly queueDepth: number;
  readonly connectTimeoutMs: number;
  readonly retryTimeoutMs: number;
  /** Chain records (provenance.ts); hashed on the client, checked against the tip in the script. */
  readonly provenance: boolean;
}
