// Issue 14: `ringlog/pino`, with the real pino. In-process: every pino line arrives with ringlog's
// envelope in front of pino's own bytes (levels, child loggers, serializers and pino's redaction
// untouched), chunks and partial lines, the sonic-boom surface (flush, flushSync, end, events), the
// options. In child processes (natural end, process.exit(), an uncaught exception, SIGTERM): every
// line logged is in the file — as a destination on the main thread and as a transport target in
// pino's own thread.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ringlogDestination, type RinglogDestination } from '../dist/src/bridges/pino.js';
import { readLines, tempDirs } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** The destination, and every chunk pino handed to its write(). */
function spied(options: Parameters<typeof ringlogDestination>[0]): { dest: RinglogDestination; written: string[] } {
  const dest = ringlogDestination(options);
  const written: string[] = [];
  const write = dest.write.bind(dest);
  dest.write = (data) => {
    written.push(String(data));
    return write(data);
  };
  return { dest, written };
}

const flushed = (dest: RinglogDestination): Promise<void> => new Promise((resolve, reject) => dest.flush((err) => (err ? reject(err) : resolve())));
const closed = (dest: RinglogDestination): Promise<void> => new Promise((resolve) => dest.end().once('close', () => resolve()));

describe('ringlogDestination with pino', () => {
  it("writes each pino line after ringlog's envelope with pino's bytes unchanged: levels, child loggers, serializers, pino's redaction", async () => {
    const dir = dirs.make('pino-lines');
    const { dest, written } = spied({ path: path.join(dir, 'app.jsonl') });
    const log = pino({ level: 'trace', redact: ['req.headers.authorization'], serializers: { user: (u: { id: number }) => ({ id: u.id }) } }, dest);
    log.trace('t');
    log.info({ user: { id: 7, password: 'p' } }, 'hello "quoted" 東京 🙂');
    const child = log.child({ session: 's1' });
    child.warn({ req: { headers: { authorization: 'Bearer x' } } }, 'call');
    child.error(new Error('boom'));
    log.fatal({ nested: { a: [1, 2.5, null, true] } }, 'end');
    await flushed(dest);
    const { raw } = readLines(dir, 'app.jsonl');
    expect(raw).toHaveLength(5);
    raw.forEach((line, i) => {
      const emitted = (JSON.parse(line) as { emitted_at_ms: number }).emitted_at_ms;
      // Byte for byte: the envelope, then pino's line from its first field on.
      expect(line).toBe(`{"index":${i},"emitted_at_ms":${emitted},"frame_depth":null,` + written[i]!.trimEnd().slice(1));
    });
    const parsed = raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((p) => p.level)).toEqual([10, 30, 40, 50, 60]);
    expect(parsed[1]).toMatchObject({ user: { id: 7 }, msg: 'hello "quoted" 東京 🙂' });
    expect(parsed[1]!.user).toEqual({ id: 7 });
    expect(parsed[2]).toMatchObject({ session: 's1', req: { headers: { authorization: '[Redacted]' } } });
    expect(parsed[3]).toMatchObject({ session: 's1', err: { type: 'Error', message: 'boom' } });
    await closed(dest);
  });

  it("renames pino fields named like the envelope (index, emitted_at_ms, frame_depth) as handleEvent does; the file's index stays gap-free", async () => {
    const dir = dirs.make('pino-rename');
    const dest = ringlogDestination({ path: path.join(dir, 'app.jsonl') });
    const log = pino({ base: null, timestamp: false }, dest);
    log.info({ index: 41, frame_depth: 2, event_index: 'kept' }, 'loop');
    log.info({ emitted_at_ms: 'mine' });
    await closed(dest);
    const lines = readLines(dir, 'app.jsonl').raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.index)).toEqual([0, 1]);
    expect(lines[0]).toMatchObject({ frame_depth: null, event_event_index: 41, event_frame_depth: 2, event_index: 'kept', msg: 'loop' });
    expect(lines[1]).toMatchObject({ event_emitted_at_ms: 'mine' });
    expect(typeof lines[1]!.emitted_at_ms).toBe('number');
  });

  it('takes chunks as they come: several lines, a line split across writes, Buffers, blank lines; text that is not a JSON object is kept as a log_line', async () => {
    const dir = dirs.make('pino-chunks');
    const dest = ringlogDestination(path.join(dir, 'app.jsonl'));
    // A character split across two Buffers, and a newline on its own: one event, none.
    const split = Buffer.from('{"z":"日"}\n');
    dest.write(split.subarray(0, 7));
    dest.write(split.subarray(7));
    dest.write('\n');
    expect(dest.write('{"a":1}\n{"b":2}\n{"c"')).toBe(true);
    dest.write(':3}');
    dest.write('\n\n   \n');
    dest.write(Buffer.from('{"d":"é"}\nplain text\r\n[1,2]\n{"e":'));
    dest.write('5'); // no newline yet: written by end()
    await closed(dest);
    const lines = readLines(dir, 'app.jsonl').raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map(({ index, emitted_at_ms, frame_depth, ...rest }) => rest)).toEqual([
      { z: '日' },
      { a: 1 },
      { b: 2 },
      { c: 3 },
      { d: 'é' },
      { type: 'log_line', line: 'plain text' },
      { type: 'log_line', line: '[1,2]' },
      { type: 'log_line', line: '{"e":5' },
    ]);
    expect(lines.map((l) => l.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });

  it("has sonic-boom's surface: 'ready', flush(cb), flushSync(), reopen(), end() → 'finish' then 'close'; a write after end is an 'error'", async () => {
    const dir = dirs.make('pino-surface');
    const file = path.join(dir, 'app.jsonl');
    const dest = ringlogDestination({ dest: file });
    const events: string[] = [];
    for (const e of ['ready', 'finish', 'close']) dest.on(e, () => events.push(e));
    const errors: Error[] = [];
    dest.on('error', (err: Error) => errors.push(err));
    await new Promise((r) => dest.once('ready', r));
    expect(dest.file).toBe(file);
    const log = pino(dest);
    log.info('one');
    dest.flushSync();
    expect(readLines(dir, 'app.jsonl').raw).toHaveLength(1);
    log.info('two');
    dest.reopen();
    await flushed(dest);
    expect(readLines(dir, 'app.jsonl').raw).toHaveLength(2);
    await closed(dest);
    expect(events).toEqual(['ready', 'ready', 'finish', 'close']);
    expect(dest.write('{"late":true}\n')).toBe(false);
    expect(errors.map((e) => e.message)).toEqual(['ringlog: write after end on a ringlog pino destination']);
    expect(dest.sink.stats().written).toBe(2);
  });

  it('appends by default (as pino.destination does), continuing the indexes; mode, redact and the other sink options pass through', async () => {
    const dir = dirs.make('pino-options');
    const file = path.join(dir, 'app.jsonl');
    for (const run of [1, 2]) {
      const dest = ringlogDestination({ path: file });
      pino(dest).info({ run }, 'start');
      await closed(dest);
    }
    expect(readLines(dir, 'app.jsonl').raw.map((l) => (JSON.parse(l) as { index: number }).index)).toEqual([0, 1]);
    const fresh = ringlogDestination({ path: file, mode: 'truncate', redact: true });
    pino(fresh).info({ password: 'hunter2', url: 'https://u:secret@h/x?token=abc' }, 'login');
    await closed(fresh);
    const [line] = readLines(dir, 'app.jsonl').raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(line).toMatchObject({ index: 0, password: '[redacted]', url: 'https://[redacted]@h/x?token=[redacted]', msg: 'login' });
  });

  it('rejects bad options synchronously, naming them', () => {
    const dir = dirs.make('pino-bad');
    expect(() => ringlogDestination({} as never)).toThrow(new TypeError('ringlog: ringlogDestination needs a path (a non-empty string)'));
    expect(() => ringlogDestination(null as never)).toThrow(new TypeError('ringlog: ringlogDestination expects options with a path (or the path itself), got null'));
    expect(() => ringlogDestination({ path: 'a', dest: 'b' })).toThrow(new TypeError('ringlog: ringlogDestination takes path or dest, not both'));
    expect(() => ringlogDestination({ path: path.join(dir, 'x.jsonl'), sync: true } as never)).toThrow(new TypeError('ringlog: unknown option "sync"'));
    expect(() => ringlogDestination({ path: path.join(dir, 'x.jsonl'), rotateBytes: -1 })).toThrow(RangeError);
  });
});

