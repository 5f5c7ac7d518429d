// What every command shares: buffered stdout that respects backpressure and treats a closed pipe
// as the reader's way of saying "enough", diagnostics on stderr, and the errors that decide the
// exit code.

/** Exit codes, as Unix tools use them: 0 success, 1 a runtime failure or problems found, 2 bad usage. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** A failure to report as one line on stderr (`ringlog: <message>`), with the exit code to end with. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Text is collected until this many characters are pending, then handed to the stream in one
 * write: 64 KiB is the default capacity of a Linux pipe, so one write can fill it in one syscall,
 * while a larger buffer would only add memory and latency for `| head`.
 */
export const FLUSH_CHARS = 64 * 1024;

type Writable = NodeJS.WritableStream & { writableLength?: number };

/** Errors of a stdout whose reader is gone: the pipe closed, nothing more can be delivered. */
export function isBrokenPipe(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ECONNRESET';
}

export class Output {
  private parts: string[] = [];
  private pending = 0;
  private broken = false;
  private chain: Promise<void> = Promise.resolve();
  private soon: NodeJS.Immediate | null = null;

  constructor(
    private readonly stream: Writable,
    private readonly onBroken: () => void,
  ) {
    stream.on('error', (err: unknown) => {
      if (!isBrokenPipe(err)) this.error ??= err as Error;
      this.markBroken();
    });
  }

  /** A write error other than a closed pipe (disk full behind a redirect, say): reported, exit 1. */
  error: Error | null = null;

  /** True once stdout cannot take more (its reader went away, or it failed); later writes are dropped. */
  get isBroken(): boolean {
    return this.broken;
  }

  /** True when enough is pending that the caller should `await flush()` before adding more. */
  get full(): boolean {
    return this.pending >= FLUSH_CHARS;
  }

  write(text: string): void {
    if (this.broken) return;
    this.parts.push(text);
    this.pending += text.length;
  }

  /** A line of text plus its newline. */
  line(text: string): void {
    this.write(text);
    this.write('\n');
  }

  /**
   * Hands everything pending to the stream and resolves once the stream can take more (its write
   * returned true, or 'drain' came), or once the pipe broke. Flushes run one after the other.
   */
  flush(): Promise<void> {
    if (this.soon) {
      clearImmediate(this.soon);
      this.soon = null;
    }
    this.chain = this.chain.then(() => this.flushNow());
    return this.chain;
  }

  /**
   * A flush after the current burst of synchronous work: a follower delivers a whole chunk of
   * lines without yielding to the event loop, so this writes them together, as soon as they are in.
   */
  flushSoon(): void {
    if (this.soon || this.pending === 0) return;
    this.soon = setImmediate(() => {
      this.soon = null;
      void this.flush();
    });
  }

  private async flushNow(): Promise<void> {
    if (this.pending === 0 || this.broken) return;
    const text = this.parts.length === 1 ? this.parts[0]! : this.parts.join('');
    this.parts = [];
    this.pending = 0;
    let ok: boolean;
    try {
      ok = this.stream.write(text);
    } catch (err) {
      if (!isBrokenPipe(err)) this.error ??= err as Error;
      this.markBroken();
      return;
    }
    if (!ok && !this.broken) await this.drained();
  }

  private drained(): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.stream.off('drain', done);
        this.stream.off('error', done);
        this.stream.off('close', done);
        resolve();
      };
      this.stream.on('drain', done);
      this.stream.on('error', done);
      this.stream.on('close', done);
    });
  }

  private markBroken(): void {
    if (this.broken) return;
    this.broken = true;
    this.parts = [];
    this.pending = 0;
    this.onBroken();
  }
}

/** A diagnostic line on stderr, prefixed like every Unix tool's: `ringlog: …`. */
export function diag(message: string): void {
  process.stderr.write(`ringlog: ${message}\n`);
}

export function warn(message: string): void {
  diag(`warning: ${message}`);
}

/** Grouped thousands, as in the README's figures. */
export function int(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function fixed(n: number, digits: number): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Bytes with a binary-unit hint past a KiB, e.g. `1,234,567 B (1.2 MiB)`. */
export function bytesText(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let unit = '';
  for (const u of units) {
    if (v < 1024) break;
    v /= 1024;
    unit = u;
  }
  return unit === '' ? `${int(n)} B` : `${int(n)} B (${fixed(v, 1)} ${unit})`;
}

/** Left-aligned label column, as `key  value` rows. */
export function table(rows: readonly (readonly [string, string])[], indent = ''): string[] {
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`.trimEnd());
}
