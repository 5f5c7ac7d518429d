// Issue 14: the README's examples work. Every ```ts / ```js block is type-checked against the
// package as users import it (`ringlog`, `ringlog/pino`, …), and every block is run, each in a
// fresh directory, except the few that need what a test cannot give (named below, with why). A
// block that is a fragment (no import of its own) gets the package's names imported and the
// variables the README speaks of around it (`sink`, `log`, `base`, …: see PRELUDE_*).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const README = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
const TSC = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
/** A block's run ends long before this; only a hang reaches it. */
const RUN_TIMEOUT_MS = 60_000;

interface Block {
  readonly n: number;
  readonly lang: string;
  readonly code: string;
  /** The README line the block starts on, for messages. */
  readonly line: number;
}

function blocks(): Block[] {
  const out: Block[] = [];
  const re = /^```(ts|js)\n([\s\S]*?)^```$/gm;
  for (let m = re.exec(README); m !== null; m = re.exec(README)) {
    out.push({ n: out.length, lang: m[1]!, code: m[2]!, line: README.slice(0, m.index).split('\n').length });
  }
  return out;
}

/** Blocks that are not run, and why; each is still type-checked. */
const NOT_RUN: Record<string, string> = {
  "const sink = JsonlEventSink.open('runs/s1/event_log.jsonl', { rotateBytes: 50_000_000 });": 'two processes: the second open is "in another process"',
  "const sink = JsonlEventSink.open('/var/log/agent/event_log.jsonl', {": 'writes under /var/log',
  '// main thread\nconst registry = new SessionRegistry();': "a worker file of the application's",
  "const log = await openEventLog({ backend: 'redis', url: 'redis://10.0.0.5:6379' });": 'a Redis server at 10.0.0.5',
  'JsonlEventSink.open(path);': 'a redaction module at /abs/path',
  '// /abs/path/redact.mjs': 'the module the block before loads',
};

function notRun(b: Block): string | undefined {
  for (const [start, why] of Object.entries(NOT_RUN)) if (b.code.startsWith(start)) return why;
  return undefined;
}

/** The names a fragment may use without importing them (the README's prose introduces them). */
const PRELUDE_IMPORTS = `import { JsonlEventSink, EventLogSink, MultiSink, SessionRegistry, connectRegistry, openEventLog, readEvents, ReadError } from 'ringlog';
import { Worker, workerData } from 'node:worker_threads';
`;

/** The variables the README's prose speaks of, typed for the checker. */
const PRELUDE_TYPES = `import type { AgentEvent, EventLog, JsonlEventSink, ReadIssue, SessionRegistry } from 'ringlog';
declare global {
  var sink: JsonlEventSink;
  var log: EventLog;
  var base: string;
  var path: string;
  var problems: ReadIssue[];
  var events: AgentEvent[];
  var registry: SessionRegistry;
  function handle(value: unknown): void;
}
export {};
`;

/** ... and given at run time, before the block (a preloaded module, in the block's directory). */
function preludeRuntime(ringlog: string): string {
  return `import { JsonlEventSink, openEventLog } from ${JSON.stringify(ringlog)};
import { mkdirSync } from 'node:fs';
import { isMainThread } from 'node:worker_threads';
// --import runs in worker threads too: the block's own workers need none of this.
if (isMainThread) {
// A set to read back, ending with a 'done' event (the README's follower stops at it).
const seed = JsonlEventSink.open('runs/s1/event_log.jsonl');
for (let i = 0; i < 20; i++) seed.handleEvent({ type: i % 2 ? 'tool_call' : 'message_chunk', tool_name: 'grep', i });
seed.handleEvent({ type: 'done' });
await seed.close();
mkdirSync('prelude', { recursive: true });
globalThis.base = 'runs/s1/event_log.jsonl';
globalThis.sink = JsonlEventSink.open('prelude/sink.jsonl');
globalThis.log = await openEventLog({ backend: 'memory' });
globalThis.problems = [];
globalThis.events = [{ type: 'step' }];
globalThis.handle = () => {};
}
`;
}