/** A script run from a directory inside the repository, so `ringlog/pino` and `pino` resolve as in an application. */
function runApp(source: string, args: string[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> {
  // An app that prints "kill me" is sent SIGTERM then, from outside: a signal a process sends
  // itself as its loop runs dry is never handled (Node ends first, with or without ringlog).
  const root = path.join(REPO, '.ringlog-tmp');
  fs.mkdirSync(root, { recursive: true });
  const dir = fs.mkdtempSync(path.join(root, 'pino-app-'));
  const file = path.join(dir, 'app.mjs');
  fs.writeFileSync(file, source);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('kill me')) child.kill('SIGTERM');
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal, stderr });
    });
  });
}

const LINES = 20_000;
/** How the app ends, after logging LINES lines in a tight loop. */
const ENDINGS = {
  natural: '',
  'process.exit()': 'process.exit(0);',
  'an uncaught exception': "setImmediate(() => { throw new Error('crash'); });",
  SIGTERM: "setInterval(() => {}, 1000); console.log('kill me');",
} as const;

function expectComplete(dir: string): void {
  const lines = readLines(dir, 'app.jsonl').raw.map((l) => JSON.parse(l) as { index: number; i: number; msg: string });
  expect(lines).toHaveLength(LINES);
  lines.forEach((l, k) => {
    if (l.index !== k || l.i !== k) throw new Error(`line ${k}: index ${l.index}, i ${l.i}`);
  });
}

