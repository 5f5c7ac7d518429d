// Issue 6: the `ringlog` command, run as users run it — the built bin in a child process — against
// sets written by a real, rotating JsonlEventSink: what each command prints, its exit status, its
// conventions (stdout for data, stderr for diagnostics, --help everywhere, stdin with `-`, a closed
// pipe ending it quietly), and that the package's bin and files point at what the build made.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsonlEventSink, openEventLog } from '../dist/src/index.js';
import { startRedis } from '../dist/bench/redis-server.js';
import { makeCorpus } from '../dist/demo/corpus.js';
import { lastLines } from '../dist/src/cli/tail.js';
import { BASE_NAME, readLines, segmentName, tempDirs, type LogSet } from './helpers.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
/** ~1.3 KB lines of the large corpus: 600 of them make several segments and well over a pipe's 64 KiB. */
const EVENTS = 600;
/** Small segments, so every command has to cross several files. */
const ROTATE_BYTES = 100_000;
/** A deadline for each child: far beyond what any of these runs needs, only there so a hang fails. */
const CHILD_TIMEOUT_MS = 60_000;

const dirs = tempDirs();

interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stdoutBytes: Buffer;
  stderr: string;
}

interface CliOptions {
  /** Written to the child's stdin, which is then closed; without it stdin is /dev/null. */
  input?: Buffer | string;
  cwd?: string;
  /** The child's whole environment (default: this process's, without the colour variables). */
  env?: NodeJS.ProcessEnv;
}

/** This environment without NO_COLOR / FORCE_COLOR (vitest may set them), so each test says what it wants. */
function plainEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const { NO_COLOR: _n, FORCE_COLOR: _f, ...rest } = process.env;
  return { ...rest, ...extra };
}

function cli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      cwd: opts.cwd ?? REPO,
      env: opts.env ?? plainEnv(),
    });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => out.push(d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    if (opts.input !== undefined) {
      // A command may stop reading before the end (--to reached) and exit: not an error here.
      child.stdin!.on('error', () => undefined);
      child.stdin!.end(opts.input);
    }
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const stdoutBytes = Buffer.concat(out);
      resolve({ code, signal, stdout: stdoutBytes.toString('utf8'), stdoutBytes, stderr });
    });
  });
}

