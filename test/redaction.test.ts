// Redaction (issue 5): secrets planted in tool inputs, tool outputs and nested URLs never reach the
// file, through a real JsonlEventSink and its writer thread (and through the caller's thread when it
// drains the ring itself: flushSync, exit); data without secrets is written byte-identical to
// JSON.stringify; the options are validated up front; createRedactor (for sinks that hold the
// event as a JS value) gives the same result as the writer and never mutates its input.

import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { JsonlEventSink } from '../dist/src/index.js';
import {
  createRedactor,
  DEFAULT_REDACT_KEYS,
  DEFAULT_REDACT_QUERY_PARAMS,
  normalizeKey,
  resolveRedactSpec,
} from '../dist/src/writer/redact.js';
import { makeCorpus } from '../dist/demo/corpus.js';
import { BASE_NAME, expectedLine, firstDifference, readLines, runChild, tempDirs, type Line } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

type Options = Parameters<typeof JsonlEventSink.open>[1];
type Ev = Record<string, unknown>;

const R = '[redacted]';

interface Written {
  /** The files' bytes, as one string. */
  text: string;
  raw: string[];
  lines: Line[];
}

/** Logs the events through a fresh sink, closes it, and reads everything back. */
async function write(label: string, events: readonly unknown[], options?: Options): Promise<Written> {
  const dir = dirs.make(label);
  const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), options);
  for (const e of events) sink.handleEvent(e as never);
  await sink.close();
  // A writer that died (say, on a key it never learnt) is replaced with the caller's key table and
  // would hide the fault: none may die here.
  expect(sink.stats().workerRestarts).toBe(0);
  const { raw, lines, files } = readLines(dir);
  return { text: files.map((f) => fs.readFileSync(f.path, 'utf8')).join(''), raw, lines };
}

/** The line differences between what was written and JSON.stringify of the expected bodies. */
function mismatches(w: Written, expected: readonly Ev[]): string[] {
  const bad: string[] = [];
  if (w.raw.length !== expected.length) bad.push(`${w.raw.length} lines for ${expected.length} events`);
  expected.forEach((body, i) => {
    const l = w.lines[i];
    if (!l) return;
    const diff = firstDifference(w.raw[i]!, expectedLine(i, l.emitted_at_ms, body));
    if (diff !== undefined) bad.push(`line ${i}: ${diff}`);
  });
  return bad;
}

/** Secret substrings found in the bytes written (case-insensitive, so no casing slips through). */
function leaked(text: string, secrets: readonly string[]): string[] {
  const lower = text.toLowerCase();
  return secrets.filter((s) => lower.includes(s.toLowerCase()));
}

// --- Planted secrets, and the exact lines they must become ------------------------------------

const SECRETS = [
  'sk-live-4f9a8b7c6d5e',
  'p4ssw0rd-hunter2',
  'tok-abc123xyz',
  'ghp_refreshme0987',
  'cookie-sess-77aa',
  'AKIAIOSFODNN7EXAMPLE/20260101',
  'wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY',
  'sig-0af3deadbeef',
  '-----BEGIN PRIVATE KEY-----MIIEvQ',
  'url-user-alice',
  'url-pass-s3cr3t',
  'inline-key-secret-value',
  'surrogate-secret-1',
  '秘密のトークン',
  'deep-nested-token-value',
];

