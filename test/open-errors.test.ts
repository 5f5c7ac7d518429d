// Contract 4 (opening): an unusable path fails at open, synchronously, with a SinkError
// (code ERR_RINGLOG_OPEN) that names the path and the cause; bad arguments fail with a TypeError
// or RangeError naming the argument or option, before anything is created.

import { afterEach, describe, expect, it } from 'vitest';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { JsonlEventSink, SinkError } from '../dist/src/index.js';
import { BASE_NAME, readLines, runChild, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

/** What open() throws, synchronously (undefined if it returned a sink, which is then closed). */
function openError(basePath: unknown, options?: unknown): unknown {
  try {
    const sink = JsonlEventSink.open(basePath as string, options as never);
    void sink.close();
  } catch (err) {
    return err;
  }
  return undefined;
}

function expectOpenError(err: unknown, abs: string, cause: RegExp): void {
  expect(err).toBeInstanceOf(SinkError);
  expect(err).toBeInstanceOf(Error);
  const e = err as SinkError;
  expect(e.name).toBe('SinkError');
  expect(e.code).toBe('ERR_RINGLOG_OPEN');
  expect(e.sink).toBe(abs);
  expect(e.droppedEvents).toBe(0);
  expect(e.message).toContain(`"${abs}"`);
  expect(e.message).toMatch(cause);
  expect(e.cause).toBeDefined();
}

describe('open() on an unusable path', () => {
  it('fails when a parent of the path is a regular file', () => {
    const dir = dirs.make('open-under-file');
    const file = path.join(dir, 'plain.txt');
    fs.writeFileSync(file, 'I am a file');
    for (const mode of ['truncate', 'append'] as const) {
      const direct = path.join(file, BASE_NAME);
      expectOpenError(openError(direct, { mode }), direct, /cannot create its directory.*(EEXIST|ENOTDIR)/);
      const deeper = path.join(file, 'sub', 'dir', BASE_NAME);
      expectOpenError(openError(deeper, { mode }), deeper, /cannot create its directory.*ENOTDIR/);
    }
    expect(fs.readFileSync(file, 'utf8')).toBe('I am a file');
  });

  it('fails when the path is a directory', () => {
    const dir = dirs.make('open-dir');
    const target = path.join(dir, 'a-directory');
    fs.mkdirSync(target);
    expectOpenError(openError(target), target, /EISDIR/);
    expectOpenError(openError(target, { mode: 'append' }), target, /EISDIR/);
    expect(fs.statSync(target).isDirectory()).toBe(true);
  });

  it('reports a relative path as the absolute path it resolved to', () => {
    const dir = dirs.make('open-relative');
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, '');
    const rel = path.relative(process.cwd(), path.join(file, BASE_NAME));
    expectOpenError(openError(rel), path.resolve(rel), /cannot create its directory/);
  });

  it('fails in a directory without write permission (unprivileged child, uid 65534)', async () => {
    const dir = dirs.make('open-readonly');
    fs.chmodSync(dir, 0o755);
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro, { mode: 0o555 });
    fs.chmodSync(ro, 0o555);
    // A read-only existing file in a writable directory.
    const rw = path.join(dir, 'rw');
    fs.mkdirSync(rw, { mode: 0o777 });
    fs.chmodSync(rw, 0o777);
    const roFile = path.join(rw, 'locked.jsonl');
    fs.writeFileSync(roFile, '');
    fs.chmodSync(roFile, 0o444);
    const targets = [
      { base: path.join(ro, BASE_NAME), mode: 'truncate' },
      { base: path.join(ro, BASE_NAME), mode: 'append' },
      { base: path.join(ro, 'sub', BASE_NAME), mode: 'truncate' },
      { base: roFile, mode: 'truncate' },
      { base: roFile, mode: 'append' },
    ];
    const res = await runChild(
      `import { JsonlEventSink, SinkError } from '%RINGLOG%';
       const out = [];
       for (const t of JSON.parse(process.argv[2])) {
         try {
           JsonlEventSink.open(t.base, { mode: t.mode });
           out.push({ opened: true });
         } catch (e) {
           out.push({ isSinkError: e instanceof SinkError, code: e.code, sink: e.sink, message: e.message, cause: e.cause && e.cause.code });
         }
       }
       console.log(JSON.stringify({ uid: process.getuid(), out }));
       process.exit(0);`,
      [JSON.stringify(targets)],
      // Root ignores permission bits: drop to nobody (tests run as root; an unprivileged runner is nobody already).
      process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {},
    );
    expect(res.timedOut).toBe(false);
    expect(res.code, res.stderr).toBe(0);
    const { uid, out } = JSON.parse(res.stdout) as { uid: number; out: { isSinkError?: boolean; code?: string; sink?: string; message?: string; cause?: string; opened?: boolean }[] };
    expect(uid).not.toBe(0);
    expect(out).toHaveLength(targets.length);
    out.forEach((o, i) => {
      expect(o, `target ${i}`).toMatchObject({ isSinkError: true, code: 'ERR_RINGLOG_OPEN', sink: targets[i]!.base, cause: 'EACCES' });
      expect(o.message).toContain(targets[i]!.base);
      expect(o.message).toContain('EACCES');
    });
    expect(fs.readdirSync(ro)).toEqual([]);
  });
});

