// The redaction policy: which keys are sensitive, which parts of strings are secrets, and how an
// option given by a user becomes (a) plain data a worker thread can receive (RedactSpec), (b) a
// compiled policy the line builder consults while it copies bytes (Redaction), and (c) a function
// over JS values for sinks that hold the event as a value (createRedactor).
//
// Keys are compared after normalisation (lower case, only [a-z0-9] kept) against an exact set, never
// by substring: agent events are full of `max_tokens`, `input_tokens`, `token_count`, which a
// substring match on "token" would wipe out.

import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ENVELOPE_KEYS_WITH_EXECUTION, rejectedEvent } from '../files/format.js';

export const DEFAULT_CENSOR = '[redacted]';

/**
 * Keys whose value is replaced by the censor, at any depth, in normalised form: `api_key`,
 * `apiKey`, `API-KEY` and `Api Key` all normalise to `apikey`. Left out on purpose, because agent
 * events use them for ordinary data: `key`, `code`, `session_id`, `pwd` (a shell's working
 * directory), anything that merely contains "token" (`max_tokens`, `input_tokens`).
 */
export const DEFAULT_REDACT_KEYS: readonly string[] = Object.freeze([
  'apikey', 'xapikey', 'apitoken', 'apisecret',
  'authorization', 'proxyauthorization', 'auth', 'xauthtoken',
  'password', 'passwd', 'passphrase',
  'secret', 'secretkey', 'clientsecret',
  'token', 'accesstoken', 'refreshtoken', 'idtoken', 'authtoken', 'sessiontoken', 'bearertoken',
  'cookie', 'setcookie',
  'privatekey', 'signature', 'credentials', 'credential',
  'awssecretaccesskey', 'secretaccesskey', 'awssessiontoken', 'xamzsecuritytoken',
]);

/**
 * Query-parameter names (normalised) whose value is replaced inside any string, in addition to every
 * redacted key name: short names that are secrets in URLs (`key=`, `sig=`) but too common as
 * object keys to be in DEFAULT_REDACT_KEYS, and the signing parameters of presigned cloud URLs.
 * `code` (the OAuth authorization code) is deliberately absent: it is single-use and expires in
 * minutes, so a log that outlives it reveals nothing usable, while `code=` is everywhere in
 * ordinary text (error codes, country codes, snippets of source).
 */
export const DEFAULT_REDACT_QUERY_PARAMS: readonly string[] = Object.freeze([
  'key', 'sig', 'pwd', 'xamzsignature', 'xamzcredential', 'xgoogsignature', 'xgoogcredential',
]);

/** Receives the event (after the key and string rules), returns what is written instead. */
export type RedactFunction = (event: Record<string, unknown>) => Record<string, unknown>;

export interface RedactConfig {
  /** More keys to redact, compared after the same normalisation as the built-in list. */
  keys?: string[];
  /** Every match, anywhere in any string (keys included), is replaced by the censor. */
  patterns?: (RegExp | string)[];
  /** What a redacted value becomes (default '[redacted]'). */
  censor?: string;
  /** Include the built-in key list and the URL credential and query-parameter rules (default true). */
  defaults?: boolean;
  /**
   * Runs last, on the whole event. JsonlEventSink takes a module (absolute path or file: URL) whose
   * default export is the function, since its writer thread cannot run a closure; createRedactor
   * also takes the function itself.
   */
  custom?: string | URL | RedactFunction;
}

/** `true` or undefined: the default policy; `false`: no redaction. */
export type RedactOption = boolean | RedactConfig;

/** A redaction policy as plain data: what a worker thread receives (workerData). */
export interface RedactSpec {
  readonly censor: string;
  /** Normalised key names. */
  readonly keys: readonly string[];
  /** Normalised query-parameter names. */
  readonly queryParams: readonly string[];
  /** The `scheme://userinfo@host` rule. */
  readonly urlCredentials: boolean;
  /** Extra patterns, 'g' added and 'y' removed. */
  readonly patterns: readonly { readonly source: string; readonly flags: string }[];
  /** Absolute path of the custom module, or null. */
  readonly custom: string | null;
}