const planted: { event: Ev; want: Ev }[] = [
  {
    event: {
      type: 'tool_call',
      tool_name: 'http_get',
      input: {
        headers: { Authorization: 'Bearer sk-live-4f9a8b7c6d5e', 'Content-Type': 'application/json', Cookie: 'cookie-sess-77aa' },
        url: 'https://url-user-alice:url-pass-s3cr3t@api.example.com/v1/x?access_token=tok-abc123xyz&q=1',
      },
      max_tokens: 4096,
    },
    want: {
      type: 'tool_call',
      tool_name: 'http_get',
      input: {
        headers: { Authorization: R, 'Content-Type': 'application/json', Cookie: R },
        url: `https://${R}@api.example.com/v1/x?access_token=${R}&q=1`,
      },
      max_tokens: 4096,
    },
  },
  {
    // Tool output: secrets inside free text, with characters that JSON must escape around them.
    event: {
      type: 'tool_result',
      tool_call_id: 'call_1',
      is_error: false,
      output:
        'GET done\n\t"https://api.example.com/x?X-Amz-Credential=AKIAIOSFODNN7EXAMPLE/20260101&X-Amz-Signature=sig-0af3deadbeef"\\ end\u0001' +
        ' and later: curl -H "x" \'https://bot:p4ssw0rd-hunter2@git.example.com/r.git\' ok',
    },
    want: {
      type: 'tool_result',
      tool_call_id: 'call_1',
      is_error: false,
      output:
        `GET done\n\t"https://api.example.com/x?X-Amz-Credential=${R}&X-Amz-Signature=${R}"\\ end\u0001` +
        ` and later: curl -H "x" 'https://${R}@git.example.com/r.git' ok`,
    },
  },
  {
    // Keys in every casing, values of every kind, deep nesting, arrays.
    event: {
      type: 'config',
      API_KEY: 'sk-live-4f9a8b7c6d5e',
      apiKey: 12345,
      'x-api-key': ['a', 'b'],
      Password: { old: 'p4ssw0rd-hunter2', new: 'p4ssw0rd-hunter2' },
      client_secret: null,
      refresh_token: true,
      aws: { aws_secret_access_key: 'wJalrXUtnFEMIbPxRfiCYEXAMPLEKEY', region: 'eu-west-1' },
      private_key: '-----BEGIN PRIVATE KEY-----MIIEvQ',
      layers: [[{ a: [{ b: { ID_TOKEN: 'deep-nested-token-value', keep: 'this' } }] }]],
      usage: { input_tokens: 10, output_tokens: 20, prompt_tokens: 3, token_count: 4, max_tokens: 5 },
      key: 'not a secret as a key',
      session_id: 'sess-1',
    },
    want: {
      type: 'config',
      API_KEY: R,
      apiKey: R,
      'x-api-key': R,
      Password: R,
      client_secret: R,
      refresh_token: R,
      aws: { aws_secret_access_key: R, region: 'eu-west-1' },
      private_key: R,
      layers: [[{ a: [{ b: { ID_TOKEN: R, keep: 'this' } }] }]],
      usage: { input_tokens: 10, output_tokens: 20, prompt_tokens: 3, token_count: 4, max_tokens: 5 },
      key: 'not a secret as a key',
      session_id: 'sess-1',
    },
  },
  {
    // Keys the encoder does not intern (sent as KEY_INLINE): longer than 64 characters, or holding
    // a lone surrogate; and an event key renamed because it collides with the envelope.
    event: {
      type: 'odd_keys',
      ['_'.repeat(70) + 'Password']: 'inline-key-secret-value',
      ['pass\ud800word']: 'inline-key-secret-value',
      ['k'.repeat(80)]: 'https://url-user-alice@host.example/x',
      index: 'kept, renamed',
    },
    want: {
      type: 'odd_keys',
      ['_'.repeat(70) + 'Password']: R,
      ['pass\ud800word']: R,
      ['k'.repeat(80)]: `https://${R}@host.example/x`,
      event_index: 'kept, renamed',
    },
  },
  {
    // Unicode, and a string with a lone surrogate holding a secret (sent as UTF-16 code units while
    // the writer keeps up; test/line-builder.test.ts covers it as UTF-8, pre-escaped: RAW).
    event: {
      type: 'unicode',
      text: '東京 https://ユーザー:パス@例え.jp/?token=秘密のトークン&q=日本 🙂',
      broken: 'bad \ud800 https://x.example/?sig=surrogate-secret-1#frag',
      emails: 'write to alice@example.com, a=b, x?y=z, ?token=',
    },
    want: {
      type: 'unicode',
      text: `東京 https://${R}@例え.jp/?token=${R}&q=日本 🙂`,
      broken: `bad \ud800 https://x.example/?sig=${R}#frag`,
      emails: 'write to alice@example.com, a=b, x?y=z, ?token=',
    },
  },
  {
    // URLs as keys, a non-sensitive parameter must not hide a sensitive one after it.
    event: {
      type: 'urls',
      ['https://url-user-alice:url-pass-s3cr3t@h.example/']: 1,
      chained: 'x?a=b?token=tok-abc123xyz&c=d;sig=sig-0af3deadbeef',
      html: '<a href="https://h.example/?page=2&amp;api_key=sk-live-4f9a8b7c6d5e">next</a>',
      at_in_password: 'ftp://user:p4ssw0rd@hunter2@files.example/',
    },
    want: {
      type: 'urls',
      [`https://${R}@h.example/`]: 1,
      chained: `x?a=b?token=${R}&c=d;sig=${R}`,
      html: `<a href="https://h.example/?page=2&amp;api_key=${R}">next</a>`,
      at_in_password: `ftp://${R}@files.example/`,
    },
  },
];