describe('open() argument validation', () => {
  it('rejects a basePath that is not a non-empty string with a TypeError', () => {
    for (const bad of [undefined, null, 42, {}, [], true, Symbol('p'), new URL('file:///tmp/x.jsonl')]) {
      const err = openError(bad);
      expect(err, String(typeof bad)).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/basePath must be a string/);
    }
    const empty = openError('');
    expect(empty).toBeInstanceOf(TypeError);
    expect((empty as Error).message).toMatch(/basePath must not be empty/);
  });

  it('rejects options that are not an object, and unknown options, with a TypeError', () => {
    const dir = dirs.make('options-object');
    const base = path.join(dir, 'never', BASE_NAME);
    for (const bad of [null, 'truncate', 5, [], true]) {
      const err = openError(base, bad);
      expect(err, String(bad)).toBeInstanceOf(TypeError);
      expect((err as Error).message).toMatch(/options must be an object/);
    }
    const unknown = openError(base, { rotatebytes: 10 });
    expect(unknown).toBeInstanceOf(TypeError);
    expect((unknown as Error).message).toContain('"rotatebytes"');
    expect(fs.existsSync(path.dirname(base))).toBe(false);
  });

  // [option, bad value, error class, what the message says]
  const cases: [string, unknown, typeof TypeError | typeof RangeError, RegExp][] = [
    ['rotateBytes', '1024', TypeError, /must be a number, got string/],
    ['rotateBytes', null, TypeError, /must be a number, got null/],
    ['rotateBytes', 0, RangeError, /integer from 1/],
    ['rotateBytes', -5, RangeError, /integer from 1/],
    ['rotateBytes', 1.5, RangeError, /integer/],
    ['rotateBytes', NaN, RangeError, /integer/],
    ['rotateBytes', Infinity, RangeError, /integer/],
    ['mode', 1, TypeError, /must be a string, got number/],
    ['mode', 'rewrite', RangeError, /'truncate', 'append'.*got 'rewrite'/],
    ['mode', 'APPEND', RangeError, /got 'APPEND'/],
    ['ringBytes', '65536', TypeError, /must be a number/],
    ['ringBytes', 1024, RangeError, /integer from 65536/],
    ['ringBytes', 100_000, RangeError, /power of two/],
    ['ringBytes', 2 ** 31, RangeError, /integer from 65536 to 1073741824/],
    ['ringBytes', 65536.5, RangeError, /integer/],
    ['overload', false, TypeError, /must be a string/],
    ['overload', 'queue', RangeError, /'buffer', 'block', 'drop'.*got 'queue'/],
    ['maxBufferBytes', {}, TypeError, /must be a number, got object/],
    ['maxBufferBytes', -1, RangeError, /integer from 0/],
    ['blockTimeoutMs', '10', TypeError, /must be a number/],
    ['blockTimeoutMs', -1, RangeError, /integer from 0/],
    ['blockTimeoutMs', 2 ** 31, RangeError, /to 2147483647/],
    ['maxDepth', [], TypeError, /must be a number, got an array/],
    ['maxDepth', 0, RangeError, /integer from 1 to 10000/],
    ['maxDepth', 10_001, RangeError, /integer from 1 to 10000/],
    ['exitTimeoutMs', true, TypeError, /must be a number, got boolean/],
    ['exitTimeoutMs', -1, RangeError, /integer from 0/],
    ['exitTimeoutMs', 0.5, RangeError, /integer/],
    ['onError', 'log', TypeError, /must be a function, got string/],
    ['onError', {}, TypeError, /must be a function, got object/],
    ['writerResourceLimits', 64, TypeError, /must be an object, got number/],
    ['writerResourceLimits', { maxOldGenerationSizeMb: '64' }, TypeError, /field "maxOldGenerationSizeMb" must be a number, got string/],
    ['writerResourceLimits', { maxOldGenerationSizeMb: 0 }, RangeError, /field "maxOldGenerationSizeMb" must be a positive number, got 0/],
    ['writerResourceLimits', { heapMb: 64 }, TypeError, /field "heapMb" is unknown/],
  ];

  it.each(cases)('option %s = %o throws %o naming the option', (name, value, cls, says) => {
    const dir = dirs.make('options-bad');
    const base = path.join(dir, 'never', BASE_NAME);
    const err = openError(base, { [name]: value });
    expect(err).toBeInstanceOf(cls);
    expect((err as Error).message).toContain(`option "${name}"`);
    expect((err as Error).message).toMatch(says);
    // Validation happens before anything touches the disk.
    expect(fs.existsSync(path.dirname(base))).toBe(false);
  });

  it('treats undefined options as defaults and accepts every option at a valid value', async () => {
    const dir = dirs.make('options-good');
    const base = path.join(dir, BASE_NAME);
    const sink = JsonlEventSink.open(base, {
      rotateBytes: 1,
      mode: 'truncate',
      ringBytes: 65536,
      overload: 'block',
      maxBufferBytes: 0,
      blockTimeoutMs: 0,
      maxDepth: 10_000,
      exitTimeoutMs: 0,
      onError: () => {},
    });
    sink.handleEvent({ type: 'ok' });
    await sink.close();
    const undef = JsonlEventSink.open(base, { rotateBytes: undefined, mode: undefined, ringBytes: undefined, onError: undefined });
    expect(undef.stats().ringBytes).toBe(4 * 1024 * 1024);
    undef.handleEvent({ type: 'again' });
    await undef.close();
    // Truncate (the default) started over.
    expect(readLines(dir).lines.map((l) => [l.index, l.type])).toEqual([[0, 'again']]);
    for (const o of ['buffer', 'drop'] as const) {
      const s = JsonlEventSink.open(path.join(dir, `${o}.jsonl`), { overload: o, ringBytes: 131072 });
      await s.close();
    }
  });
});