const CONFIG_FIELDS = ['keys', 'patterns', 'censor', 'defaults', 'custom'];

/** Lower case, letters and digits only: the form keys are compared in. */
export function normalizeKey(key: string): string {
  return key.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (v instanceof RegExp) return 'a RegExp';
  return typeof v;
}

interface Parsed {
  readonly spec: RedactSpec | null;
  readonly customFn: RedactFunction | null;
}

/**
 * Validates `option` and turns it into a spec for JsonlEventSink's writer thread; null when
 * redaction is off. Throws TypeError/RangeError naming `name`. A `custom` module is loaded here,
 * once, to check that it default-exports a function (so a typo fails open(), not the writer).
 */
export function resolveRedactSpec(option: unknown, name = 'redact'): RedactSpec | null {
  // The default policy is what nearly every sink asks for: resolved once, not at every open().
  if (option === undefined || option === true) return (defaultSpec ??= parse({}, name, false).spec);
  return parse(option, name, false).spec;
}
let defaultSpec: RedactSpec | null | undefined;

function parse(option: unknown, name: string, allowFunction: boolean): Parsed {
  const field = (f: string): string => `ringlog: option "${name}": field "${f}"`;
  if (option === undefined || option === true) option = {};
  if (option === false) return { spec: null, customFn: null };
  if (typeof option !== 'object' || option === null || Array.isArray(option) || option instanceof RegExp) {
    throw new TypeError(`ringlog: option "${name}" must be a boolean or an object, got ${describe(option)}`);
  }
  const o = option as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!CONFIG_FIELDS.includes(k)) throw new TypeError(`${field(k)} is unknown (known: ${CONFIG_FIELDS.join(', ')})`);
  }
  const defaults = o.defaults === undefined ? true : o.defaults;
  if (typeof defaults !== 'boolean') throw new TypeError(`${field('defaults')} must be a boolean, got ${describe(defaults)}`);
  const censor = o.censor === undefined ? DEFAULT_CENSOR : o.censor;
  if (typeof censor !== 'string') throw new TypeError(`${field('censor')} must be a string, got ${describe(censor)}`);

  const keys = new Set<string>(defaults ? DEFAULT_REDACT_KEYS : []);
  if (o.keys !== undefined) {
    if (!Array.isArray(o.keys)) throw new TypeError(`${field('keys')} must be an array of strings, got ${describe(o.keys)}`);
    o.keys.forEach((k: unknown, i) => {
      if (typeof k !== 'string') throw new TypeError(`${field('keys')}[${i}] must be a string, got ${describe(k)}`);
      const n = normalizeKey(k);
      if (n === '') throw new RangeError(`${field('keys')}[${i}] (${JSON.stringify(k)}) has no letter or digit, so it matches no key`);
      keys.add(n);
    });
  }

  const patterns: { source: string; flags: string }[] = [];
  if (o.patterns !== undefined) {
    if (!Array.isArray(o.patterns)) {
      throw new TypeError(`${field('patterns')} must be an array of RegExps or strings, got ${describe(o.patterns)}`);
    }
    o.patterns.forEach((p: unknown, i) => {
      const at = `${field('patterns')}[${i}]`;
      let re: RegExp;
      if (p instanceof RegExp) re = p;
      else if (typeof p === 'string') {
        if (p === '') throw new RangeError(`${at} is empty`);
        try {
          re = new RegExp(p);
        } catch (err) {
          throw new RangeError(`${at} is not a valid regular expression: ${(err as Error).message}`);
        }
      } else throw new TypeError(`${at} must be a RegExp or a string, got ${describe(p)}`);
      // Sticky would anchor every match at the previous one's end; 'g' makes replace find them all.
      const flags = re.flags.replace(/[gy]/g, '') + 'g';
      const compiled = new RegExp(re.source, flags);
      if (compiled.test('')) throw new RangeError(`${at} (/${re.source}/${re.flags}) matches the empty string`);
      patterns.push({ source: re.source, flags });
    });
  }

  let custom: string | null = null;
  let customFn: RedactFunction | null = null;
  if (o.custom !== undefined) {
    if (typeof o.custom === 'function') {
      if (!allowFunction) {
        throw new TypeError(
          `${field('custom')} must be a module path or file: URL for JsonlEventSink: its writer thread cannot run a function ` +
            'created on the caller\'s thread; put the function in a module (its default export) and pass the module\'s absolute path',
        );
      }
      customFn = o.custom as RedactFunction;
    } else if (typeof o.custom === 'string' || o.custom instanceof URL) {
      custom = modulePath(o.custom, field('custom'));
      customFn = loadCustom(custom, field('custom'));
    } else {
      throw new TypeError(`${field('custom')} must be a module path, a file: URL${allowFunction ? ' or a function' : ''}, got ${describe(o.custom)}`);
    }
  }

  const queryParams = new Set<string>(keys);
  if (defaults) for (const p of DEFAULT_REDACT_QUERY_PARAMS) queryParams.add(p);
  if (keys.size === 0 && patterns.length === 0 && !defaults && customFn === null) return { spec: null, customFn: null };
  const spec: RedactSpec = { censor, keys: [...keys], queryParams: [...queryParams], urlCredentials: defaults, patterns, custom };
  return { spec, customFn };
}