describe('every line logged is in the file at any exit', () => {
  for (const [ending, code] of Object.entries(ENDINGS)) {
    it(`pino(ringlogDestination()) on the main thread: ${ending}`, async () => {
      const dir = dirs.make('pino-exit');
      const r = await runApp(`import pino from 'pino';
import { ringlogDestination } from 'ringlog/pino';
const log = pino(ringlogDestination({ path: process.argv[2], mode: 'truncate' }));
for (let i = 0; i < ${LINES}; i++) log.info({ i }, 'step');
${code}`, [path.join(dir, 'app.jsonl')]);
      if (ending === 'an uncaught exception') expect(r.stderr).toContain('Error: crash');
      else expect(r.stderr).toBe('');
      expect(r.signal ?? 'none').toBe(ending === 'SIGTERM' ? 'SIGTERM' : 'none');
      expectComplete(dir);
    });
  }

  // In pino's thread the sink hears no signal: an application that does not handle SIGTERM dies of
  // it before any thread can write, as with every pino transport (README). Handled by an exit, it
  // is like process.exit(): pino ends its transport and the sink writes everything.
  const TRANSPORT_ENDINGS = { ...ENDINGS, 'SIGTERM handled by process.exit(143)': "process.on('SIGTERM', () => process.exit(143)); setInterval(() => {}, 1000); console.log('kill me');" };
  for (const [ending, code] of Object.entries(TRANSPORT_ENDINGS).filter(([e]) => e !== 'SIGTERM')) {
    it(`pino.transport({ target: 'ringlog/pino' }), the sink in pino's thread: ${ending}`, async () => {
      const dir = dirs.make('pino-transport');
      const r = await runApp(`import pino from 'pino';
const log = pino(pino.transport({ target: 'ringlog/pino', options: { path: process.argv[2], mode: 'truncate' } }));
for (let i = 0; i < ${LINES}; i++) log.info({ i }, 'step');
${code}`, [path.join(dir, 'app.jsonl')]);
      if (ending === 'an uncaught exception') expect(r.stderr).toContain('Error: crash');
      else expect(r.stderr).toBe('');
      expect(r.code).toBe(ending === 'an uncaught exception' ? 1 : ending.startsWith('SIGTERM') ? 143 : 0);
      expectComplete(dir);
    });
  }
});
