// Another logger's line (an event given as JSON text, JsonlEventSink.handleJsonLine) → the members
// that follow ringlog's envelope. Pure: the line builder calls it on the writer's thread.
//
// The text is parsed once (JSON.parse: every line in the file stays valid JSON whatever was handed
// in), but in the common case it is not written again: its own bytes from the first `{` on are
// copied after the envelope, so a pino line keeps its exact bytes (key order, number spelling,
// escapes). Whitespace between its tokens may hold line breaks (pretty-printed JSON): those become
// spaces, since a line of the file is one record. A raw CR or LF can never be inside a JSON string,
// so this changes no value. Three cases write it otherwise:
//   - a field named like an envelope key (`index`, `emitted_at_ms`, `frame_depth`,
//     `execution_id`) is renamed as handleEvent renames it (files/format.ts); only those keys'
//     text changes, every value keeps its bytes;
//   - a redaction policy that changes something: the redacted object is serialised again (a line
//     with nothing to redact keeps its bytes);
//   - text that is not one JSON object is kept whole as a string: `{…envelope,"type":"log_line","line":"…"}`
//     (under a redaction policy, a JSON value is redacted first; text that is not JSON at all cannot
//     be checked for secrets under keys, and is written as an event_rejected marker instead).

import { LOG_LINE_FIELDS, REJECTED_FIELDS, renamedKey } from '../files/format.js';
import type { FastBuffer } from '../node-buffer.js';
import type { OutBuffer } from './out-buffer.js';
import { redactValue, runCustom, type Redaction } from './redact.js';

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
/** U+FEFF at the start of a text (a byte order mark): not part of the JSON. */
const BOM = 0xfeff;

/**
 * Appends the members of the JSON object text in `buf[start, end)` and the closing brace, after
 * an envelope already in `out`. `reserved` are the envelope keys of this line.
 */
export function spliceJsonObject(buf: FastBuffer, start: number, end: number, out: OutBuffer, reserved: readonly string[], redaction: Redaction | null): void {
  let text = buf.utf8Slice(start, end);
  if (text.charCodeAt(0) === BOM) text = text.slice(1);
  let value: unknown;
  let parsed = true;
  try {
    value = JSON.parse(text);
  } catch {
    parsed = false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    nonObject(out, text, parsed, value, redaction);
    return;
  }
  const obj = value as Record<string, unknown>;
  const collides = reserved.some((k) => Object.hasOwn(obj, k));
  if (redaction !== null) {
    let redacted: unknown;
    try {
      const walked = redactValue(redaction, collides ? renamedCopy(obj, reserved) : obj);
      redacted = redaction.custom !== null ? JSON.parse(runCustom(redaction, walked as Record<string, unknown>)) : walked;
    } catch (err) {
      // Too deep for the walk, say: a line the policy could not process is never written as it was.
      out.ascii(REJECTED_FIELDS);
      out.utf8(JSON.stringify(`redaction failed: ${err instanceof Error ? err.message : String(err)}`));
      out.ascii('}');
      return;
    }
    // Nothing matched: the line keeps its own bytes (and its numbers their precision).
    if (redacted !== obj || collides) {
      appendBody(out, JSON.stringify(redacted));
      return;
    }
  }
  if (collides) {
    appendBody(out, renamedText(text, obj, reserved));
    return;
  }
  if (!hasMembers(obj)) {
    out.ascii('}');
    return;
  }
  // Valid and an object: the first `{` opens it and the last `}` closes it (only whitespace is
  // around them), so the bytes in between are its members exactly as the logger wrote them.
  const open = buf.indexOf(OPEN_BRACE, start);
  const close = buf.lastIndexOf(CLOSE_BRACE, end - 1);
  out.ascii(',');
  const at = out.len;
  out.bytes(buf, open + 1, close + 1);
  // Line breaks between tokens: spaces (see the top of this file). indexOf is native: a line
  // without any costs one scan.
  const o = out.buf;
  for (let p = o.indexOf(LF, at); p !== -1 && p < out.len; p = o.indexOf(LF, p + 1)) o[p] = SPACE;
  for (let p = o.indexOf(CR, at); p !== -1 && p < out.len; p = o.indexOf(CR, p + 1)) o[p] = SPACE;
}

