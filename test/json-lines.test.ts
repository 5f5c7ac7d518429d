// Events given as JSON text (handleJsonLine, the pino bridge), in-process through the encoder and
// the line builder, no sink, no worker: for any JSON object the line is byte-identical to the one
// handleEvent makes of the parsed object (envelope keys renamed alike), text keeps its own bytes,
// text that is not a JSON object is kept whole, and a redaction policy applies.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EventEncoder, JsonText, Scratch, type Target } from '../dist/src/caller/encoder.js';
import { KeyTable } from '../dist/src/ring/keys.js';
import { LineBuilder } from '../dist/src/writer/line-builder.js';
import { OutBuffer } from '../dist/src/writer/out-buffer.js';
import { compileRedaction, resolveRedactSpec } from '../dist/src/writer/redact.js';

const MAX_DEPTH = 1000;

/** The line the writer makes of one event body, encoded as the caller's thread encodes it. */
function lineOf(body: object, executionId?: string, redact: unknown = false): string {
  const enc = new EventEncoder(MAX_DEPTH, new Scratch(1024));
  const buf = Buffer.alloc(1 << 20);
  const t: Target = { u8: buf, dv: new DataView(buf.buffer, buf.byteOffset, buf.length), buf: buf as Target['buf'] };
  enc.begin(t, 0, buf.length);
  enc.event(3, 1_700_000_000_000, null, executionId, body);
  const out = new OutBuffer(256);
  new LineBuilder(enc.keys as KeyTable, compileRedaction(resolveRedactSpec(redact))).build(t, 0, out);
  return out.buf.toString('utf8', 0, out.len);
}

const ENVELOPE = '{"index":3,"emitted_at_ms":1700000000000,"frame_depth":null';