function modulePath(v: string | URL, at: string): string {
  const text = typeof v === 'string' ? v : v.href;
  if (text.startsWith('file:')) {
    try {
      return fileURLToPath(text);
    } catch (err) {
      throw new RangeError(`${at} is not a usable file: URL (${(err as Error).message})`);
    }
  }
  if (v instanceof URL) throw new RangeError(`${at} must be a file: URL, got ${v.protocol} URL`);
  if (!path.isAbsolute(text)) throw new RangeError(`${at} must be an absolute path or a file: URL, got ${JSON.stringify(text)}`);
  return text;
}

/**
 * Loads a custom redaction module synchronously (require of an ES module works from Node 20.19;
 * a module with top-level await cannot be loaded this way). Its default export, or a CommonJS
 * module's exports, must be a function.
 */
function loadCustom(file: string, at: string): RedactFunction {
  let mod: unknown;
  try {
    // A require rooted at the module itself: `file` is absolute, and this code may run from a bundle
    // or from the writer's embedded source, where import.meta.url means nothing.
    mod = createRequire(file)(file);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new TypeError(`${at}: cannot load ${JSON.stringify(file)}: ${e.code ? `${e.code}: ` : ''}${e.message}`, { cause: err });
  }
  const m = mod as { default?: unknown } | undefined;
  if (typeof m?.default === 'function') return m.default as RedactFunction;
  if (typeof mod === 'function') return mod as RedactFunction;
  throw new TypeError(`${at}: module ${JSON.stringify(file)} must default-export a function, got ${describe(m?.default ?? mod)}`);
}

/**
 * `?name=`, `&name=` or `;name=` (the last also catches HTML's `&amp;name=`). The value is not part
 * of the match: a parameter that is not sensitive must not swallow one that is (`?a=b?token=c`).
 */
