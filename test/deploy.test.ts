// Deployment modes: ringlog deployed the way users deploy it, each mode in a real child node
// process. Bundled by esbuild (ESM and CJS output, run from another directory), `node -e` / `-p`,
// `node --input-type=module -e`, preloads (`-r`, `--import`, NODE_OPTIONS) that open the sink
// themselves, `node --test`, `node --watch`, and the permission model without --allow-worker.
//
// The child logs 200,000 events in bursts of 1,000 with the loop turning between bursts (a 0 ms
// timer), counts the turns of its loop (a setImmediate chain, a different phase of the loop than
// the bursts' timer), then either ends naturally without close() (the exit flush must write
// everything) or awaits flush(). It reports one JSON line: its loop turns, its bursts, sink.stats(),
// the ringlog warnings and onError calls it saw. The parent checks the file itself: every index
// exactly once and in order, each event's own payload, no drop markers, `written` equal to the
// number of events, and a loop that kept turning (a count, never a time).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { BASE_NAME, RINGLOG_URL, coverage, lastJson, readLines, spawnNode, spawnScript, tempDirs, type ChildResult, type Line, type SpawnedChild } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());
// The bundling tests start esbuild's service process.
afterAll(() => esbuild.stop());

/** Events per child, and per burst. */
const N = 200_000;
const BURST = 1_000;
const BURSTS = N / BURST;
/** Loop turns the child may count short of its bursts (the first and last burst, rounding). */
const TURN_SLACK = 5;
/** Deadline of a child: it normally takes a few seconds. */
const CHILD_TIMEOUT_MS = 90_000;

const RINGLOG_PATH = fileURLToPath(RINGLOG_URL);

/** The ~100-byte string of event `seq` (the parent computes the same to check every line). */
function payload(seq: number): string {
  return `event ${seq} `.padEnd(100, 'abcdefghij');
}

// ---------------------------------------------------------------------------------------------
// The application. Plain JavaScript that runs as CommonJS or ESM, in a script, an eval string, a
// bundle or a node:test test: `deployApp(JsonlEventSink, fs)` resolves after the logging (and the
// flush, when DEPLOY_ENDING is 'flush'). Everything it needs comes from the environment, which
// reaches the child in every mode (argv does not: -e, --test and --watch move it around).
//
// DEPLOY_LOG     the sink's base path (unused when a preload opened the sink)
// DEPLOY_ENDING  'exit': the loop just ends, the report is written by an 'exit' listener added
//                after open(), so it runs after ringlog's exit flush; 'flush': await flush()
// DEPLOY_REPORT  write the report line to this file (else to stdout, fd 1)
// DEPLOY_DONE    create this file after the report (the --watch test waits for it)
// DEPLOY_RUNS    append a line per run of the app (the --watch test: it ran once, not restarted)
const APP_CORE = String.raw`
async function deployApp(JsonlEventSink, fs) {
  const env = process.env;
  const N = ${N};
  const BURST = ${BURST};
  const ending = env.DEPLOY_ENDING;
  if (ending !== 'exit' && ending !== 'flush') throw new Error('DEPLOY_ENDING must be exit or flush, got ' + ending);
  if (env.DEPLOY_RUNS) fs.appendFileSync(env.DEPLOY_RUNS, JSON.stringify({ pid: process.pid }) + '\n');
  // A preload may have opened the sink already (and collects the warnings and onError calls).
  const pre = globalThis.__ringlogDeploy;
  const warnings = pre ? pre.warnings : [];
  const errors = pre ? pre.errors : [];
  if (!pre) {
    process.on('warning', (w) => warnings.push({ name: String(w.name), code: w.code === undefined ? null : String(w.code), message: String(w.message) }));
  }
  const sink = pre
    ? pre.sink
    : JsonlEventSink.open(env.DEPLOY_LOG, { onError: (e) => errors.push({ name: String(e.name), code: String(e.code), message: String(e.message), cause: e.cause?.code ?? null }) });
  const payload = (seq) => ('event ' + seq + ' ').padEnd(100, 'abcdefghij');

  // Loop turns, counted in the check phase while the bursts wait in the timers phase.
  let turns = 0;
  let counting = true;
  const tick = () => {
    turns++;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);

  let bursts = 0;
  let flushError = null;
  const report = () => {
    const line = JSON.stringify({ ending, turns, bursts, stats: sink.stats(), warnings, errors, flushError }) + '\n';
    if (env.DEPLOY_REPORT) fs.writeFileSync(env.DEPLOY_REPORT, line);
    else fs.writeSync(1, line);
    if (env.DEPLOY_DONE) fs.writeFileSync(env.DEPLOY_DONE, 'done\n');
  };
  // Added after open(): runs after ringlog's own exit listener, so it sees what the exit flush wrote.
  if (ending === 'exit') process.on('exit', report);

  for (let seq = 0; seq < N; ) {
    const end = Math.min(N, seq + BURST);
    for (; seq < end; seq++) sink.handleEvent({ type: 'step', seq, text: payload(seq), ok: seq % 3 !== 0 });
    bursts++;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  counting = false;
  if (ending === 'flush') {
    try {
      await sink.flush();
    } catch (e) {
      flushError = { name: String(e && e.name), code: String(e && e.code), message: String(e && e.message) };
    }
    report();
  }
}
`;