describe('an event given as JSON text', () => {
  it('makes the same line as handleEvent of the parsed object, for any JSON object (fast-check), with and without an execution id', () => {
    // Any UTF-16 in keys and strings (lone surrogates included), any JSON value.
    const key = fc.oneof(fc.constantFrom('index', 'emitted_at_ms', 'frame_depth', 'execution_id', 'event_index', 'event_event_index', 'type', '__proto__'), fc.string({ unit: 'binary' }));
    fc.assert(
      fc.property(fc.dictionary(key, fc.jsonValue({ stringUnit: 'binary' })), fc.option(fc.string({ unit: 'binary' }), { nil: undefined }), (obj, executionId) => {
        const text = JSON.stringify(obj);
        expect(lineOf(new JsonText(text), executionId)).toBe(lineOf(JSON.parse(text) as object, executionId));
        // Pretty-printed (line breaks, indentation), the same record on one line.
        const pretty = lineOf(new JsonText(JSON.stringify(obj, null, 2)), executionId);
        expect(pretty).not.toMatch(/[\r\n]/);
        expect(JSON.parse(pretty)).toEqual(JSON.parse(lineOf(JSON.parse(text) as object, executionId)));
      }),
      { numRuns: 2000 },
    );
  });

  it("keeps the text's own bytes: spacing, number spelling, escapes, big integers", () => {
    const text = ' {"n":1.50e3, "big":12345678901234567890,"s":"\\u00e9\\n", "a":[ 1 ,2 ] }\r\n';
    expect(lineOf(new JsonText(text))).toBe(`${ENVELOPE},"n":1.50e3, "big":12345678901234567890,"s":"\\u00e9\\n", "a":[ 1 ,2 ] }`);
    expect(lineOf(new JsonText('{}'))).toBe(`${ENVELOPE}}`);
    expect(lineOf(new JsonText(' { } '))).toBe(`${ENVELOPE}}`);
  });

  it('renames only the keys named like the envelope, also when escaped, and copies every value as written', () => {
    const text = '{"ind\\u0065x":1.0,"x":{"index":2},"frame_depth":[ "}" ],"event_frame_depth":"\\"q\\""}';
    expect(lineOf(new JsonText(text))).toBe(`${ENVELOPE},"event_index":1.0,"x":{"index":2},"event_event_frame_depth":[ "}" ],"event_frame_depth":"\\"q\\""}`);
  });

  it('keeps text that is not one JSON object whole, as a log_line', () => {
    for (const text of ['plain', '[1,2]', '"s"', '42', '{"a":1', '{"a":1}{"b":2}', '', '{"a":1,}']) {
      expect(lineOf(new JsonText(text))).toBe(`${ENVELOPE},"type":"log_line","line":${JSON.stringify(text)}}`);
    }
  });

  it("applies a redaction policy as for any event: keys, credentials in URLs, query parameters, a custom function's rejection", () => {
    const text = '{"msg":"x","password":"hunter2","url":"https://u:p@h/x?token=abc","index":1}';
    expect(JSON.parse(lineOf(new JsonText(text), undefined, true))).toEqual({
      index: 3,
      emitted_at_ms: 1_700_000_000_000,
      frame_depth: null,
      msg: 'x',
      password: '[redacted]',
      url: 'https://[redacted]@h/x?token=[redacted]',
      event_index: 1,
    });
  });

  it('under a policy: a line with nothing to redact keeps its bytes (and its numbers their precision); text that is not JSON is refused when keys could hide secrets in it, redacted by the string rules otherwise; a JSON value that is not an object is redacted', () => {
    const clean = '{"big":12345678901234567890,"n":1.50,"msg":"nothing secret"}';
    expect(lineOf(new JsonText(clean), undefined, true)).toBe(`${ENVELOPE},${clean.slice(1)}`);
    expect(JSON.parse(lineOf(new JsonText('no json at all https://u:p@h/ password=x'), undefined, true))).toMatchObject({
      type: 'event_rejected',
      reason: 'a line that is not JSON cannot be checked for secrets under keys: not written (redaction policy)',
    });
    const stringRulesOnly = { defaults: false, patterns: [/sk-[a-z0-9]+/] };
    expect(JSON.parse(lineOf(new JsonText('no json, key sk-abc123 here'), undefined, stringRulesOnly))).toMatchObject({ type: 'log_line', line: 'no json, key [redacted] here' });
    expect(JSON.parse(lineOf(new JsonText('[{"password":"hunter2","ok":1}]'), undefined, true))).toMatchObject({ type: 'log_line', line: '[{"password":"[redacted]","ok":1}]' });
  });

  it('a line too deep for the policy to walk is refused with a reason, never written as it was and never a crash of the writer', () => {
    const deep = `{"a":${'['.repeat(20_000)}${']'.repeat(20_000)},"password":"x"}`;
    const line = JSON.parse(lineOf(new JsonText(deep), undefined, true)) as { type: string; reason: string };
    expect(line.type).toBe('event_rejected');
    expect(line.reason).toMatch(/^redaction failed: /);
  });

  it('keeps one record on one line: line breaks between the tokens of pretty-printed JSON become spaces; a BOM is not part of the text', () => {
    const value = { a: 1, b: ['x\ny', { c: null }], index: 2 };
    for (const text of [JSON.stringify(value, null, 2), JSON.stringify(value, null, 2).replace(/\n/g, '\r\n'), `\ufeff${JSON.stringify({ a: 1 })}`]) {
      const line = lineOf(new JsonText(text));
      expect(line).not.toMatch(/[\r\n]/);
      const parsed = JSON.parse(line) as Record<string, unknown>;
      expect(parsed.index).toBe(3);
      if (!text.startsWith('\ufeff')) expect(parsed).toMatchObject({ a: 1, b: ['x\ny', { c: null }], event_index: 2 });
      else expect(parsed).toMatchObject({ a: 1 });
    }
  });

  it('keeps a lone surrogate as its escape, names a key the text holds twice apart, and drops the line ending of text kept as a log_line', () => {
    const lone = lineOf(new JsonText('{"s":"a\ud800b"}'));
    expect(lone).toBe(`${ENVELOPE},"s":"a\\ud800b"}`);
    expect((JSON.parse(lone) as { s: string }).s).toBe('a\ud800b');
    const twice = lineOf(new JsonText('{"index":1,"index":2}'));
    expect(twice).toBe(`${ENVELOPE},"event_index":1,"event_event_index":2}`);
    expect(JSON.parse(lineOf(new JsonText('plain text\r\n')))).toMatchObject({ type: 'log_line', line: 'plain text' });
  });
});
