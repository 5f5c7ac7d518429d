// `ringlog/pino`: a pino destination. pino keeps doing what it does (levels, child loggers,
// serializers, its own redaction) and hands each JSON line to write(); the line goes into the
// sink's ring as it is (JsonlEventSink.handleJsonLine) and the writer thread puts ringlog's
// envelope in front of pino's fields. The stream surface is the part of sonic-boom's that pino and
// thread-stream use: write, flush(cb), flushSync, end, reopen, destroy and the events ready,
// finish, close, error.
//
//   pino(opts, ringlogDestination({ path: 'logs/app.jsonl' }))
//   pino.transport({ target: 'ringlog/pino', options: { path: 'logs/app.jsonl' } })

import { EventEmitter } from 'node:events';
import { StringDecoder } from 'node:string_decoder';
import * as path from 'node:path';
import { JsonlEventSink } from '../caller/sink.js';
import type { JsonlEventSinkOptions } from '../caller/options.js';
import type { SinkError } from '../errors.js';

export interface RinglogDestinationOptions extends JsonlEventSinkOptions {
  /** The base file of the set (created with its directories). */
  readonly path?: string;
  /** sonic-boom's and pino.destination()'s name for `path`. */
  readonly dest?: string;
}

/** What the destination defaults differently from JsonlEventSink.open. */
const DESTINATION_DEFAULTS: JsonlEventSinkOptions = {
  // An application's log outlives a restart, as with pino.destination() (sonic-boom appends).
  mode: 'append',
  // pino redacts with its own `redact` option, on the caller's thread; ringlog's policy would
  // parse every line again on the writer's. Pass `redact: true` (or a policy) to have both.
  redact: false,
};

const NEWLINE = '\n';
/**
 * Characters of a line still waiting for its newline: past this (16 Mi, well beyond any log line)
 * the text is logged as it stands rather than held without bound.
 */
const MAX_PARTIAL_CHARS = 16 * 1024 * 1024;

export class RinglogDestination extends EventEmitter {
  /** The sink the lines go to: its stats(), eventCount() and the rest are there. */
  readonly sink: JsonlEventSink;
  /** Text after the last newline of the last write: the start of a line still coming. */
  #partial = '';
  /** Bytes written as Buffers: a character split across two writes is decoded whole. */
  readonly #decoder = new StringDecoder('utf8');
  #ending: Promise<void> | undefined;
  /** sonic-boom's flags, read by some of pino's helpers. */
  destroyed = false;
  readonly writing = false;

  constructor(options: RinglogDestinationOptions | string) {
    super();
    const o = typeof options === 'string' ? { path: options } : options;
    if (typeof o !== 'object' || o === null) throw new TypeError(`ringlog: ringlogDestination expects options with a path (or the path itself), got ${o === null ? 'null' : typeof o}`);
    const { path: p, dest, ...sinkOptions } = o;
    if (p !== undefined && dest !== undefined) throw new TypeError('ringlog: ringlogDestination takes path or dest, not both');
    const file = p ?? dest;
    if (typeof file !== 'string' || file.length === 0) throw new TypeError('ringlog: ringlogDestination needs a path (a non-empty string)');
    const userOnError = sinkOptions.onError;
    this.sink = JsonlEventSink.open(path.resolve(file), {
      ...DESTINATION_DEFAULTS,
      ...sinkOptions,
      // A stream reports its faults as 'error' events; with nobody listening they are warnings,
      // never an uncaught exception inside the application's logger.
      onError: (err: SinkError) => {
        userOnError?.(err);
        this.#report(err);
      },
    });
    // sonic-boom says 'ready' once its file is open; here it is open already.
    process.nextTick(() => this.emit('ready'));
  }

  /** As on Node's writable streams: true until end(). pino takes a lone argument with it for its
   *  destination (`pino(ringlogDestination(…))`). */
  get writable(): boolean {
    return this.#ending === undefined;
  }

  /** The sink's base file. */
  get file(): string {
    return this.sink.basePath;
  }

  /**
   * One or more whole lines, or part of one (thread-stream hands over chunks as they come): every
   * complete line becomes one event. Always true: the ring's overload policy, not the stream,
   * decides what waits.
   */
  write(data: string | Uint8Array): boolean {
    if (this.#ending !== undefined) {
      this.#report(new Error('ringlog: write after end on a ringlog pino destination'));
      return false;
    }
    const text = typeof data === 'string' ? data : this.#decoder.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    let nl = text.indexOf(NEWLINE);
    if (nl === -1) {
      this.#partial += text;
      if (this.#partial.length > MAX_PARTIAL_CHARS) {
        this.sink.handleJsonLine(this.#partial);
        this.#partial = '';
      }
      return true;
    }
    // pino's case, one line and its newline: handed over whole, no slicing.
    if (nl === text.length - 1 && this.#partial === '' && nl > 0 && text.charCodeAt(0) === 0x7b) {
      this.sink.handleJsonLine(text);
      return true;
    }
    let from = 0;
    for (; nl !== -1; nl = text.indexOf(NEWLINE, from)) {
      const line = this.#partial + text.slice(from, nl);
      this.#partial = '';
      if (line.trim() !== '') this.sink.handleJsonLine(line);
      from = nl + 1;
    }
    this.#partial = text.slice(from);
    return true;
  }

  /** Calls back (or resolves) once every line written so far is in the file; a loss is the error. */
  flush(cb?: (err?: Error) => void): void {
    this.sink.flush().then(
      () => cb?.(),
      (err: Error) => (cb ? cb(err) : this.#report(err)),
    );
  }

  /** Blocks until every line written so far is in the file (JsonlEventSink.flushSync). */
  flushSync(): void {
    this.sink.flushSync();
  }

  /**
   * ringlog rotates its files itself (rotateBytes, maxFiles), so there is nothing to reopen after
   * an outside rotation: this flushes, and emits 'ready' as sonic-boom does. Point logrotate at
   * other files, not at a ringlog set.
   */
  reopen(): void {
    this.flush();
    process.nextTick(() => this.emit('ready'));
  }

  /** Writes a last partial line, closes the sink, then emits 'finish' and 'close'. */
  end(): this {
    this.#ending ??= this.#end();
    return this;
  }

  destroy(): this {
    this.destroyed = true;
    return this.end();
  }

  async #end(): Promise<void> {
    this.#partial += this.#decoder.end();
    if (this.#partial.trim() !== '') this.sink.handleJsonLine(this.#partial);
    this.#partial = '';
    try {
      await this.sink.close();
    } catch (err) {
      this.#report(err as Error);
    }
    this.destroyed = true;
    this.emit('finish');
    this.emit('close');
  }

  #report(err: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else process.emitWarning(err);
  }
}

/** A pino destination writing through a ringlog sink: `pino(opts, ringlogDestination({ path }))`. */
export function ringlogDestination(options: RinglogDestinationOptions | string): RinglogDestination {
  return new RinglogDestination(options);
}

/** The transport target: `pino.transport({ target: 'ringlog/pino', options: { path } })`. */
export default function transport(options: RinglogDestinationOptions): RinglogDestination {
  // What pino and thread-stream add to the target's options (`pinoWillSendConfig`: pino posts its
  // levels to the thread, which a destination writing lines as they are has no use for;
  // `$context`: thread-stream's version) is not ours to check.
  const own = Object.fromEntries(Object.entries(options ?? {}).filter(([k]) => !k.startsWith('$') && k !== 'pinoWillSendConfig'));
  return new RinglogDestination(own);
}