const FILE_URL = RINGLOG_URL.href;
/** ESM app importing the compiled library by file URL. */
const esmApp = (): string => `import { JsonlEventSink } from ${JSON.stringify(FILE_URL)};\nimport * as fs from 'node:fs';\n${APP_CORE}\ndeployApp(JsonlEventSink, fs);\n`;
/** ESM app importing it by absolute path (what esbuild resolves). */
const esmAppByPath = (): string => `import { JsonlEventSink } from ${JSON.stringify(RINGLOG_PATH)};\nimport * as fs from 'node:fs';\n${APP_CORE}\ndeployApp(JsonlEventSink, fs);\n`;
/** CommonJS app: require() of the ES module (require(esm), Node 20.19+). */
const cjsApp = (): string => `const { JsonlEventSink } = require(${JSON.stringify(RINGLOG_PATH)});\nconst fs = require('node:fs');\n${APP_CORE}\ndeployApp(JsonlEventSink, fs);\n`;

// ---------------------------------------------------------------------------------------------
// What the child reports, and the checks on it.

interface Announcement {
  name?: string;
  code: string | null;
  message: string;
  /** onError only: the code of the error's cause. */
  cause?: string | null;
}

interface Report {
  ending: 'exit' | 'flush';
  turns: number;
  bursts: number;
  stats: {
    accepted: number;
    written: number;
    dropped: number;
    rejected: number;
    pending: number;
    workerRestarts: number;
    faults: number;
  };
  warnings: Announcement[];
  errors: Announcement[];
  flushError: Announcement | null;
}

/**
 * A warning from ringlog: its code names ringlog, or its message does (the temp dirs' own
 * `ringlog-test-` prefix, which can show up in Node's warnings about paths, does not count).
 */
function isRinglogWarning(w: Announcement): boolean {
  return /RINGLOG/i.test(w.code ?? '') || /ringlog(?!-test-)/i.test(w.message);
}

function describeChild(r: ChildResult): string {
  return `code ${r.code}, signal ${r.signal}, timed out ${r.timedOut}\nstdout (tail): ${r.stdout.slice(-2000)}\nstderr (tail): ${r.stderr.slice(-4000)}`;
}

function expectExitedCleanly(r: ChildResult): void {
  expect(r.timedOut, `child hung\n${describeChild(r)}`).toBe(false);
  expect(r.code, describeChild(r)).toBe(0);
  expect(r.stderr).not.toContain('ringlog: exit flush failed');
}

/**
 * The log in `dir` holds the app's N events, each exactly once and in order, with its own payload,
 * after `before` lines of others (a preload's). Returns the lines.
 */
function expectCompleteLog(dir: string, before = 0, base = BASE_NAME): Line[] {
  const { lines } = readLines(dir, base);
  const cov = coverage(lines);
  expect(cov.problems, `index coverage of ${lines.length} lines`).toEqual([]);
  expect(cov.markers, 'events_dropped markers').toBe(0);
  expect(cov.next, 'indexes covered').toBe(before + N);
  expect(lines.length, 'lines in the log').toBe(before + N);
  let bad: string | undefined;
  for (let i = before; i < lines.length && bad === undefined; i++) {
    const l = lines[i]!;
    const seq = i - before;
    if (l.type !== 'step' || l.seq !== seq || l.text !== payload(seq) || l.ok !== (seq % 3 !== 0)) {
      bad = `line ${i}: ${JSON.stringify(l).slice(0, 300)} is not event ${seq}`;
    }
  }
  expect(bad).toBeUndefined();
  return lines;
}

