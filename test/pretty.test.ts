// The readable line of `ringlog cat`/`tail`/`pretty`, in-process (a pure module): what each kind of
// event shows, where the fields come from for ringlog's lines, event-log records and other tools'
// NDJSON, colours (and NO_COLOR / FORCE_COLOR), and the width.

import { describe, expect, it } from 'vitest';
import { colorWanted, lineStyle, prettyLine, styled } from '../dist/src/cli/pretty.js';

const plain = { color: false, width: Infinity };
/** Local time of day, as the line shows it. */
const at = (ms: number): string => {
  const d = new Date(ms);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
};
const T = 1_764_000_000_123;

describe('prettyLine', () => {
  it('shows time, index, type, session and a summary chosen by the type', () => {
    const env = { index: 7, emitted_at_ms: T, frame_depth: null, session_id: 's1' };
    const cases: [object, string][] = [
      [{ ...env, type: 'message_chunk', role: 'assistant', content: 'Hello\nworld' }, 'message_chunk [s1] Hello⏎world'],
      [{ ...env, type: 'tool_call', tool_call_id: 'c1', tool_name: 'read_file', input: { path: 'a.ts' } }, 'tool_call [s1] read_file {"path":"a.ts"}'],
      [{ ...env, type: 'tool_result', tool_call_id: 'c1', is_error: false, output: 'done' }, 'tool_result [s1] ok done'],
      [{ ...env, type: 'tool_result', is_error: true, output: 'ENOENT' }, 'tool_result [s1] error ENOENT'],
      [{ ...env, type: 'tool_call_update', tool_name: 'edit', status: 'pending', raw_input_partial: '{"pa' }, 'tool_call_update [s1] edit pending {"pa'],
      [{ ...env, type: 'iteration_end', iteration: 3, ok: true, usage: { input_tokens: 5 } }, 'iteration_end [s1] iteration=3 ok=true'],
      [{ index: 7, emitted_at_ms: T, frame_depth: null, type: 'events_dropped', count: 12 }, 'events_dropped 12 events lost'],
      [{ index: 7, emitted_at_ms: T, frame_depth: null, type: 'event_rejected', reason: 'TypeError: x' }, 'event_rejected rejected: TypeError: x'],
    ];
    for (const [event, rest] of cases) expect(prettyLine(event, '', plain)).toBe(`${at(T)} #7 ${rest}`);
  });

  it("reads pino's, winston's and LogTape's lines, event-log records, and passes anything else through", () => {
    expect(prettyLine({ level: 30, time: T, pid: 1, hostname: 'h', msg: 'started', port: 80 }, '', plain)).toBe(`${at(T)} #- info started`);
    expect(prettyLine({ level: 'warn', message: 'slow', timestamp: new Date(T).toISOString() }, '', plain)).toBe(`${at(T)} #- warn slow`);
    expect(prettyLine({ id: 3, kind: 'tool_call', payload: { index_hint: 9, session_id: 's2', event: { type: 'tool_call', tool_name: 'grep', input: 'x' } }, headers: {}, occurred_at_ms: T }, '', plain)).toBe(
      `${at(T)} #3 tool_call [s2] grep x`,
    );
    expect(prettyLine({ id: 4, kind: 'step', payload: { n: 1 }, headers: {}, occurred_at_ms: T }, '', plain)).toBe(`${at(T)} #4 step n=1`);
    expect(prettyLine(undefined, 'not json at all', plain)).toBe('not json at all');
    expect(prettyLine([1, 2], '[1,2]', plain)).toBe('[1,2]');
    expect(styled('{"type":"x","a":1}', { pretty: false, color: false, width: 10 })).toBe('{"type":"x","a":1}');
  });

  it('never lets a value control the terminal: escape sequences, carriage returns and bidi overrides are shown as escapes', () => {
    const hostile = { index: 1, emitted_at_ms: T, type: 'message_chunk\u001b[2J', session_id: 's\u202e1', content: 'a\u001b[31mred\u0007\rover\u009bz' };
    const line = prettyLine(hostile, '', plain);
    expect(line).toBe(`${at(T)} #1 message_chunk\\u001b[2J [s\\u202e1] a\\u001b[31mred\\u0007\\u000dover\\u009bz`);
    expect(prettyLine(undefined, 'plain \u001b]0;title\u0007 text', plain)).toBe('plain \\u001b]0;title\\u0007 text');
  });

  it('colours the type by what it is, and cuts the summary to the width', () => {
    const line = prettyLine({ index: 1, emitted_at_ms: T, type: 'tool_result', is_error: true, output: 'x'.repeat(500) }, '', { color: true, width: 80 });
    expect(line).toContain('\u001b[1;31mtool_result\u001b[0m');
    // eslint-disable-next-line no-control-regex
    const visible = line.replace(/\u001b\[[0-9;]*m/g, '');
    expect(visible).toHaveLength(80);
    expect(visible.endsWith('…')).toBe(true);
    expect(prettyLine({ index: 1, emitted_at_ms: T, type: 'tool_call', tool_name: 't' }, '', { color: true, width: 80 })).toContain('\u001b[1;33mtool_call');
  });
});

describe('when to colour and when to be readable', () => {
  it('NO_COLOR wins, FORCE_COLOR forces (0/false off), else a terminal decides', () => {
    expect(colorWanted(true, {})).toBe(true);
    expect(colorWanted(false, {})).toBe(false);
    expect(colorWanted(true, { NO_COLOR: '1' })).toBe(false);
    expect(colorWanted(true, { NO_COLOR: '' })).toBe(true);
    expect(colorWanted(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorWanted(true, { FORCE_COLOR: '0' })).toBe(false);
    expect(colorWanted(false, { FORCE_COLOR: '1', NO_COLOR: '1' })).toBe(false);
  });

  it('readable on a terminal (its width), as written when piped; --json and --pretty decide instead', () => {
    expect(lineStyle({}, { isTTY: true, columns: 100 })).toMatchObject({ pretty: true, width: 100 });
    expect(lineStyle({}, { isTTY: false })).toMatchObject({ color: false });
    expect(lineStyle({}, { isTTY: true, columns: 0 })).toMatchObject({ pretty: true, width: 120 });
    expect(lineStyle({}, { isTTY: false })).toMatchObject({ pretty: false });
    expect(lineStyle({ json: true }, { isTTY: true })).toMatchObject({ pretty: false, color: false });
    expect(lineStyle({ pretty: true }, { isTTY: false })).toMatchObject({ pretty: true, width: Infinity });
  });
});