describe('default policy through JsonlEventSink', () => {
  it('planted secrets never reach the file; the lines are exactly the redacted events', async () => {
    const w = await write('planted', planted.map((p) => p.event));
    expect(leaked(w.text, [...SECRETS, 'hunter2'])).toEqual([]);
    expect(mismatches(w, planted.map((p) => p.want))).toEqual([]);
  });

  it('key definitions inside a redacted value still reach the writer (later events use them)', async () => {
    const events = [
      { type: 'a', password: { fresh_key_1: 'x', nested: [{ fresh_key_2: 1 }] }, token: { fresh_key_3: [1] } },
      { type: 'b', fresh_key_1: 'visible', fresh_key_2: 2, fresh_key_3: 3 },
    ];
    const w = await write('skip-defines', events);
    expect(mismatches(w, [{ type: 'a', password: R, token: R }, events[1]!])).toEqual([]);
  });

  it('keys past the interning cap (sent whole) are redacted too', async () => {
    const big: Ev = { type: 'many_keys' };
    for (let i = 0; i < 4200; i++) big[`k${i}`] = i;
    big.API_KEY = 'sk-live-4f9a8b7c6d5e';
    const after = { type: 'after', Authorization: 'Bearer tok-abc123xyz', x: 1 };
    const w = await write('key-cap', [big, after]);
    expect(leaked(w.text, SECRETS)).toEqual([]);
    expect(mismatches(w, [{ ...big, API_KEY: R }, { type: 'after', Authorization: R, x: 1 }])).toEqual([]);
  });

  it('a big event that travels outside the ring is redacted like any other', async () => {
    const output = 'log line with nothing to hide\n'.repeat(4000) + 'https://bot:p4ssw0rd-hunter2@h.example/?sig=sig-0af3deadbeef';
    const events = [{ type: 'tool_result', output, secret: 'x'.repeat(70_000) }];
    const w = await write('external', events, { ringBytes: 64 * 1024 });
    expect(leaked(w.text, SECRETS)).toEqual([]);
    expect(mismatches(w, [{ type: 'tool_result', output: output.replace('bot:p4ssw0rd-hunter2', R).replace('sig-0af3deadbeef', R), secret: R }])).toEqual([]);
  });

  it('events without secrets are byte-identical to JSON.stringify (the corpus, and text with "=" and "@")', async () => {
    const events: Ev[] = [
      ...makeCorpus(1500),
      ...makeCorpus(500, 7, true),
      { type: 'code', output: 'if (a && b == c) { x = y; } // a=b&c=d?e=f mailto:me@example.com https://example.com/?q=1&page=2#top' },
      { type: 'almost', tokens: 5, tokenizer: 'bpe', keys: ['token'], text: 'token=abc without a ? or &', url: 'https://example.com/@user' },
    ];
    const w = await write('clean', events);
    expect(mismatches(w, events)).toEqual([]);
  });

  it('the envelope is never redacted (an executionId that looks like a URL with credentials)', async () => {
    const dir = dirs.make('envelope');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    sink.handleEvent({ type: 'x' }, { executionId: 'https://a:b@c/?token=t', frameDepth: 2 });
    await sink.close();
    const { raw, lines } = readLines(dir);
    expect(raw[0]).toBe(expectedLine(0, lines[0]!.emitted_at_ms, { type: 'x' }, { executionId: 'https://a:b@c/?token=t', frameDepth: 2 }));
  });

  it('flushSync (the caller thread drains the ring itself) redacts with the same policy', async () => {
    const dir = dirs.make('flush-sync');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME));
    for (const p of planted) sink.handleEvent(p.event as never);
    sink.flushSync();
    const mid = readLines(dir);
    expect(mid.raw).toHaveLength(planted.length);
    await sink.close();
    const w = { text: fs.readFileSync(path.join(dir, BASE_NAME), 'utf8'), ...readLines(dir) };
    expect(leaked(w.text, [...SECRETS, 'hunter2'])).toEqual([]);
    expect(mismatches(w, planted.map((p) => p.want))).toEqual([]);
  });

  it('the exit drain on the caller thread redacts too (process.exit() before the writer thread started)', async () => {
    const dir = dirs.make('exit');
    const base = path.join(dir, BASE_NAME);
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2]);
       const events = JSON.parse(process.argv[3]);
       for (const e of events) sink.handleEvent(e);
       process.exit(0);`,
      [base, JSON.stringify(planted.map((p) => p.event))],
    );
    expect(res.stderr).toBe('');
    expect(res.code).toBe(0);
    const w = { text: fs.readFileSync(base, 'utf8'), ...readLines(dir) };
    expect(leaked(w.text, [...SECRETS, 'hunter2'])).toEqual([]);
    // JSON.parse in the child turned the lone surrogate of the planted events into the same string.
    expect(mismatches(w, planted.map((p) => p.want))).toEqual([]);
  });
});

// --- Options -----------------------------------------------------------------------------------

describe('options', () => {
  const secretEvent = {
    type: 'tool_call',
    input: { headers: { Authorization: 'Bearer sk-live-4f9a8b7c6d5e' }, url: 'https://url-user-alice:url-pass-s3cr3t@h/x?access_token=tok-abc123xyz&q=1' },
    ssn: '123-45-6789',
    note: 'customer 987-65-4321 called about card 4111 1111 1111 1111',
  };

  it('redact: false writes everything verbatim', async () => {
    const w = await write('off', [secretEvent], { redact: false });
    expect(mismatches(w, [secretEvent])).toEqual([]);
    expect(w.text).toContain('sk-live-4f9a8b7c6d5e');
  });

  it('extra keys and patterns (RegExp and string), a custom censor', async () => {
    const w = await write('extra', [secretEvent, { type: 'q', url: 'https://h/?SSN=111-22-3333&x=1' }], {
      redact: { keys: ['ssn'], patterns: [/\b\d{3}-\d{2}-\d{4}\b/, '\\b(?:\\d{4} ){3}\\d{4}\\b'], censor: '***' },
    });
    expect(mismatches(w, [
      {
        type: 'tool_call',
        input: { headers: { Authorization: '***' }, url: 'https://***@h/x?access_token=***&q=1' },
        ssn: '***',
        note: 'customer *** called about card ***',
      },
      // An extra key is a sensitive query parameter too.
      { type: 'q', url: 'https://h/?SSN=***&x=1' },
    ])).toEqual([]);
  });

  it('a censor that needs JSON escaping, and one with "$" (never read as a replacement pattern)', async () => {
    const w1 = await write('censor-esc', [secretEvent], { redact: { censor: '"\n\\' } });
    expect(JSON.parse(w1.raw[0]!).input.headers.Authorization).toBe('"\n\\');
    const w2 = await write('censor-dollar', [{ t: 'a?token=x' }], { redact: { censor: '$&$1' } });
    expect(JSON.parse(w2.raw[0]!).t).toBe('a?token=$&$1');
  });

  it('defaults: false keeps only what is configured', async () => {
    const w = await write('no-defaults', [secretEvent], { redact: { defaults: false, keys: ['ssn'] } });
    expect(mismatches(w, [{ ...secretEvent, ssn: R }])).toEqual([]);
    expect(resolveRedactSpec({ defaults: false })).toBeNull();
  });

  it('a custom module (absolute path or file: URL) runs in the writer, last, envelope kept', async () => {
    const dir = dirs.make('custom-mod');
    const mod = path.join(dir, 'redact.mjs');
    fs.writeFileSync(
      mod,
      `export default (event) => {
         if (typeof event.note === 'string') event.note = event.note.replace(/\\d/g, '#');
         event.seen = { authorization: event.input?.headers?.Authorization ?? null };
         event.index = 'cannot overwrite the envelope';
         return event;
       };`,
    );
    const want = {
      type: 'tool_call',
      input: { headers: { Authorization: R }, url: `https://${R}@h/x?access_token=${R}&q=1` },
      ssn: '123-45-6789',
      note: 'customer ###-##-#### called about card #### #### #### ####',
      seen: { authorization: R },
    };
    for (const custom of [mod, pathToFileURL(mod), pathToFileURL(mod).href]) {
      const w = await write('custom', [secretEvent, { type: 'empty' }], { redact: { custom } });
      expect(mismatches(w, [want, { type: 'empty', seen: { authorization: null } }])).toEqual([]);
    }
  });

  it('a custom function that throws or returns a non-object leaves a rejection marker, never the event', async () => {
    const dir = dirs.make('custom-bad');
    const mod = path.join(dir, 'bad.mjs');
    // The thrown message holds a URL with a password (assembled, so the module's own text is not it).
    fs.writeFileSync(
      mod,
      `export default (e) => { if (e.type === 'boom') throw new Error('cannot reach https://bot:' + 'hunter' + '2@h.example/'); return e.type === 'nul' ? null : e; };`,
    );
    const w = await write('custom-bad-w', [
      { type: 'boom' },
      { type: 'nul', password: 'p4ssw0rd-hunter2' },
      { type: 'fine' },
    ], { redact: { custom: mod } });
    expect(leaked(w.text, [...SECRETS, 'hunter2'])).toEqual([]);
    expect(w.lines.map((l) => l.type)).toEqual(['event_rejected', 'event_rejected', 'fine']);
    expect(w.lines[0]!.reason).toBe(`custom redaction function threw Error: cannot reach https://${R}@h.example/`);
    expect(w.lines[1]!.reason).toBe('custom redaction function returned null, not an object');
  });

  it('the exit drain uses a custom module too', async () => {
    const dir = dirs.make('custom-exit');
    const mod = path.join(dir, 'redact.mjs');
    fs.writeFileSync(mod, `export default (e) => ({ ...e, custom: true });`);
    const base = path.join(dir, BASE_NAME);
    const res = await runChild(
      `import { JsonlEventSink } from '%RINGLOG%';
       const sink = JsonlEventSink.open(process.argv[2], { redact: { custom: process.argv[3] } });
       sink.handleEvent({ type: 'x', token: 'tok-abc123xyz' });
       process.exit(0);`,
      [base, mod],
    );
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    const w = { text: fs.readFileSync(base, 'utf8'), ...readLines(dir) };
    expect(mismatches(w, [{ type: 'x', token: R, custom: true }])).toEqual([]);
  });

  it('bad options throw synchronously, TypeError for a wrong type, RangeError for a bad value', () => {
    const dir = dirs.make('bad-opts');
    const base = path.join(dir, BASE_NAME);
    const cases: [unknown, typeof TypeError | typeof RangeError, RegExp][] = [
      ['yes', TypeError, /option "redact" must be a boolean or an object, got string/],
      [null, TypeError, /option "redact" must be a boolean or an object, got null/],
      [[], TypeError, /got an array/],
      [/x/, TypeError, /got a RegExp/],
      [{ key: ['x'] }, TypeError, /field "key" is unknown \(known: keys, patterns, censor, defaults, custom\)/],
      [{ keys: 'ssn' }, TypeError, /field "keys" must be an array of strings, got string/],
      [{ keys: ['ok', 3] }, TypeError, /field "keys"\[1\] must be a string, got number/],
      [{ keys: [''] }, RangeError, /field "keys"\[0\] \(""\) has no letter or digit/],
      [{ keys: ['--'] }, RangeError, /field "keys"\[0\] \("--"\) has no letter or digit/],
      [{ patterns: /x/ }, TypeError, /field "patterns" must be an array of RegExps or strings, got a RegExp/],
      [{ patterns: [5] }, TypeError, /field "patterns"\[0\] must be a RegExp or a string, got number/],
      [{ patterns: [''] }, RangeError, /field "patterns"\[0\] is empty/],
      [{ patterns: ['('] }, RangeError, /field "patterns"\[0\] is not a valid regular expression/],
      [{ patterns: [/a*/] }, RangeError, /field "patterns"\[0\] \(\/a\*\/\) matches the empty string/],
      [{ patterns: ['x', 'y?'] }, RangeError, /field "patterns"\[1\] .* matches the empty string/],
      [{ censor: 1 }, TypeError, /field "censor" must be a string, got number/],
      [{ defaults: 'no' }, TypeError, /field "defaults" must be a boolean, got string/],
      [{ custom: (e: Ev) => e }, TypeError, /field "custom" must be a module path or file: URL for JsonlEventSink: its writer thread cannot run a function/],
      [{ custom: 42 }, TypeError, /field "custom" must be a module path, a file: URL, got number/],
      [{ custom: 'relative/redact.mjs' }, RangeError, /field "custom" must be an absolute path or a file: URL, got "relative\/redact.mjs"/],
      [{ custom: new URL('https://example.com/r.mjs') }, RangeError, /field "custom" must be a file: URL, got https: URL/],
      [{ custom: path.join(dir, 'missing.mjs') }, TypeError, /field "custom": cannot load .*missing\.mjs/],
    ];
    const notFn = path.join(dir, 'not-fn.mjs');
    fs.writeFileSync(notFn, 'export default 42;');
    cases.push([{ custom: notFn }, TypeError, /must default-export a function, got number/]);
    for (const [redact, type, message] of cases) {
      let thrown: unknown;
      try {
        JsonlEventSink.open(base, { redact: redact as never });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, String(message)).toBeInstanceOf(type);
      expect((thrown as Error).message).toMatch(message);
    }
    // Nothing was opened by a failed open: no file.
    expect(fs.existsSync(base)).toBe(false);
  });
});