interface Running {
  readonly child: ReturnType<typeof spawn>;
  /** What it printed so far. */
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** The CLI as a long-running child (-f), its output collected as it comes. */
function start(args: readonly string[], env: NodeJS.ProcessEnv = process.env): Running {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  return { child, stdout: () => stdout, stderr: () => stderr, exited };
}

/** Polls until `check` holds; fails (rather than hangs) past the child deadline. */
async function until(what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + CHILD_TIMEOUT_MS;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function writeSet(dir: string, events: readonly Record<string, unknown>[], rotateBytes = ROTATE_BYTES): Promise<string> {
  const base = path.join(dir, BASE_NAME);
  const sink = JsonlEventSink.open(base, { rotateBytes });
  for (const ev of events) sink.handleEvent(ev);
  await sink.close();
  return base;
}

function indexesOf(text: string): number[] {
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => (JSON.parse(l) as { index: number }).index);
}

const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

let dir: string;
let base: string;
let set: LogSet;
/** The files of the set, concatenated in order: what `cat` must reproduce byte for byte. */
let allBytes: Buffer;

beforeAll(async () => {
  dir = dirs.make('cli');
  base = await writeSet(dir, makeCorpus(EVENTS, 7));
  set = readLines(dir);
  allBytes = Buffer.concat(set.files.map((f) => fs.readFileSync(f.path)));
});

afterAll(() => dirs.cleanup());

describe('the test set', () => {
  it('spans several segments', () => {
    expect(set.files.length).toBeGreaterThanOrEqual(4);
    expect(set.lines.map((l) => l.index)).toEqual(range(0, EVENTS - 1));
  });
});

describe('ringlog cat', () => {
  it('prints every line of every segment, in order, byte for byte', async () => {
    const r = await cli(['cat', base]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdoutBytes.equals(allBytes)).toBe(true);
  });

  it('takes the directory for its event_log.jsonl', async () => {
    const r = await cli(['cat', dir]);
    expect(r.code).toBe(0);
    expect(r.stdoutBytes.equals(allBytes)).toBe(true);
  });

  it('selects by --from, --to and repeated --type', async () => {
    const from = 37;
    const to = 488;
    const types = ['tool_call', 'judge'];
    const r = await cli(['cat', base, '--from', String(from), '--to', String(to), '--type', types[0]!, '--type', types[1]!]);
    expect(r.code).toBe(0);
    const want = set.raw.filter((_, i) => {
      const l = set.lines[i]!;
      return l.index >= from && l.index <= to && types.includes(l.type!);
    });
    expect(want.length).toBeGreaterThan(10);
    expect(r.stdout).toBe(want.map((l) => l + '\n').join(''));
  });

  it('reads NDJSON from stdin with -, and with no argument when stdin is not a terminal', async () => {
    for (const args of [['cat', '-'], ['cat']]) {
      const r = await cli(args, { input: allBytes });
      expect(r.code).toBe(0);
      expect(r.stdoutBytes.equals(allBytes)).toBe(true);
    }
    const some = await cli(['cat', '--from', '10', '--to', '12'], { input: allBytes });
    expect(indexesOf(some.stdout)).toEqual([10, 11, 12]);
  });

  it('fails at a gap, after printing what came before it; --warn reports it and goes on', async () => {
    const broken = dirs.make('cli-cat-gap');
    fs.writeFileSync(path.join(broken, BASE_NAME), set.raw.slice(0, 20).filter((_, i) => i !== 5).map((l) => l + '\n').join(''));
    const strict = await cli(['cat', broken]);
    expect(strict.code).toBe(1);
    expect(indexesOf(strict.stdout)).toEqual(range(0, 4));
    expect(strict.stderr).toMatch(/^ringlog: .*index 6 where 5 was expected/);
    expect(strict.stderr.trim().split('\n')).toHaveLength(1);
    const lenient = await cli(['cat', '--warn', broken]);
    expect(lenient.code).toBe(0);
    expect(indexesOf(lenient.stdout).slice(0, 6)).toEqual([0, 1, 2, 3, 4, 6]);
    expect(lenient.stderr).toMatch(/^ringlog: warning: .*index 6 where 5 was expected/);
  });

  it('ends quietly with 0 when the reader of its stdout goes away (| head -1)', async () => {
    const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      // The shell reports cat's own status on stderr; head takes one line and closes the pipe.
      const sh = spawn('sh', ['-c', '{ "$0" "$1" cat "$2"; echo "status=$?" >&2; } | head -n 1', process.execPath, MAIN, base], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      sh.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
      sh.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
      sh.on('error', reject);
      sh.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(allBytes.length).toBeGreaterThan(4 * 64 * 1024);
    expect(r.stdout).toBe(set.raw[0] + '\n');
    expect(r.stderr).toBe('status=0\n');
  });
});

describe('ringlog tail', () => {
  it('prints the last K lines (10 by default), across the last segments', async () => {
    const ten = await cli(['tail', base]);
    expect(ten.code).toBe(0);
    expect(ten.stdout).toBe(set.raw.slice(-10).map((l) => l + '\n').join(''));
    // More lines than the last segment holds.
    const last = set.files[set.files.length - 1]!;
    const k = last.raw.length + 25;
    const many = await cli(['tail', '-n', String(k), base]);
    expect(many.stdout).toBe(set.raw.slice(-k).map((l) => l + '\n').join(''));
    const none = await cli(['tail', '-n', '0', base]);
    expect(none.stdout).toBe('');
    const all = await cli(['tail', '-n', String(EVENTS * 2), base]);
    expect(all.stdoutBytes.equals(allBytes)).toBe(true);
  });

  it('tails stdin', async () => {
    const r = await cli(['tail', '-n', '3', '-'], { input: allBytes });
    expect(indexesOf(r.stdout)).toEqual(range(EVENTS - 3, EVENTS - 1));
  });

  it('-f prints what is appended (across rotations) until SIGINT, then exits 0', async () => {
    const live = dirs.make('cli-follow');
    const liveBase = await writeSet(live, makeCorpus(50, 11));
    const { child, stdout, stderr, exited } = start(['tail', '-f', '-n', '3', liveBase]);
    try {
      await until('the first three lines', () => stdout().split('\n').length > 3);
      const more = 300;
      const sink = JsonlEventSink.open(liveBase, { mode: 'append', rotateBytes: ROTATE_BYTES });
      for (const ev of makeCorpus(more, 12)) sink.handleEvent(ev);
      await sink.close();
      const lastIndex = 50 + more - 1;
      await until(`index ${lastIndex}`, () => stdout().includes(`{"index":${lastIndex},`));
      expect(fs.readdirSync(live).filter((n) => n.startsWith('event_log-')).length).toBeGreaterThan(1);
      child.kill('SIGINT');
      const { code, signal } = await exited;
      expect(signal).toBe(null);
      expect(code).toBe(0);
      expect(stderr()).toBe('');
      expect(indexesOf(stdout())).toEqual(range(47, lastIndex));
      // Lines arrive as the files hold them.
      expect(stdout()).toBe(readLines(live).raw.slice(47).map((l) => l + '\n').join(''));
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('event-log topics: ringlog topics, cat/tail/stats --topic', () => {
  it('lists and reads a file log read-only: topics, cat --from/--to/--type, tail -n, stats; bad usage exits 2', async () => {
    const dir = dirs.make('cli-topics-file');
    const log = await openEventLog({ backend: 'file', dir });
    for (let i = 1; i <= 2500; i++) void log.append('jobs.build-1', { kind: i % 10 === 0 ? 'tool_call' : 'step', payload: { i }, headers: { host: 'a' }, occurred_at_ms: 1_700_000_000_000 + i });
    await log.append('jobs.build-2', { kind: 'step' });
    await log.close();
    const loc = ['--dir', dir];
    const before = fs.readdirSync(dir).sort();

    const listed = await cli(['topics', ...loc]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toBe('jobs.build-1\njobs.build-2\n');
    const listedJson = await cli(['topics', '--backend', 'file', '--dir', dir, '--json']);
    expect(JSON.parse(listedJson.stdout)).toEqual([{ topic: 'jobs.build-1', latest: 2500 }, { topic: 'jobs.build-2', latest: 1 }]);

    const all = await cli(['cat', '--topic', 'jobs.build-1', ...loc]);
    expect(all.code, all.stderr).toBe(0);
    const lines = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; kind: string; payload: { i: number }; headers: object });
    expect(lines.map((e) => e.id)).toEqual(range(1, 2500));
    expect(lines[0]).toEqual({ id: 1, kind: 'step', payload: { i: 1 }, headers: { host: 'a' }, occurred_at_ms: 1_700_000_000_001 });
    const some = await cli(['cat', '--topic', 'jobs.build-1', ...loc, '--from', '2001', '--to', '2050', '--type', 'tool_call']);
    expect(some.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([2010, 2020, 2030, 2040, 2050]);
    const last = await cli(['tail', '--topic', 'jobs.build-1', ...loc, '-n', '3']);
    expect(last.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { id: number }).id)).toEqual([2498, 2499, 2500]);
    const st = await cli(['stats', '--topic', 'jobs.build-1', ...loc, '--json']);
    expect(st.code, st.stderr).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({
      source: 'topic jobs.build-1',
      segments: null,
      events: 2500,
      firstIndex: 1,
      lastIndex: 2500,
      spanMs: 2499,
      types: [{ type: 'step', lines: 2250 }, { type: 'tool_call', lines: 250 }],
      issues: { total: 0 },
    });
    // Read-only: the directory is left exactly as it was (no lock, no new file).
    expect(fs.readdirSync(dir).sort()).toEqual(before);

    const badTopic = await cli(['cat', '--topic', 'a b', ...loc]);
    expect(badTopic.code).toBe(2);
    expect(badTopic.stderr).toMatch(/invalid topic "a b": character " " is not allowed/);
    const badBackend = await cli(['cat', '--topic', 't', '--backend', 'postgres']);
    expect(badBackend.code).toBe(2);
    expect(badBackend.stderr).toMatch(/option backend must be one of memory, file, sqlite, redis/);
    const noUrl = await cli(['topics', '--backend', 'redis']);
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toMatch(/RINGLOG_EVENT_LOG_REDIS_URL/);
    const nowhere = await cli(['topics']);
    expect(nowhere.code).toBe(2);
    expect(nowhere.stderr).toMatch(/which event log\? give --backend/);
    const both = await cli(['cat', dir, '--topic', 't', ...loc]);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/give either <base> .* or --topic, not both/);
    const noTopic = await cli(['stats', dir, '--url', 'redis://127.0.0.1:1']);
    expect(noTopic.code).toBe(2);
    expect(noTopic.stderr).toMatch(/locate an event log: give --topic too/);
  });

  it('tail -f --topic on a Redis log prints the last events, then what another process appends, until SIGINT; an unreachable server exits 1', async () => {
    const serverDir = dirs.make('cli-topics-redis');
    const server = await startRedis(serverDir);
    try {
      const log = await openEventLog({ backend: 'redis', url: server.url });
      for (let i = 1; i <= 5; i++) await log.append('live.topic', { kind: 'k', payload: i });
      expect((await cli(['topics', '--url', server.url])).stdout).toBe('live.topic\n');
      const { child, stdout, stderr, exited } = start(['tail', '-f', '--topic', 'live.topic', '-n', '3'], {
        ...process.env,
        RINGLOG_EVENT_LOG_BACKEND: 'redis',
        RINGLOG_EVENT_LOG_REDIS_URL: server.url,
      });
      try {
        await until('the last 3 events', () => stdout().split('\n').length > 3);
        for (let i = 6; i <= 105; i++) void log.append('live.topic', { kind: 'k', payload: i });
        await log.flush();
        await until('id 105', () => stdout().includes('"id":105,'));
        child.kill('SIGINT');
        const { code, signal } = await exited;
        expect(signal).toBe(null);
        expect(code).toBe(0);
        expect(stderr()).toBe('');
        expect(stdout().trim().split('\n').map((l) => (JSON.parse(l) as { payload: number }).payload)).toEqual(range(3, 105));
      } finally {
        child.kill('SIGKILL');
        await log.close();
      }
      await server.stop();
      const gone = await cli(['cat', '--topic', 'live.topic', '--backend', 'redis', '--url', server.url]);
      expect(gone.code).toBe(1);
      expect(gone.stderr).toContain(`ringlog: cannot reach redis at ${server.url}`);
    } finally {
      await server.stop('SIGKILL');
    }
  }, 60_000);
});

describe("tail's backward reading (in-process)", () => {
  it('finds the last lines (with a filter too) wherever the 64 KiB read blocks start: on a newline, mid-line, in a line longer than a block; an empty first line; no trailing newline', async () => {
    const d = dirs.make('cli-tail-blocks');
    const file = path.join(d, 'set.jsonl');
    const problems: string[] = [];
    // Lines of 64 bytes, after a first line whose length moves every block boundary by one byte.
    for (const pad of [...range(0, 70), 65_600, 200_000]) {
      const first = 'x'.repeat(pad);
      const lines = [first, ...range(0, 2999).map((i) => JSON.stringify({ index: i, type: i % 7 === 0 ? 'seven' : 'other', p: 'y'.repeat(30) }).padEnd(63, ' '))];
      const tornTail = pad % 5 === 0 ? '{"index":3000,"type":"seven"' : '';
      fs.writeFileSync(file, lines.join('\n') + '\n' + tornTail);
      const seg = [{ path: file, number: 0, compressed: false, bytes: fs.statSync(file).size }];
      for (const want of [0, 1, 10, 1500, 5000]) {
        const got = await lastLines(seg, want);
        const expected = lines.slice(Math.max(0, lines.length - want));
        if (JSON.stringify(got.lines) !== JSON.stringify(expected)) problems.push(`pad ${pad}, want ${want}: ${got.lines.length} lines, first ${JSON.stringify(got.lines[0]?.slice(0, 30))}`);
        if (got.last !== lines.at(-1)) problems.push(`pad ${pad}, want ${want}: last ${JSON.stringify(got.last?.slice(0, 30))}`);
        if (got.complete !== want >= lines.length) problems.push(`pad ${pad}, want ${want}: complete ${got.complete}`);
      }
      const sevens = await lastLines(seg, 5, (t) => t.includes('"seven"'));
      const expectedSevens = lines.filter((l) => l.includes('"seven"')).slice(-5);
      if (JSON.stringify(sevens.lines) !== JSON.stringify(expectedSevens)) problems.push(`pad ${pad}: filtered ${JSON.stringify(sevens.lines.map((l) => l.slice(0, 20)))}`);
    }
    fs.writeFileSync(file, '\n{"index":0}\n');
    const empty = await lastLines([{ path: file, number: 0, compressed: false, bytes: 13 }], 5);
    expect(empty.lines).toEqual(['', '{"index":0}']);
    fs.writeFileSync(file, 'no newline at all');
    expect(await lastLines([{ path: file, number: 0, compressed: false, bytes: 17 }], 5)).toEqual({ lines: [], last: undefined, complete: true });
    expect(problems).toEqual([]);
  });
});

describe('readable output, filters and ringlog pretty', () => {
  // eslint-disable-next-line no-control-regex
  const ANSI = /\u001b\[[0-9;]*m/;

  it('cat --pretty prints one readable line per event: time, index, type, session, a summary by type; --json and --pretty together are refused', async () => {
    const r = await cli(['cat', base, '--pretty']);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(EVENTS);
    expect(r.stdout).not.toMatch(ANSI);
    lines.forEach((line, i) => {
      const ev = set.lines[i]! as unknown as { type: string; session_id: string; tool_name?: string; content?: string; is_error?: boolean };
      expect(line).toMatch(new RegExp(`^\\d\\d:\\d\\d:\\d\\d\\.\\d{3} #${i} ${ev.type} \\[${ev.session_id}\\]`));
      if (ev.type === 'tool_call') expect(line).toContain(` ${ev.tool_name} {"path":`);
      if (ev.type === 'tool_result') expect(line).toContain(` ${ev.is_error ? 'error' : 'ok'} `);
      if (ev.type === 'message_chunk') expect(line).toContain(ev.content!.slice(0, 20).replace(/\n/g, '⏎'));
    });
    const both = await cli(['cat', base, '--pretty', '--json']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/option '--json' cannot be used with option '--pretty'/);
  });

  it('colours: FORCE_COLOR turns them on, NO_COLOR off; on a terminal the lines are readable and coloured by default, --json keeps them as written', async () => {
    expect((await cli(['cat', base, '--pretty', '--to', '5'], { env: plainEnv({ FORCE_COLOR: '1' }) })).stdout).toMatch(ANSI);
    expect((await cli(['cat', base, '--pretty', '--to', '5'], { env: plainEnv({ FORCE_COLOR: '1', NO_COLOR: '1' }) })).stdout).not.toMatch(ANSI);
    // A real terminal: script(1) gives the command a pseudo-terminal as its stdout.
    const onTty = (args: string, env: NodeJS.ProcessEnv): Promise<CliResult> =>
      new Promise((resolve, reject) => {
        const child = spawn('script', ['-qfec', `${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} ${args}`, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env });
        const out: Buffer[] = [];
        child.stdout.on('data', (d: Buffer) => out.push(d));
        child.on('error', reject);
        child.on('close', (code, signal) => {
          const bytes = Buffer.concat(out);
          resolve({ code, signal, stdout: bytes.toString('utf8'), stdoutBytes: bytes, stderr: '' });
        });
      });
    const tty = await onTty(`cat ${base} --to 3`, plainEnv());
    expect(tty.stdout).toMatch(ANSI);
    expect(tty.stdout.replace(/\u001b\[[0-9;]*m/g, '')).toMatch(/^\d\d:\d\d:\d\d\.\d{3} #0 /);
    expect((await onTty(`cat ${base} --to 3`, plainEnv({ NO_COLOR: '1' }))).stdout).not.toMatch(ANSI);
    const raw = await onTty(`cat ${base} --to 3 --json`, plainEnv());
    expect(raw.stdout.replace(/\r\n/g, '\n')).toBe(set.raw.slice(0, 4).map((l) => l + '\n').join(''));
  });

  it('filters by --since/--until (ISO or a duration ago), --type, --where on top-level fields and --grep, in cat, tail and stats', async () => {
    const lines = set.lines as unknown as { index: number; emitted_at_ms: number; type: string; is_error?: boolean; tool_name?: string }[];
    const at = (k: number): string => new Date(lines[k]!.emitted_at_ms).toISOString();
    const since = await cli(['cat', base, '--since', at(300), '--until', at(400)]);
    expect(indexesOf(since.stdout)).toEqual(lines.filter((l) => l.emitted_at_ms >= lines[300]!.emitted_at_ms && l.emitted_at_ms <= lines[400]!.emitted_at_ms).map((l) => l.index));
    expect(indexesOf((await cli(['cat', base, '--since', '1h'])).stdout)).toHaveLength(EVENTS);
    expect((await cli(['cat', base, '--until', '1h'])).stdout).toBe('');
    const errors = lines.filter((l) => l.type === 'tool_result' && l.is_error === true).map((l) => l.index);
    expect(errors.length).toBeGreaterThan(0);
    expect(indexesOf((await cli(['cat', base, '--type', 'tool_result', '--where', 'is_error=true'])).stdout)).toEqual(errors);
    const grep = await cli(['cat', base, '--grep', '"tool_name":"grep"']);
    expect(indexesOf(grep.stdout)).toEqual(lines.filter((l) => l.tool_name === 'grep').map((l) => l.index));
    const tailed = await cli(['tail', base, '-n', '3', '--type', 'judge']);
    expect(indexesOf(tailed.stdout)).toEqual(lines.filter((l) => l.type === 'judge').slice(-3).map((l) => l.index));
    const stats = JSON.parse((await cli(['stats', base, '--json', '--type', 'tool_call'])).stdout) as { events: number; types: { type: string }[] };
    expect(stats.events).toBe(lines.filter((l) => l.type === 'tool_call').length);
    expect(stats.types.map((t) => t.type)).toEqual(['tool_call']);
  });

  it('says on stderr which --type matched nothing; bad filter values are usage errors', async () => {
    const r = await cli(['cat', base, '--type', 'tool_call', '--type', 'tool_cal']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('ringlog: warning: --type "tool_cal" matched no event (types seen: iteration_end, iteration_start, judge, message_chunk, tool_call, tool_result)\n');
    for (const [args, message] of [
      [['--since', 'yesterday'], /--since "yesterday": expected an ISO time/],
      [['--until', '10x'], /--until "10x": expected an ISO time/],
      [['--where', 'session_id'], /--where "session_id": expected key=value/],
      [['--since', '1m', '--until', '1h'], /--since is after --until/],
    ] as const) {
      const bad = await cli(['cat', base, ...args]);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(message);
    }
  });

  it("ringlog pretty reads any tool's NDJSON on stdin: readable lines, other lines passed through, filters, --json", async () => {
    // Before the test set was written: --since T + 1 keeps the second pino line and the set's line.
    const T = Date.parse('2026-01-01T10:00:00.000Z');
    const input = [
      JSON.stringify({ level: 30, time: T, pid: 1, hostname: 'h', msg: 'server started' }),
      'a plain line',
      JSON.stringify({ level: 50, time: T + 5, msg: 'request failed', err: { message: 'x' } }),
      '',
      set.raw[0]!,
    ].join('\n');
    const r = await cli(['pretty'], { input });
    expect(r.code, r.stderr).toBe(0);
    const out = r.stdout.trimEnd().split('\n');
    expect(out).toHaveLength(4);
    expect(out[0]).toMatch(/^\d\d:\d\d:\d\d\.000 #- info server started$/);
    expect(out[1]).toBe('a plain line');
    expect(out[2]).toMatch(/ #- error request failed$/);
    expect(out[3]).toMatch(/ #0 /);
    const since = await cli(['pretty', '--since', new Date(T + 1).toISOString(), '--json'], { input });
    expect(since.stdout).toBe(JSON.stringify({ level: 50, time: T + 5, msg: 'request failed', err: { message: 'x' } }) + '\n' + set.raw[0] + '\n');
  });
});

describe('ringlog stats', () => {
  it('--json agrees with what was written', async () => {
    const r = await cli(['stats', '--json', base]);
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout) as {
      lines: number;
      events: number;
      bytes: number;
      firstIndex: number;
      lastIndex: number;
      firstEmittedAtMs: number;
      lastEmittedAtMs: number;
      start: string;
      spanMs: number;
      types: { type: string; lines: number; bytes: number }[];
      segments: { count: number; compressed: number; bytes: number };
      rateOverTime: { buckets: { events: number }[] };
      issues: { total: number };
      tornLastLine: unknown;
    };
    expect(s).toMatchObject({ lines: EVENTS, events: EVENTS, bytes: allBytes.length, firstIndex: 0, lastIndex: EVENTS - 1 });
    expect(s.segments).toEqual({ ...s.segments, count: set.files.length, compressed: 0, bytes: allBytes.length });
    const stamps = set.lines.map((l) => l.emitted_at_ms);
    expect(s.firstEmittedAtMs).toBe(Math.min(...stamps));
    expect(s.lastEmittedAtMs).toBe(Math.max(...stamps));
    expect(s.start).toBe(new Date(s.firstEmittedAtMs).toISOString());
    expect(s.spanMs).toBe(s.lastEmittedAtMs - s.firstEmittedAtMs);
    const want = new Map<string, { lines: number; bytes: number }>();
    set.lines.forEach((l, i) => {
      const t = want.get(l.type!) ?? { lines: 0, bytes: 0 };
      t.lines++;
      t.bytes += Buffer.byteLength(set.raw[i]!) + 1;
      want.set(l.type!, t);
    });
    expect(new Map(s.types.map((t) => [t.type, { lines: t.lines, bytes: t.bytes }]))).toEqual(want);
    expect(s.rateOverTime.buckets.reduce((a, b) => a + b.events, 0)).toBe(EVENTS);
    expect(s.issues.total).toBe(0);
    expect(s.tornLastLine).toBe(null);
  });

  it('prints a table by default, and reads stdin', async () => {
    const r = await cli(['stats', base]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^events +600$/m);
    expect(r.stdout).toMatch(/^segments +\d+, /m);
    expect(r.stdout).toMatch(/^tool_result +\d/m);
    expect(r.stdout).toMatch(/^issues +none$/m);
    const piped = await cli(['stats', '--json'], { input: allBytes });
    expect(JSON.parse(piped.stdout)).toMatchObject({ source: '-', segments: null, lines: EVENTS, bytes: allBytes.length });
  });

  it('counts the issues of a damaged set', async () => {
    const broken = dirs.make('cli-stats-gap');
    fs.writeFileSync(path.join(broken, BASE_NAME), ['0', '1', '3', '3'].map((i) => `{"index":${i},"emitted_at_ms":1,"frame_depth":null,"type":"t"}\n`).join(''));
    const r = await cli(['stats', '--json', broken]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).issues).toMatchObject({ total: 2, byCode: { ERR_RINGLOG_READ_GAP: 1, ERR_RINGLOG_READ_DUPLICATE: 1 } });
  });
});

describe('ringlog verify', () => {
  /** A copy of the first lines of the test set, damaged by `edit`, split over two segments. */
  function damaged(label: string, edit: (lines: string[]) => string[], tail = ''): string {
    const d = dirs.make(`cli-verify-${label}`);
    const lines = edit(set.raw.slice(0, 40).map((l) => l + '\n'));
    fs.writeFileSync(path.join(d, BASE_NAME), lines.slice(0, 20).join(''));
    fs.writeFileSync(path.join(d, segmentName(1)), lines.slice(20).join('') + tail);
    return d;
  }

  it('exits 0 on a clean set and says so', async () => {
    const r = await cli(['verify', base]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK — 600 events in \d+ segments, indexes 0 … 599 contiguous/);
    expect(r.stderr).toBe('');
    const quiet = await cli(['verify', '-q', base]);
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const piped = await cli(['verify'], { input: allBytes });
    expect(piped.code).toBe(0);
  });

  const cases: { name: string; edit: (l: string[]) => string[]; code: string; says: RegExp }[] = [
    { name: 'gap', edit: (l) => l.filter((_, i) => i !== 25), code: 'ERR_RINGLOG_READ_GAP', says: /gap: .*index 26 where 25 was expected/ },
    { name: 'duplicate', edit: (l) => [...l.slice(0, 26), l[25]!, ...l.slice(26)], code: 'ERR_RINGLOG_READ_DUPLICATE', says: /duplicate: .*index 25 again/ },
    { name: 'parse error', edit: (l) => [...l.slice(0, 10), '{"index":10,"emitted_at_ms":\n', ...l.slice(10)], code: 'ERR_RINGLOG_READ_PARSE', says: /parse error: .*event_log\.jsonl:11:/ },
    // The first segment ends in half a line: damage, since the next segment goes on.
    { name: 'torn middle line', edit: (l) => [...l.slice(0, 19), l[19]!.slice(0, 30), ...l.slice(20)], code: 'ERR_RINGLOG_READ_TORN', says: /torn line: .*event_log\.jsonl:20: torn line/ },
  ];
  for (const c of cases) {
    it(`exits 1 and names the problem: ${c.name}`, async () => {
      const d = damaged(c.name, c.edit);
      const r = await cli(['verify', d]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(/FAILED — \d+ problems? in/);
      expect(r.stdout).toMatch(c.says);
      const json = await cli(['verify', '--json', d]);
      expect(json.code).toBe(1);
      const report = JSON.parse(json.stdout) as { clean: boolean; problems: { byCode: Record<string, number> } };
      expect(report.clean).toBe(false);
      expect(report.problems.byCode[c.code]).toBe(1);
    });
  }

  it('an index rewritten backwards is out of order, and only the index it replaced is missing', async () => {
    // Line 30 (index 30) now says 25: one line is wrong, one index is absent, nothing else.
    const d = damaged('backwards', (l) => l.map((line, i) => (i === 30 ? line.replace('"index":30,', '"index":25,') : line)));
    const r = await cli(['verify', d]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/FAILED — 2 problems in 40 lines/);
    expect(r.stdout).toMatch(/out of order: .*event_log-000001\.jsonl:11: index 25 after 29: out of order \(30 was expected\)/);
    expect(r.stdout).toMatch(/gap: .*event_log-000001\.jsonl:12: index 31 where 30 was expected: index 30 is missing/);
    expect(r.stdout).not.toMatch(/indexes \d+…\d+ are missing/);
    const json = JSON.parse((await cli(['verify', '--json', d])).stdout) as { problems: { total: number; byCode: Record<string, number> } };
    expect(json.problems).toMatchObject({ total: 2, byCode: { ERR_RINGLOG_READ_ORDER: 1, ERR_RINGLOG_READ_GAP: 1 } });
  });

  it('a truncated .gz segment is a problem in the report, named, and verify reads on through the next segments', async () => {
    const d = dirs.make('cli-verify-truncated-gz');
    const gzBase = path.join(d, BASE_NAME);
    const sink = JsonlEventSink.open(gzBase, { rotateBytes: ROTATE_BYTES, compress: 'gzip' });
    for (const ev of makeCorpus(EVENTS, 7)) sink.handleEvent(ev);
    await sink.close();
    const gz = path.join(d, `${segmentName(1)}.gz`);
    const bytes = fs.readFileSync(gz);
    fs.writeFileSync(gz, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = await cli(['verify', d]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/damaged segment: .*event_log-000001\.jsonl\.gz:\d+: compressed data damaged \d+ bytes into the segment \(unexpected end of file\)/);
    // What the damage took is missing; every later segment was read, to the last index.
    expect(r.stdout).toMatch(/gap: .*event_log-000002\.jsonl\.gz:1: /);
    const json = JSON.parse((await cli(['verify', '--json', d])).stdout) as { problems: { total: number; byCode: Record<string, number> }; lastIndex: number };
    expect(json.problems).toMatchObject({ total: 2, byCode: { ERR_RINGLOG_READ_CORRUPT: 1, ERR_RINGLOG_READ_GAP: 1 } });
    expect(json.lastIndex).toBe(EVENTS - 1);
  });

  it('accepts a torn last line with a note (what a writer killed mid-line leaves)', async () => {
    const d = damaged('torn-last', (l) => l, set.raw[40]!.slice(0, 100));
    const r = await cli(['verify', d]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK — 40 events/);
    expect(r.stdout).toMatch(/^note: event_log-000001\.jsonl ends with a torn last line \(100 bytes without a newline\)/m);
    const stats = await cli(['stats', '--json', d]);
    expect(JSON.parse(stats.stdout).tornLastLine).toEqual({ file: path.join(d, segmentName(1)), bytes: 100 });
  });

  it('--progress draws the bar on stderr and erases it; the report stays on stdout', async () => {
    const r = await cli(['verify', '--progress', base]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/OK — 600 events/);
    expect(r.stderr).toMatch(/^\rverifying [█░]{30} +\d+%  [\d.]+ of [\d.]+ MiB\x1b\[K/);
    expect(r.stderr.endsWith('\r\x1b[K')).toBe(true);
    // Without --progress, and not on a terminal, no bar at all.
    expect((await cli(['verify', base])).stderr).toBe('');
  });
});

describe('conventions', () => {
  const commands = ['cat', 'tail', 'stats', 'verify', 'demo', 'view'];

  it('--help for the program and every command: usage on stdout, exit 0', async () => {
    for (const args of [['--help'], ['help'], ...commands.map((c) => [c, '--help']), ...commands.map((c) => ['help', c])]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stderr).toBe('');
      const name = args.find((a) => commands.includes(a));
      expect(r.stdout).toMatch(new RegExp(`^Usage: ringlog${name ? ' ' + name : ''} `));
    }
  });

  it('--version prints the package version', async () => {
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe((JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version);
  });

  it('bad usage exits 2 with a message on stderr and nothing on stdout', async () => {
    for (const args of [['cat', base, '--bogus'], ['frobnicate'], ['tail', '-n', 'ten', base], ['cat', '--from', '-1', base], ['cat', '--from', '9', '--to', '3', base], ['view'], []]) {
      const r = await cli(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.length).toBeGreaterThan(0);
    }
    const r = await cli(['cat', '--bogus', base]);
    expect(r.stderr).toMatch(/^ringlog: unknown option '--bogus'/);
  });

  it('a missing set is one line on stderr and exit 1', async () => {
    const missing = path.join(dirs.make('cli-missing'), 'nothing.jsonl');
    for (const cmd of ['cat', 'tail', 'stats', 'verify', 'view']) {
      const r = await cli([cmd, missing]);
      expect(r.code, cmd).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`ringlog: ${missing}: no such event log\n`);
    }
  });
});

describe('ringlog view', () => {
  it('prints the viewer URL, serves the set, and closes on SIGTERM with 0', async () => {
    const child = spawn(process.execPath, [MAIN, 'view', base, '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      await until('the URL', () => stdout.includes('\n'));
      const url = stdout.trim();
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]+$/);
      const res = await fetch(url);
      expect(res.status).toBe(200);
      await res.text();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stderr).toBe('');
    } finally {
      child.kill('SIGKILL');
    }
  });
});

describe('ringlog demo', () => {
  it('runs the demo of npm run demo with a small --events count and passes', async () => {
    const out = dirs.make('cli-demo');
    const r = await cli(['demo', '--events', '2000', '--out', out, '--rotate-bytes', '1000000']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/verification +PASS: 2,000 events/);
    expect(fs.existsSync(path.join(out, BASE_NAME))).toBe(true);
  });
});

describe('the package', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
    files: string[];
    dependencies?: Record<string, string>;
  };

  it('has a ringlog bin that is the built entry, with its shebang', () => {
    const bin = path.join(REPO, pkg.bin.ringlog!);
    expect(bin).toBe(MAIN);
    expect(fs.readFileSync(bin, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('ships the CLI, the demo and every file they import, and commander as a dependency', () => {
    const shipped = (rel: string): boolean => pkg.files.some((f) => rel === f || rel.startsWith(f + '/'));
    for (const f of pkg.files) expect(fs.existsSync(path.join(REPO, f)), f).toBe(true);
    // Follow relative imports from the bin: everything reachable must be in `files`.
    const seen = new Set<string>();
    const visit = (abs: string): void => {
      const rel = path.relative(REPO, abs).split(path.sep).join('/');
      if (seen.has(rel)) return;
      seen.add(rel);
      expect(shipped(rel), `${rel} is imported but not shipped`).toBe(true);
      const src = fs.readFileSync(abs, 'utf8');
      for (const m of src.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) visit(path.resolve(path.dirname(abs), m[1]!));
      for (const m of src.matchAll(/new URL\('(\.{1,2}\/[^']+\.js)', import\.meta\.url\)/g)) {
        const target = path.resolve(path.dirname(abs), m[1]!);
        if (fs.existsSync(target)) visit(target);
      }
    };
    visit(MAIN);
    expect(seen.has('dist/demo/demo.js')).toBe(true);
    expect(seen.has('dist/src/viewer/server.js')).toBe(true);
    expect(pkg.dependencies?.commander).toMatch(/^\^14\./);
  });
});