const PARAM_NAME = /[?&;]([A-Za-z0-9_.\-[\]]+)=/g;
/** A parameter's value runs to `&`, `#`, whitespace, a quote, a backtick, `<`, `>` or the end. */
const PARAM_VALUE = /[^&#\s"'`<>]*/y;
/**
 * `://`, then an authority that has an `@`: the greedy run backtracks to the authority's last `@`,
 * so a password holding an unencoded `@` is covered whole.
 */
const USERINFO = /:\/\/([^\s/?#"'`<>]+)@/g;

/** A RedactSpec, compiled: what the line builder and createRedactor consult. */
export class Redaction {
  readonly censor: string;
  /** The censor as a JSON string literal, UTF-8. */
  readonly censorJson: Buffer;
  readonly urlCredentials: boolean;
  /** Any query-parameter names to look for. */
  readonly queryParams: boolean;
  /** Extra patterns: every string must be examined when there are any. */
  readonly patterns: readonly RegExp[];
  readonly custom: RedactFunction | null;
  private readonly keySet: ReadonlySet<string>;
  private readonly paramSet: ReadonlySet<string>;
  private readonly userinfoReplace: (m: string, info: string) => string;
  private readonly patternReplace: (m: string) => string;

  constructor(spec: RedactSpec, custom: RedactFunction | null) {
    this.censor = spec.censor;
    this.censorJson = Buffer.from(JSON.stringify(spec.censor));
    this.keySet = new Set(spec.keys);
    this.paramSet = new Set(spec.queryParams);
    this.urlCredentials = spec.urlCredentials;
    this.queryParams = this.paramSet.size > 0;
    this.patterns = spec.patterns.map((p) => new RegExp(p.source, p.flags));
    this.custom = custom;
    const censor = spec.censor;
    this.userinfoReplace = (m, info) => (info === censor ? m : `://${censor}@`);
    // A pattern that can match empty (say /\b/) would otherwise stamp the censor between characters.
    this.patternReplace = (m) => (m === '' ? m : censor);
  }

  /** Whether any key is sensitive (a value can be censored by its key, which text that is not JSON does not show). */
  get hasKeyRules(): boolean {
    return this.keySet.size > 0;
  }

  isSensitiveKey(key: string): boolean {
    return this.keySet.has(normalizeKey(key));
  }

  /** Replaces the value of every sensitive query parameter (a non-empty one) in `s`. */
  private redactParams(s: string): string {
    let out = '';
    let done = 0;
    PARAM_NAME.lastIndex = 0;
    for (let m = PARAM_NAME.exec(s); m !== null; m = PARAM_NAME.exec(s)) {
      if (!this.paramSet.has(normalizeKey(m[1]!))) continue;
      const from = PARAM_NAME.lastIndex;
      PARAM_VALUE.lastIndex = from;
      const to = from + PARAM_VALUE.exec(s)![0].length;
      PARAM_NAME.lastIndex = to;
      if (to === from || s.slice(from, to) === this.censor) continue;
      out += s.slice(done, from) + this.censor;
      done = to;
    }
    return done === 0 ? s : out + s.slice(done);
  }

  /** Whether any rule looks inside strings at all. */
  get stringRules(): boolean {
    return this.urlCredentials || this.queryParams || this.patterns.length > 0;
  }

  /** `s` with every secret the string rules find replaced; `s` itself when none. */
  redactString(s: string): string {
    let r = s;
    if (this.urlCredentials && r.includes('@')) r = r.replace(USERINFO, this.userinfoReplace);
    if (this.queryParams && r.includes('=')) r = this.redactParams(r);
    const patterns = this.patterns;
    for (let i = 0; i < patterns.length; i++) {
      const re = patterns[i]!;
      re.lastIndex = 0;
      if (re.test(r)) r = r.replace(re, this.patternReplace);
    }
    // replace() returns an equal string, not the same one: hand back the original when unchanged.
    return r === s ? s : r;
  }
}

/** Compiles a spec, loading its custom module (cached by the module loader after the first time). */
export function compileRedaction(spec: RedactSpec | null): Redaction | null {
  if (spec === null) return null;
  return new Redaction(spec, spec.custom === null ? null : loadCustom(spec.custom, 'ringlog: redact module'));
}


/** Longest failure reason written in place of an event whose custom redaction failed: a reason
 *  is for a person reading the file, not a dump (the encoder caps its rejection reasons alike). */
const MAX_REASON = 200;

/**
 * Runs the custom function on a parsed event. Returns the JSON text of the result, or, if the
 * function throws or returns something that is not an object, the JSON text of an
 * `event_rejected` marker: an event the policy could not process is never written as it was.
 */
export function runCustom(redaction: Redaction, event: Record<string, unknown>): string {
  const fn = redaction.custom!;
  let text: string | undefined;
  let why: string;
  try {
    const result = fn(event);
    if (typeof result === 'object' && result !== null && !Array.isArray(result)) {
      // The line's envelope: a custom function cannot add or change it.
      for (const k of ENVELOPE_KEYS_WITH_EXECUTION) if (Object.hasOwn(result, k)) delete (result as Record<string, unknown>)[k];
      text = JSON.stringify(result);
      if (text !== undefined) return text;
    }
    why = `returned ${describe(result)}, not an object`;
  } catch (err) {
    const e = err as Error;
    why = `threw ${typeof e?.message === 'string' ? `${e.name ?? 'Error'}: ${e.message}` : String(err)}`;
  }
  let reason = redaction.redactString(`custom redaction function ${why}`);
  if (reason.length > MAX_REASON) reason = reason.slice(0, MAX_REASON) + '…';
  return JSON.stringify(rejectedEvent(reason));
}

/**
 * A redactor for sinks that hold the event as a JS value (EventLogSink): returns a redacted copy,
 * never mutating its input, or the input itself when nothing matched; null when `option` turns
 * redaction off. Values are seen as JSON.stringify sees them (toJSON honoured, own enumerable
 * keys), so its result serialises to the same JSON as JsonlEventSink's line for the same event.
 * `custom` may be the function itself here, or a module path / file: URL (loaded synchronously,
 * now). It runs last, on a JSON copy of an object value; if it throws or returns a non-object,
 * the value becomes `{ type: 'event_rejected', reason }`, as in JsonlEventSink's file.
 * Throws TypeError/RangeError for a bad option.
 */
export function createRedactor(option: RedactOption | undefined): ((value: unknown) => unknown) | null {
  const { spec, customFn } = parse(option, 'redact', true);
  if (spec === null) return null;
  const redaction = new Redaction(spec, customFn);
  return (value) => {
    const walked = redactValue(redaction, value);
    if (redaction.custom === null || typeof walked !== 'object' || walked === null || Array.isArray(walked)) return walked;
    // The function gets a copy of its own, as the writer's does (JSON.parse of the line); BigInt
    // becomes its digits, as the encoder writes it.
    const copy = JSON.parse(JSON.stringify(walked, bigintAsDigits)) as Record<string, unknown>;
    return JSON.parse(runCustom(redaction, copy)) as unknown;
  };
}

/** A redacted copy of a JS value under a compiled policy (the input itself when nothing matched); the custom function is not run. */
export function redactValue(r: Redaction, value: unknown): unknown {
  return walk(r, value, '', []);
}

function walk(r: Redaction, v: unknown, key: string, stack: object[]): unknown {
  if ((typeof v === 'object' && v !== null) || typeof v === 'bigint') {
    const toJSON = (v as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') v = toJSON.call(v, key);
  }
  if (typeof v === 'string') return r.stringRules ? r.redactString(v) : v;
  if (typeof v !== 'object' || v === null) return v;
  if (v instanceof String) return walk(r, String(v), key, stack);
  if (stack.includes(v)) return '[Circular]';
  stack.push(v);
  try {
    if (Array.isArray(v)) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const item: unknown = v[i];
        const next = walk(r, item, String(i), stack);
        if (next !== item && copy === undefined) copy = v.slice(0, i);
        if (copy !== undefined) copy.push(next);
      }
      return copy ?? v;
    }
    const keys = Object.keys(v);
    const src = v as Record<string, unknown>;
    let copy: Record<string, unknown> | undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i]!;
      const item = src[k];
      const sensitive = r.isSensitiveKey(k) && item !== undefined && typeof item !== 'function' && typeof item !== 'symbol';
      const next = sensitive ? r.censor : walk(r, item, k, stack);
      const newKey = r.stringRules ? r.redactString(k) : k;
      if ((next !== item || newKey !== k) && copy === undefined) {
        copy = {};
        for (let j = 0; j < i; j++) setOwn(copy, keys[j]!, src[keys[j]!]);
      }
      if (copy !== undefined) setOwn(copy, newKey, next);
    }
    return copy ?? v;
  } finally {
    stack.pop();
  }
}

function bigintAsDigits(_key: string, v: unknown): unknown {
  return typeof v === 'bigint' ? v.toString() : v;
}

/** An own property even for the key `__proto__`, which plain assignment would take as the prototype. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  if (k === '__proto__') Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
  else o[k] = v;
}