// --- createRedactor, for sinks that hold the event as a JS value -------------------------------

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const k of Object.keys(v)) deepFreeze((v as Ev)[k]);
    Object.freeze(v);
  }
  return v;
}

/** A planted event's expected body as a value: createRedactor knows no envelope, so an event key
 *  `index` stays `index` (the file renames it event_index). */
function wantAsValue(want: Ev): Ev {
  if (!('event_index' in want)) return want;
  const { event_index, ...rest } = want;
  return { ...rest, index: event_index };
}

describe('createRedactor', () => {
  it('is null when off, and documents its lists in normalised form', () => {
    expect(createRedactor(false)).toBeNull();
    expect(createRedactor({ defaults: false })).toBeNull();
    for (const k of [...DEFAULT_REDACT_KEYS, ...DEFAULT_REDACT_QUERY_PARAMS]) expect(normalizeKey(k)).toBe(k);
    expect(['api_key', 'apiKey', 'API-KEY', 'x-api-key', 'Api Key'].map(normalizeKey)).toEqual(['apikey', 'apikey', 'apikey', 'xapikey', 'apikey']);
    for (const k of ['max_tokens', 'prompt_tokens', 'token_count', 'input_tokens', 'session_id', 'key', 'code']) {
      expect(DEFAULT_REDACT_KEYS).not.toContain(normalizeKey(k));
    }
  });

  it('returns a redacted copy without mutating its (frozen) input, and the input itself when nothing matched', () => {
    const redact = createRedactor(undefined)!;
    const clean = deepFreeze({ type: 'x', nested: { list: [1, 'two', { three: 3 }] }, max_tokens: 3 });
    expect(redact(clean)).toBe(clean);
    for (const p of planted) {
      const input = deepFreeze(structuredClone(p.event));
      const before = JSON.stringify(input);
      const out = redact(input);
      expect(JSON.stringify(input)).toBe(before);
      expect(out).not.toBe(input);
      expect(JSON.stringify(out)).toBe(JSON.stringify(wantAsValue(p.want)));
    }
    // Untouched branches are shared, not copied.
    const mixed = deepFreeze({ a: { big: [1, 2, 3] }, token: 'x' });
    const out = redact(mixed) as typeof mixed;
    expect(out.a).toBe(mixed.a);
    expect(out.token).toBe(R);
  });

  it('gives the same JSON as the writer thread for the same events (default, extra, custom function vs module)', async () => {
    const dir = dirs.make('same');
    const mod = path.join(dir, 'redact.mjs');
    const body = `(e) => { e.n = Object.keys(e).length; if (e.note) e.note = String(e.note).toUpperCase(); return e; }`;
    fs.writeFileSync(mod, `export default ${body};`);
    const events: Ev[] = [
      // The file renames an event's own `index`; a value redactor has no envelope to protect.
      ...planted.map((p) => p.event).filter((e) => !('index' in e)),
      { type: 'extra', ssn: 1, note: 'call 123-45-6789 ok', list: [{ Ssn: [1] }, 'u?ssn=9&x=1'] },
      ...makeCorpus(300, 11),
    ];
    const configs: { worker: NonNullable<Options>['redact']; value: Parameters<typeof createRedactor>[0] }[] = [
      { worker: undefined, value: undefined },
      { worker: { keys: ['ssn'], patterns: [/\d{3}-\d{2}-\d{4}/] }, value: { keys: ['ssn'], patterns: [/\d{3}-\d{2}-\d{4}/] } },
      // eslint-disable-next-line no-eval
      { worker: { custom: mod }, value: { custom: (0, eval)(body) as (e: Ev) => Ev } },
      { worker: { custom: mod }, value: { custom: mod } },
    ];
    for (const { worker, value } of configs) {
      const w = await write('same-w', events, { redact: worker });
      const redact = createRedactor(value)!;
      const want = events.map((e) => redact(e) as Ev);
      expect(mismatches(w, want)).toEqual([]);
    }
  });

  it('turns a failing custom function into the same rejection the writer writes', () => {
    const redact = createRedactor({
      custom: () => {
        throw new TypeError('nope');
      },
    })!;
    expect(redact({ type: 'x' })).toEqual({ type: 'event_rejected', reason: 'custom redaction function threw TypeError: nope' });
  });
});

