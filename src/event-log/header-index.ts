// Which event of a topic holds a header value: what appendIdempotent asks before it appends. Built
// for a header name the first time appendIdempotent uses it (one pass over the topic), then kept up
// to date by every append, so a call never scans the topic again. Used by the memory and file
// backends; SQLite indexes the header with an expression index, Redis with a hash per header.

export class HeaderIndex {
  /** Header name → value → the last id that holds it. */
  readonly #byName = new Map<string, Map<string, number>>();

  /** Whether `name` is indexed yet. */
  has(name: string): boolean {
    return this.#byName.has(name);
  }

  /** Whether any name is indexed (appends then have their headers looked at). */
  get active(): boolean {
    return this.#byName.size > 0;
  }

  /** Starts indexing `name` from the events given (id and headers, as JSON text or parsed, in id order). */
  build(name: string, events: Iterable<readonly [number, string | Record<string, unknown>]>): void {
    const values = new Map<string, number>();
    this.#byName.set(name, values);
    for (const [id, headers] of events) {
      const v = (typeof headers === 'string' ? parsed(headers) : headers)?.[name];
      if (typeof v === 'string') values.set(v, id);
    }
  }

  /** Records an appended event under every indexed name it has. */
  add(id: number, headersJsonOrObject: string | Record<string, unknown>): void {
    if (this.#byName.size === 0) return;
    const headers = typeof headersJsonOrObject === 'string' ? parsed(headersJsonOrObject) : headersJsonOrObject;
    if (headers === undefined) return;
    for (const [name, values] of this.#byName) {
      const v = headers[name];
      if (typeof v === 'string') values.set(v, id);
    }
  }

  /** The id of an event that holds `value` under `name`, if it is still in the topic (id ≥ firstId). */
  find(name: string, value: string, firstId: number): number | undefined {
    const id = this.#byName.get(name)?.get(value);
    return id !== undefined && id >= firstId ? id : undefined;
  }

  /** Forgets the values of events up to `before` (compaction removed them). */
  prune(before: number): void {
    for (const values of this.#byName.values()) for (const [v, id] of values) if (id <= before) values.delete(v);
  }

  /** Forgets everything (the topic was read again from its start). */
  clear(): void {
    this.#byName.clear();
  }
}

function parsed(headersJson: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(headersJson);
    return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