/** Text that is not one JSON object: kept as a string, redacted as the policy can. */
function nonObject(out: OutBuffer, raw: string, parsed: boolean, value: unknown, redaction: Redaction | null): void {
  // The logger's own line ending is not part of its text.
  let text = raw.replace(/[\r\n]+$/, '');
  if (redaction !== null) {
    if (!parsed && (redaction.hasKeyRules || redaction.custom !== null)) {
      out.ascii(REJECTED_FIELDS);
      out.utf8(JSON.stringify('a line that is not JSON cannot be checked for secrets under keys: not written (redaction policy)'));
      out.ascii('}');
      return;
    }
    if (parsed) {
      try {
        const redacted = redactValue(redaction, value);
        if (redacted !== value) text = JSON.stringify(redacted);
      } catch {
        text = redaction.redactString(text);
      }
    } else if (redaction.stringRules) text = redaction.redactString(text);
  }
  out.ascii(LOG_LINE_FIELDS);
  out.utf8(JSON.stringify(text));
  out.ascii('}');
}

/** `{...}` as the continuation of the envelope's object: `,<members>}`, or `}` when empty. */
function appendBody(out: OutBuffer, objectText: string): void {
  if (objectText.length <= 2) {
    out.ascii('}');
    return;
  }
  out.ascii(',');
  out.utf8(objectText.slice(1));
}

function hasMembers(obj: object): boolean {
  for (const k in obj) if (Object.hasOwn(obj, k)) return true;
  return false;
}

/** A copy with the envelope's names renamed, in the object's key order. */
function renamedCopy(obj: Record<string, unknown>, reserved: readonly string[]): Record<string, unknown> {
  const has = (name: string): boolean => Object.hasOwn(obj, name);
  const copy: Record<string, unknown> = {};
  for (const k of Object.keys(obj)) {
    // defineProperty: a "__proto__" member stays a member, as JSON.parse made it.
    Object.defineProperty(copy, reserved.includes(k) ? renamedKey(k, has) : k, { value: obj[k], enumerable: true, writable: true, configurable: true });
  }
  return copy;
}

/**
 * The object text (valid JSON, checked by the caller) with every member named like an envelope key
 * renamed; values are copied as written (line breaks between their tokens as spaces). A key the
 * text holds twice is renamed to a new name each time, so the line never holds a key twice.
 */
function renamedText(text: string, obj: object, reserved: readonly string[]): string {
  const used = new Set<string>();
  const has = (name: string): boolean => Object.hasOwn(obj, name) || used.has(name);
  let out = '{';
  let first = true;
  let i = text.indexOf('{') + 1;
  for (;;) {
    i = skipSpace(text, i);
    if (text.charCodeAt(i) === CLOSE_BRACE) break;
    const keyStart = i;
    i = endOfString(text, i);
    const rawKey = text.slice(keyStart, i);
    i = skipSpace(text, i) + 1; // the colon
    i = skipSpace(text, i);
    const valueStart = i;
    i = endOfValue(text, i);
    const name = rawKey.includes('\\') ? (JSON.parse(rawKey) as string) : rawKey.slice(1, -1);
    let key = rawKey;
    if (reserved.includes(name)) {
      const renamed = renamedKey(name, has);
      used.add(renamed);
      key = JSON.stringify(renamed);
    }
    out += `${first ? '' : ','}${key}:${text.slice(valueStart, i).replace(/[\r\n]/g, ' ')}`;
    first = false;
    i = skipSpace(text, i);
    if (text.charCodeAt(i) === 0x2c) i++; // a comma
  }
  return out + '}';
}

function skipSpace(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    // JSON's whitespace: space, tab, line feed, carriage return.
    if (c !== 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return i;
    i++;
  }
}

/** `i` at a string's opening quote → the index after its closing quote. */
function endOfString(text: string, i: number): number {
  for (let j = i + 1; ; j++) {
    const c = text.charCodeAt(j);
    if (c === 0x5c) j++; // a backslash: the next character is escaped
    else if (c === 0x22) return j + 1;
  }
}

/** `i` at a value's first character → the index after it. */
function endOfValue(text: string, i: number): number {
  const c = text.charCodeAt(i);
  if (c === 0x22) return endOfString(text, i);
  if (c === OPEN_BRACE || c === 0x5b) {
    let depth = 0;
    for (let j = i; ; ) {
      const d = text.charCodeAt(j);
      if (d === 0x22) {
        j = endOfString(text, j);
        continue;
      }
      if (d === OPEN_BRACE || d === 0x5b) depth++;
      else if ((d === CLOSE_BRACE || d === 0x5d) && --depth === 0) return j + 1;
      j++;
    }
  }
  // A number, true, false or null: up to the next delimiter.
  let j = i;
  for (;;) {
    const d = text.charCodeAt(j);
    if (d === 0x2c || d === CLOSE_BRACE || d === 0x5d || d === 0x20 || d === 0x09 || d === 0x0a || d === 0x0d) return j;
    j++;
  }
}