/** The report's own counts: every event written, none lost, and the loop turned between bursts. */
function expectReport(rep: Report, total = N): void {
  expect(rep.flushError, 'flush() rejected').toBeNull();
  expect(rep.bursts).toBe(BURSTS);
  expect(rep.turns, `loop turns counted by the child (${rep.bursts} bursts)`).toBeGreaterThanOrEqual(rep.bursts - TURN_SLACK);
  expect(rep.stats).toMatchObject({ accepted: total, written: total, dropped: 0, rejected: 0, pending: 0, faults: 0 });
}

/** A mode with a writer thread: it started and kept running, and ringlog said nothing. */
function expectQuietWriter(rep: Report): void {
  expect(rep.errors, 'onError calls').toEqual([]);
  expect(rep.warnings.filter(isRinglogWarning), 'ringlog warnings').toEqual([]);
  expect(rep.stats.workerRestarts, 'writer threads restarted').toBe(0);
}

// ---------------------------------------------------------------------------------------------
// Child processes with arbitrary node flags.

interface NodeRun {
  cwd: string;
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Hears the child's stdout as it arrives. */
  onStdout?: (chunk: string) => void;
}

/** The parent's environment without what would change how a child node starts. */
function baseEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (k === 'NODE_OPTIONS' || k === 'NODE_TEST_CONTEXT' || k.startsWith('DEPLOY_')) continue;
    env[k] = v;
  }
  return env;
}

function startNode(args: readonly string[], opts: NodeRun): SpawnedChild {
  return spawnNode(args, { cwd: opts.cwd, env: { ...baseEnv(), ...(opts.env ?? {}) }, timeoutMs: opts.timeoutMs ?? CHILD_TIMEOUT_MS, ...(opts.onStdout ? { onStdout: opts.onStdout } : {}) });
}

function runNode(args: readonly string[], opts: NodeRun): Promise<ChildResult> {
  return startNode(args, opts).result;
}

/** Environment of an app run: where to log, and how to end. */
function appEnv(log: string, ending: 'exit' | 'flush', extra: Record<string, string> = {}): Record<string, string> {
  return { DEPLOY_LOG: log, DEPLOY_ENDING: ending, ...extra };
}

function readReport(file: string): Report {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as Report;
}

/** The permission model's flag: --permission from Node 22, --experimental-permission on 20. */
function permissionFlags(writable: string): string[] {
  const stable = process.allowedNodeEnvironmentFlags.has('--permission');
  // On Node 20 a directory's contents are granted as `<dir>/*`; Node 22+ takes the directory itself.
  return stable
    ? ['--permission', '--allow-fs-read=*', `--allow-fs-write=${writable}`]
    : ['--experimental-permission', '--allow-fs-read=*', `--allow-fs-write=${path.join(writable, '*')}`];
}

async function bundle(entry: string, outfile: string, format: 'esm' | 'cjs', external: string[] = []): Promise<string> {
  const result = await esbuild.build({ entryPoints: [entry], bundle: true, platform: 'node', format, outfile, external, logLevel: 'silent' });
  expect(result.errors).toEqual([]);
  return fs.readFileSync(outfile, 'utf8');
}

// ---------------------------------------------------------------------------------------------