/** A block as source files: a fragment gets the prelude's imports; two files in one block are split. */
function filesOf(b: Block): { name: string; code: string }[] {
  const parts = b.code.split(/^(?=\/\/ [\w.-]+\.js \((?:worker thread)\))/m);
  return parts.map((code, k) => {
    const body = /^\s*import\s/m.test(code) || /^\s*export\s/m.test(code) ? code : PRELUDE_IMPORTS + code;
    const name = k === 0 ? `block${b.n}.${b.lang}` : (/^\/\/ ([\w.-]+\.js)/.exec(code)![1]!).replace(/\.js$/, `.${b.lang}`);
    return { name, code: /^\s*(import|export)\s/m.test(body) ? body : `${body}\nexport {};\n` };
  });
}

const all = blocks();
let work: string;

beforeAll(() => {
  // Inside the repository: the package resolves itself by name there, as an application's
  // node_modules/ringlog would (exports, types), and pino, winston and LogTape resolve from its
  // node_modules.
  work = fs.mkdtempSync(path.join(REPO, '.ringlog-tmp', 'readme-'));
});
afterAll(() => {
  fs.rmSync(work, { recursive: true, force: true });
});

describe("the README's code blocks", () => {
  it('are found (every ts and js block)', () => {
    expect(all.length).toBeGreaterThan(20);
  });

  it('type-check against the package, strict', () => {
    const dir = path.join(work, 'check');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'prelude.d.ts'), PRELUDE_TYPES);
    const names: string[] = ['prelude.d.ts'];
    for (const b of all) {
      if (b.lang !== 'ts') continue;
      const sub = path.join(dir, `b${b.n}`);
      fs.mkdirSync(sub);
      for (const f of filesOf(b)) {
        fs.writeFileSync(path.join(sub, f.name), f.code);
        names.push(path.join(`b${b.n}`, f.name));
      }
    }
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2024'], types: ['node'], strict: true, noEmit: true, skipLibCheck: true, typeRoots: [path.join(REPO, 'node_modules', '@types')] },
        files: names,
      }),
    );
    const r = spawnSync(process.execPath, [TSC, '-p', dir], { encoding: 'utf8' });
    // Name the README line of each error, not the temp file.
    const report = (r.stdout + r.stderr).replace(/b(\d+)\/[\w.-]+\((\d+),\d+\)/g, (_, n: string, l: string) => `README block ${n} (README line ~${all[Number(n)]!.line + Number(l)})`);
    expect(report).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);

  it('are not run only where the list above says why, and each entry of that list is exactly one block', () => {
    for (const start of Object.keys(NOT_RUN)) expect(all.filter((b) => b.code.startsWith(start)).length, start).toBe(1);
  });

  for (const b of all.filter((x) => notRun(x) === undefined)) {
    it(`block ${b.n} (README line ${b.line}) runs`, async () => {
      const dir = path.join(work, `run${b.n}`);
      fs.mkdirSync(dir);
      const ringlog = new URL('../dist/src/index.js', import.meta.url).href;
      fs.writeFileSync(path.join(dir, 'prelude.mjs'), preludeRuntime(ringlog));
      let main = '';
      for (const f of filesOf(b)) {
        const js = (await esbuild.transform(f.code, { loader: b.lang === 'ts' ? 'ts' : 'js', format: 'esm', target: 'node20' })).code;
        const file = path.join(dir, f.name.replace(/\.(ts|js)$/, '.js'));
        fs.writeFileSync(file, js);
        main ||= file;
      }
      // No package.json of its own: inside the repository's scope, `ringlog` resolves to itself and
      // .js files are ES modules (its "type": "module").
      // A block fails by exiting otherwise than 0 (an exception, a rejected promise, a timeout).
      const r = spawnSync(process.execPath, ['--import', './prelude.mjs', main], { cwd: dir, encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
      expect(r.status, `README block ${b.n} (line ${b.line}) failed (${r.signal ?? 'no signal'}):\n${r.stderr}`).toBe(0);
    }, RUN_TIMEOUT_MS + 10_000);
  }
});