// --- Property: with no secret in sight, redaction changes nothing ----------------------------

/** Every name a key or query parameter is compared against. */
const SENSITIVE = new Set([...DEFAULT_REDACT_KEYS, ...DEFAULT_REDACT_QUERY_PARAMS]);
const unit = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  // Near misses: the bytes the prefilter looks at, and names that are almost sensitive.
  { weight: 2, arbitrary: fc.constantFrom('?', '&', ';', '@', ':', '/', 'token', 'tokens', 'max_tokens', 'key_id', '"', '\\', '\n', '\ud800') },
);
const safeKey = fc.string({ unit, maxLength: 14 }).filter((k) => !SENSITIVE.has(normalizeKey(k)) && !k.includes('://') && !k.includes('='));
const safeString = fc.string({ unit, maxLength: 60 }).filter((s) => !s.includes('://') && !s.includes('='));
const leaf = fc.oneof(safeString, fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.constant(null));
const value = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof({ depthSize: 'small', withCrossShrink: true }, leaf, fc.array(tie('v'), { maxLength: 4 }), fc.dictionary(safeKey, tie('v'), { maxKeys: 4 })),
})).v;
const INTEGER_LIKE = /^(0|[1-9]\d*)$/;
const event = fc
  .dictionary(safeKey, value, { maxKeys: 6 })
  .filter((e) => Object.keys(e).every((k) => !INTEGER_LIKE.test(k) && !['index', 'emitted_at_ms', 'frame_depth'].includes(k)));

describe('property: without secrets, redaction on and off write the same bytes', () => {
  it('random JSON events (keys avoid the sensitive names, strings avoid "://" and "=")', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 40 }), async (events) => {
        const on = await write('pbt-on', events);
        const off = await write('pbt-off', events, { redact: false });
        // The same line but for the time stamp.
        const strip = (raw: string[]): string[] => raw.map((l) => l.replace(/^(\{"index":\d+,"emitted_at_ms":)\d+/, '$1'));
        expect(strip(on.raw)).toEqual(strip(off.raw));
        expect(mismatches(on, events)).toEqual([]);
        dirs.cleanup();
      }),
      { numRuns: 25 },
    );
  });
});