describe('deployment modes (200,000 events in bursts, the loop turning)', () => {
  it.each(['exit', 'flush'] as const)('baseline: plain `node app.mjs` (ends by %s)', async (ending) => {
    const dir = dirs.make('deploy-plain');
    const r = await spawnScript(esmApp(), [], { env: appEnv(path.join(dir, BASE_NAME), ending), timeoutMs: CHILD_TIMEOUT_MS }).result;
    expectExitedCleanly(r);
    const rep = lastJson<Report>(r);
    expectCompleteLog(dir);
    expectReport(rep);
    expectQuietWriter(rep);
  });

  it.each([
    ['esm', 'out.mjs', 'exit'],
    ['cjs', 'out.cjs', 'flush'],
  ] as const)('bundled by esbuild (format %s, %s), run from another directory (ends by %s)', async (format, outName, ending) => {
    const a = dirs.make(`deploy-bundle-src-${format}`);
    const b = dirs.make(`deploy-bundle-out-${format}`);
    const c = dirs.make(`deploy-bundle-cwd-${format}`);
    const logDir = dirs.make(`deploy-bundle-log-${format}`);
    fs.writeFileSync(path.join(a, 'app.mjs'), esmAppByPath());
    const outfile = path.join(b, outName);
    const code = await bundle(path.join(a, 'app.mjs'), outfile, format);
    // The writer is not loaded by path: nothing next to the bundle or the cwd would be there.
    // (Soft: the run below still shows what a bundle that does so does at run time.)
    expect.soft(code.includes('writer/entry.js'), 'the bundle refers to writer/entry.js').toBe(false);
    const r = await runNode([outfile], { cwd: c, env: appEnv(path.join(logDir, BASE_NAME), ending) });
    expectExitedCleanly(r);
    const rep = lastJson<Report>(r);
    expectCompleteLog(logDir);
    expectReport(rep);
    expectQuietWriter(rep);
  });

  it.each(['esm', 'cjs'] as const)('bundled by esbuild (format %s): the compression thread starts too, and the set reads back whole', async (format) => {
    const a = dirs.make(`deploy-bundle-gzip-src-${format}`);
    const b = dirs.make(`deploy-bundle-gzip-out-${format}`);
    const logDir = dirs.make(`deploy-bundle-gzip-log-${format}`);
    const app = `import { JsonlEventSink, readEvents } from ${JSON.stringify(RINGLOG_PATH)};
const errors = [];
const base = process.env.DEPLOY_LOG;
const sink = JsonlEventSink.open(base, { rotateBytes: 64 * 1024, compress: 'gzip', onError: (e) => errors.push(e.message) });
for (let seq = 0; seq < 20000; seq++) {
  sink.handleEvent({ type: 'gz', seq, text: ('event ' + seq + ' ').padEnd(100, 'abcdefghij') });
  if (seq % 1000 === 999) await new Promise((r) => setImmediate(r));
}
await sink.close();
let read = 0;
for await (const ev of readEvents(base)) if (ev.seq === read) read++;
console.log(JSON.stringify({ errors, compressed: sink.stats().segmentsCompressed, rotations: sink.stats().rotations, read }));
`;
    fs.writeFileSync(path.join(a, 'app.mjs'), app);
    const outfile = path.join(b, format === 'esm' ? 'out.mjs' : 'out.cjs');
    // A CommonJS bundle cannot hold top-level await: wrap the app for that format.
    if (format === 'cjs') fs.writeFileSync(path.join(a, 'app.mjs'), app.replace(/^(const errors[\s\S]*)$/m, '(async () => {\n$1\n})();'));
    await bundle(path.join(a, 'app.mjs'), outfile, format);
    const r = await runNode([outfile], { cwd: dirs.make(`deploy-bundle-gzip-cwd-${format}`), env: { DEPLOY_LOG: path.join(logDir, BASE_NAME) } });
    expectExitedCleanly(r);
    const out = lastJson<{ errors: string[]; compressed: number; rotations: number; read: number }>(r);
    expect(out.errors).toEqual([]);
    expect(out.rotations).toBeGreaterThan(5);
    // Every closed segment was compressed by the thread, and the reader takes the set back whole.
    expect(out.compressed).toBe(out.rotations);
    expect(out.read).toBe(20000);
    expect(fs.readdirSync(logDir).filter((f) => f.endsWith('.jsonl.gz'))).toHaveLength(out.rotations);
  });

  it.each(['esm', 'cjs'] as const)('bundled by esbuild (format %s), better-sqlite3 left external as a native addon must be: the SQLite thread starts', async (format) => {
    const a = dirs.make(`deploy-bundle-sqlite-src-${format}`);
    const b = dirs.make(`deploy-bundle-sqlite-out-${format}`);
    const data = dirs.make(`deploy-bundle-sqlite-data-${format}`);
    // The bundle's directory has the native package beside it, as an application's node_modules would.
    fs.mkdirSync(path.join(b, 'node_modules'));
    fs.symlinkSync(path.join(path.dirname(RINGLOG_PATH), '..', '..', 'node_modules', 'better-sqlite3'), path.join(b, 'node_modules', 'better-sqlite3'));
    const body = `const log = await openEventLog({ backend: 'sqlite', sqlitePath: process.env.DEPLOY_DB });
for (let i = 0; i < 100; i++) await log.append('t', { kind: 'k', payload: { i } });
const read = await log.readRange('t', 0, 1000);
await log.close();
console.log(JSON.stringify({ read: read.length, last: read.at(-1).id }));`;
    fs.writeFileSync(
      path.join(a, 'app.mjs'),
      `import { openEventLog } from ${JSON.stringify(RINGLOG_PATH)};\n` + (format === 'esm' ? body : `(async () => {\n${body}\n})();`),
    );
    const outfile = path.join(b, format === 'esm' ? 'out.mjs' : 'out.cjs');
    await bundle(path.join(a, 'app.mjs'), outfile, format, ['better-sqlite3']);
    const r = await runNode([outfile], { cwd: dirs.make(`deploy-bundle-sqlite-cwd-${format}`), env: { DEPLOY_DB: path.join(data, 'log.sqlite') } });
    expectExitedCleanly(r);
    expect(lastJson<{ read: number; last: number }>(r)).toEqual({ read: 100, last: 100 });
  });

  it("`node -e '<CommonJS source>'` requiring the library (ends by exit)", async () => {
    const dir = dirs.make('deploy-eval-cjs');
    const cwd = dirs.make('deploy-eval-cjs-cwd');
    const r = await runNode(['-e', cjsApp()], { cwd, env: appEnv(path.join(dir, BASE_NAME), 'exit') });
    expectExitedCleanly(r);
    const rep = lastJson<Report>(r);
    expectCompleteLog(dir);
    expectReport(rep);
    expectQuietWriter(rep);
  });

  it("`node -p '<expression>'` logging and printing the event count", async () => {
    const dir = dirs.make('deploy-print');
    const cwd = dirs.make('deploy-print-cwd');
    const n = 5_000;
    const expr =
      `(() => { const { JsonlEventSink } = require(${JSON.stringify(RINGLOG_PATH)}); ` +
      `const sink = JsonlEventSink.open(process.env.DEPLOY_LOG); ` +
      `for (let seq = 0; seq < ${n}; seq++) sink.handleEvent({ type: 'step', seq, text: ('event ' + seq + ' ').padEnd(100, 'abcdefghij'), ok: seq % 3 !== 0 }); ` +
      `return sink.eventCount(); })()`;
    const r = await runNode(['-p', expr], { cwd, env: { DEPLOY_LOG: path.join(dir, BASE_NAME) } });
    expectExitedCleanly(r);
    expect(r.stdout.trim()).toBe(String(n));
    const { lines } = readLines(dir);
    expect(coverage(lines)).toMatchObject({ next: n, events: n, markers: 0, problems: [] });
    expect(lines.findIndex((l, i) => l.seq !== i || l.text !== payload(i))).toBe(-1);
  });

  it("`node --input-type=module -e '<ESM source>'` (ends by flush)", async () => {
    const dir = dirs.make('deploy-eval-esm');
    const cwd = dirs.make('deploy-eval-esm-cwd');
    const r = await runNode(['--input-type=module', '-e', esmApp()], { cwd, env: appEnv(path.join(dir, BASE_NAME), 'flush') });
    expectExitedCleanly(r);
    const rep = lastJson<Report>(r);
    expectCompleteLog(dir);
    expectReport(rep);
    expectQuietWriter(rep);
  });

  describe('a preload that opens the sink itself', () => {
    /**
     * The preload records where it runs (one line per run in the side file), optionally calls a
     * main-thread-only API first, opens the sink, logs a 'preload' event and hands the sink to the
     * app through globalThis.
     */
    const preloadCjs = (umask: boolean): string => `'use strict';
const fs = require('node:fs');
const { isMainThread } = require('node:worker_threads');
fs.appendFileSync(process.env.DEPLOY_SIDE, JSON.stringify({ main: isMainThread, pid: process.pid }) + '\\n');
${umask ? 'process.umask(0o022); // main thread only: throws ERR_WORKER_UNSUPPORTED_OPERATION in a worker' : ''}
const { JsonlEventSink } = require(${JSON.stringify(RINGLOG_PATH)});
const warnings = [];
const errors = [];
process.on('warning', (w) => warnings.push({ name: String(w.name), code: w.code === undefined ? null : String(w.code), message: String(w.message) }));
const sink = JsonlEventSink.open(process.env.DEPLOY_LOG, { onError: (e) => errors.push({ name: String(e.name), code: String(e.code), message: String(e.message), cause: e.cause?.code ?? null }) });
sink.handleEvent({ type: 'preload', main: isMainThread });
globalThis.__ringlogDeploy = { sink, warnings, errors };
`;
    const preloadEsm = (): string => `import * as fs from 'node:fs';
import { isMainThread } from 'node:worker_threads';
import { JsonlEventSink } from ${JSON.stringify(FILE_URL)};
fs.appendFileSync(process.env.DEPLOY_SIDE, JSON.stringify({ main: isMainThread, pid: process.pid }) + '\\n');
const warnings = [];
const errors = [];
process.on('warning', (w) => warnings.push({ name: String(w.name), code: w.code === undefined ? null : String(w.code), message: String(w.message) }));
const sink = JsonlEventSink.open(process.env.DEPLOY_LOG, { onError: (e) => errors.push({ name: String(e.name), code: String(e.code), message: String(e.message), cause: e.cause?.code ?? null }) });
sink.handleEvent({ type: 'preload', main: isMainThread });
globalThis.__ringlogDeploy = { sink, warnings, errors };
`;
    /** The app: logs through the preload's sink, and refuses to run without one. */
    const preloadedApp = (): string => `import * as fs from 'node:fs';
if (!globalThis.__ringlogDeploy) throw new Error('the preload did not open a sink');
${APP_CORE}
deployApp(null, fs);
`;

    type Variant = 'require' | 'import' | 'NODE_OPTIONS' | 'require, umask first';
    const cases: [Variant, string, 'exit' | 'flush'][] = [
      ['require', 'node -r ./telemetry.cjs app.mjs', 'exit'],
      ['import', 'node --import ./telemetry.mjs app.mjs', 'flush'],
      ['NODE_OPTIONS', "NODE_OPTIONS='--require /abs/telemetry.cjs' node app.mjs", 'exit'],
      ['require, umask first', 'node -r ./telemetry.cjs app.mjs, the preload calling process.umask() before open()', 'flush'],
    ];

    it.each(cases)('%s: `%s` (ends by %s): the preload runs once, on the main thread; the log is whole', async (variant, _cmd, ending) => {
      const dir = dirs.make('deploy-preload');
      const logDir = path.join(dir, 'log');
      const side = path.join(dir, 'preload-runs.jsonl');
      fs.writeFileSync(path.join(dir, 'telemetry.cjs'), preloadCjs(variant === 'require, umask first'));
      fs.writeFileSync(path.join(dir, 'telemetry.mjs'), preloadEsm());
      fs.writeFileSync(path.join(dir, 'app.mjs'), preloadedApp());
      const env = appEnv(path.join(logDir, BASE_NAME), ending, { DEPLOY_SIDE: side });
      let args: string[];
      if (variant === 'import') args = ['--import', './telemetry.mjs', 'app.mjs'];
      else if (variant === 'NODE_OPTIONS') {
        args = ['app.mjs'];
        env.NODE_OPTIONS = `--require ${path.join(dir, 'telemetry.cjs')}`;
      } else args = ['-r', './telemetry.cjs', 'app.mjs'];
      const r = await runNode(args, { cwd: dir, env });
      expectExitedCleanly(r);
      const rep = lastJson<Report>(r);
      // The preload ran exactly once, on the main thread (not again inside the writer thread).
      const runs = fs.readFileSync(side, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { main: boolean; pid: number });
      // (Soft: the checks of the log below still show what a second run did to it.)
      expect.soft(runs, 'runs of the preload').toEqual([{ main: true, pid: runs[0]!.pid }]);
      // Its 'preload' event, then the app's 200,000: nothing else, nothing truncated away.
      const lines = expectCompleteLog(logDir, 1);
      expect(lines[0]).toMatchObject({ index: 0, type: 'preload', main: true });
      expectReport(rep, N + 1);
      expectQuietWriter(rep);
    });
  });

  it('`node --test` running a test file that logs through a sink (reads the file; stdout is TAP)', async () => {
    const dir = dirs.make('deploy-node-test');
    const logDir = path.join(dir, 'log');
    const report = path.join(dir, 'report.json');
    fs.writeFileSync(
      path.join(dir, 'logging.test.mjs'),
      `import { test } from 'node:test';\nimport { JsonlEventSink } from ${JSON.stringify(FILE_URL)};\nimport * as fs from 'node:fs';\n${APP_CORE}\n` +
        `test('logs through a ringlog sink', () => deployApp(JsonlEventSink, fs));\n`,
    );
    const r = await runNode(['--test', '--test-reporter=tap', path.join(dir, 'logging.test.mjs')], {
      cwd: dir,
      env: appEnv(path.join(logDir, BASE_NAME), 'flush', { DEPLOY_REPORT: report }),
    });
    expectExitedCleanly(r);
    expect(r.stdout).toMatch(/^ok 1 - logs through a ringlog sink/m);
    const rep = readReport(report);
    expectCompleteLog(logDir);
    expectReport(rep);
    expectQuietWriter(rep);
  });

  it('`node --watch app.mjs`: one run logs and flushes, then the watcher is stopped (SIGTERM)', async () => {
    const dir = dirs.make('deploy-watch');
    const logDir = path.join(dir, 'log');
    const report = path.join(dir, 'report.json');
    const done = path.join(dir, 'done');
    const runs = path.join(dir, 'runs.jsonl');
    fs.writeFileSync(path.join(dir, 'app.mjs'), esmApp());
    let watcherOut = '';
    const { child, result } = startNode(['--watch', 'app.mjs'], {
      cwd: dir,
      env: appEnv(path.join(logDir, BASE_NAME), 'flush', { DEPLOY_REPORT: report, DEPLOY_DONE: done, DEPLOY_RUNS: runs }),
      onStdout: (d) => (watcherOut += d),
    });
    // --watch never exits by itself. Stop it once the app wrote its marker and the watcher saw the
    // run end ("Completed running …" / "Failed running …"): stopping it earlier would kill the app
    // on its way out. If the watcher itself ends (or hangs to the deadline), stop waiting.
    // A run that never ends is given up on before the helper's SIGKILL, which would reach the
    // watcher only: SIGTERM makes the watcher stop its run too.
    let ended = false;
    void result.then(() => (ended = true));
    const giveUp = Date.now() + CHILD_TIMEOUT_MS / 2;
    while (!ended && Date.now() < giveUp && !(fs.existsSync(done) && /(Completed|Failed) running/.test(watcherOut))) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    child.kill('SIGTERM');
    const r = await result;
    expect(r.timedOut, `watcher hung\n${describeChild(r)}`).toBe(false);
    expect(fs.existsSync(done), `the app never finished\n${describeChild(r)}`).toBe(true);
    // The watcher reports how its run ended: "Completed running 'app.mjs'" on exit code 0.
    expect(r.stdout, describeChild(r)).toContain("Completed running 'app.mjs'");
    expect(r.stdout).not.toContain('Failed running');
    expect(fs.readFileSync(runs, 'utf8').trim().split('\n'), 'runs of the app (a restart would truncate the log)').toHaveLength(1);
    const rep = readReport(report);
    expectCompleteLog(logDir);
    expectReport(rep);
    expectQuietWriter(rep);
  });

  describe('permission model without --allow-worker', () => {
    it.each(['exit', 'flush'] as const)(
      'the sink opens, writes on the caller thread, and announces the fallback once (ends by %s)',
      async (ending) => {
        const dir = dirs.make('deploy-permission');
        fs.writeFileSync(path.join(dir, 'app.mjs'), esmApp());
        const r = await runNode([...permissionFlags(dir), 'app.mjs'], { cwd: dir, env: appEnv(path.join(dir, BASE_NAME), ending) });
        expectExitedCleanly(r);
        const rep = lastJson<Report>(r);
        expectCompleteLog(dir);
        expectReport(rep);
        // The fallback is announced once, loudly: one process warning (seen with no option set) and
        // one onError call, both carrying the real cause (the permission model's refusal).
        const warned = rep.warnings.filter(isRinglogWarning);
        expect(warned, 'ringlog warnings').toHaveLength(1);
        expect(warned[0]!.code).toBe('RINGLOG_WRITER_FALLBACK');
        expect(warned[0]!.message).toMatch(/could not be started .*restricted.*writing continues on the caller's thread/);
        expect(rep.errors, 'onError calls').toHaveLength(1);
        expect(rep.errors[0]).toMatchObject({ name: 'SinkError', code: 'ERR_RINGLOG_WORKER', cause: 'ERR_ACCESS_DENIED' });
      },
    );

    it.each(['SIGTERM', 'SIGINT'] as const)('%s ends a process that logs without pause, promptly, with every accepted event written', async (sig) => {
      const dir = dirs.make('deploy-permission-signal');
      // Logs forever in bursts, saying after each how many events it has handed to the sink.
      fs.writeFileSync(
        path.join(dir, 'app.mjs'),
        `import { JsonlEventSink } from ${JSON.stringify(FILE_URL)};
const sink = JsonlEventSink.open(process.env.DEPLOY_LOG);
let seq = 0;
const burst = () => {
  for (let i = 0; i < ${BURST}; i++) sink.handleEvent({ type: 'deploy', seq: seq++ });
  process.stdout.write(seq + '\\n');
  setImmediate(burst);
};
burst();
`,
      );
      let reported = 0;
      let signalled = false;
      const run = startNode([...permissionFlags(dir), 'app.mjs'], {
        cwd: dir,
        env: { DEPLOY_LOG: path.join(dir, BASE_NAME) },
        onStdout: (chunk) => {
          for (const n of chunk.split('\n')) if (n !== '') reported = Math.max(reported, Number(n));
          // Well into the run, with the caller's thread doing all the writing.
          if (!signalled && reported >= 50 * BURST) {
            signalled = true;
            run.child.kill(sig);
          }
        },
      });
      const r = await run.result;
      expect(r.timedOut, describeChild(r)).toBe(false);
      // Default behaviour kept: the process dies of the signal.
      expect(r.signal, describeChild(r)).toBe(sig);
      const { lines } = readLines(dir);
      const cov = coverage(lines);
      expect(cov.problems).toEqual([]);
      expect(cov.markers).toBe(0);
      // Every event handed over before the signal is in the file (the child may have logged a few
      // bursts more between its last report and the signal's arrival).
      expect(lines.length).toBeGreaterThanOrEqual(reported);
      lines.forEach((l, i) => {
        if (l.seq !== i) expect.fail(`line ${i} holds seq ${String(l.seq)}`);
      });
    });

    it('open() on a path the fs write permission does not cover throws a SinkError (ERR_RINGLOG_OPEN) and leaves the existing log untouched', async () => {
      const dir = dirs.make('deploy-permission-denied');
      const logDir = path.join(dir, 'log');
      const writable = path.join(dir, 'elsewhere');
      fs.mkdirSync(logDir);
      fs.mkdirSync(writable);
      const base = path.join(logDir, BASE_NAME);
      const before = Buffer.from(
        `${JSON.stringify({ index: 0, emitted_at_ms: 1, frame_depth: null, type: 'earlier' })}\n${JSON.stringify({ index: 1, emitted_at_ms: 2, frame_depth: null, type: 'earlier' })}\n`,
      );
      fs.writeFileSync(base, before);
      const listing = fs.readdirSync(logDir).sort();
      fs.writeFileSync(
        path.join(dir, 'app.mjs'),
        `import { JsonlEventSink, SinkError } from ${JSON.stringify(FILE_URL)};
let out;
try {
  JsonlEventSink.open(process.env.DEPLOY_LOG);
  out = { opened: true };
} catch (e) {
  out = { opened: false, isSinkError: e instanceof SinkError, name: e?.name, code: e?.code, sink: e?.sink, message: String(e?.message) };
}
console.log(JSON.stringify(out));
`,
      );
      const r = await runNode([...permissionFlags(writable), 'app.mjs'], { cwd: dir, env: { DEPLOY_LOG: base } });
      expectExitedCleanly(r);
      const out = lastJson<Record<string, unknown>>(r);
      expect(out).toMatchObject({ opened: false, isSinkError: true, name: 'SinkError', code: 'ERR_RINGLOG_OPEN', sink: base });
      expect(fs.readFileSync(base).equals(before), 'the existing log is byte-identical').toBe(true);
      expect(fs.readdirSync(logDir).sort()).toEqual(listing);
    });
  });
});
