// The built package works where users get it: packed with `npm pack`, installed into another
// project, loaded through `import` and through `require`, its writer thread started with no
// bundler plugin and no path option.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from './helpers.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const EVENTS = 1000;

function checkLog(file: string): void {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  expect(lines.pop()).toBe('');
  expect(lines).toHaveLength(EVENTS);
  lines.forEach((line, i) => {
    const rec = JSON.parse(line) as { index: number; type: string; n: number };
    expect(rec.index).toBe(i);
    expect(rec).toMatchObject({ type: 'tick', n: i });
  });
}

interface Manifest {
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
}

const readManifest = (dir: string): Manifest => JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as Manifest;

/** Where Node would find `name` required from the package in `from`, or undefined. */
function locate(name: string, from: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === repo || path.dirname(dir) === dir) return undefined;
  }
}

/**
 * Copies ringlog's `dependencies` and everything they need from the repository's node_modules to
 * `target`. Optional dependencies of those packages are taken where installed (platform binaries).
 */
function copyRuntimeDependencies(target: string): void {
  const top = path.join(repo, 'node_modules');
  const topLevel = new Set<string>();
  const seen = new Set<string>();
  const visit = (names: string[], from: string, optional: boolean): void => {
    for (const name of names) {
      const dir = locate(name, from);
      if (dir === undefined) {
        if (optional) continue;
        throw new Error(`${name} (needed from ${from}) is not installed in ${top}`);
      }
      if (seen.has(dir)) continue;
      seen.add(dir);
      // A nested package comes along with the top-level one that holds it.
      const rel = path.relative(top, dir).split(path.sep);
      topLevel.add(rel.slice(0, rel[0]!.startsWith('@') ? 2 : 1).join('/'));
      const m = readManifest(dir);
      visit(Object.keys(m.dependencies ?? {}), dir, false);
      visit(Object.keys(m.optionalDependencies ?? {}), dir, true);
    }
  };
  visit(Object.keys(readManifest(repo).dependencies ?? {}), repo, false);
  for (const name of topLevel) {
    fs.cpSync(path.join(top, name), path.join(target, name), { recursive: true, dereference: true });
  }
}

describe('the packed package', () => {
  let project: string;

  beforeAll(() => {
    project = tempDir('package');
    const out = execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', project], { cwd: repo, encoding: 'utf8' });
    const [{ filename }] = JSON.parse(out) as [{ filename: string }];
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    // The npm cache cannot supply the dependencies: an install from the repository's lockfile
    // caches tarballs but never registry metadata, and CI starts from an empty cache anyway.
    // Fetching them from the registry would make the test depend on the network and, for
    // better-sqlite3, on a native build. So the runtime dependencies are copied from the
    // repository's node_modules (the versions the suite runs against) and npm installs the tarball
    // offline: it unpacks it, links its bin and checks every declared range against what is there;
    // a dependency missing or out of range still fails the install (ENOTCACHED). Copies, not
    // symlinks: a symlinked package would resolve its own dependencies from the repository and hide
    // one this copy lacks. better-sqlite3 and redis are optional peers: npm installs neither, and
    // the package must load and log without them.
    copyRuntimeDependencies(path.join(project, 'node_modules'));
    execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', path.join(project, filename)], { cwd: project, encoding: 'utf8' });
  });

  afterAll(() => removeDir(project));

  it('ships the library (its threads embedded as source), the command and the demo — no benchmarks, no tests', () => {
    const installed = path.join(project, 'node_modules', 'ringlog');
    expect(fs.existsSync(path.join(installed, 'dist/src/index.js'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'dist/src/index.d.ts'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'dist/src/cli/main.js'))).toBe(true);
    // The threads start from source text built into the library, never from files beside it.
    expect(fs.existsSync(path.join(installed, 'dist/src/threads/sources.generated.js'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'dist/workers'))).toBe(false);
    // `ringlog demo` runs the demo, so it ships with its corpus; the benchmarks stay in the repository.
    expect(fs.readdirSync(path.join(installed, 'dist/demo')).filter((f) => f.endsWith('.js')).sort()).toEqual(['args.js', 'corpus.js', 'demo.js']);
    expect(fs.existsSync(path.join(installed, 'dist/bench'))).toBe(false);
    expect(fs.existsSync(path.join(installed, 'test'))).toBe(false);
  });

  it('installs nothing native and no optional backend: only its dependencies, no .node file, no install script', () => {
    const lock = JSON.parse(fs.readFileSync(path.join(project, 'package-lock.json'), 'utf8')) as { packages: Record<string, { hasInstallScript?: boolean }> };
    const installed = Object.keys(lock.packages).filter((k) => k !== '').map((k) => k.replace(/^.*node_modules\//, ''));
    expect(installed.sort()).toEqual(['commander', 'ringlog']);
    expect(Object.values(lock.packages).some((p) => p.hasInstallScript === true)).toBe(false);
    const nodeFiles = (fs.readdirSync(path.join(project, 'node_modules'), { recursive: true }) as string[]).filter((f) => f.endsWith('.node'));
    expect(nodeFiles).toEqual([]);
  });

  it('ships its LICENSE, and source maps that carry their sources (the .ts files are not shipped)', () => {
    const installed = path.join(project, 'node_modules', 'ringlog');
    expect(fs.readFileSync(path.join(installed, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
    const maps = (fs.readdirSync(installed, { recursive: true }) as string[]).filter((f) => f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(50);
    for (const m of maps) {
      const map = JSON.parse(fs.readFileSync(path.join(installed, m), 'utf8')) as { sources: string[]; sourcesContent?: (string | null)[] };
      map.sources.forEach((src, i) => {
        const shipped = fs.existsSync(path.resolve(path.dirname(path.join(installed, m)), src));
        expect(shipped || typeof map.sourcesContent?.[i] === 'string', `${m}: ${src}`).toBe(true);
      });
    }
  });

  it('from plain JavaScript, `new JsonlEventSink()` is a TypeError pointing to JsonlEventSink.open(); the SQLite and Redis backends name what to install', () => {
    fs.writeFileSync(
      path.join(project, 'misuse.mjs'),
      `import { JsonlEventSink, openEventLog } from 'ringlog';
try { new JsonlEventSink('x.jsonl'); } catch (e) { console.log(e.constructor.name + ': ' + e.message); }
for (const o of [{ backend: 'sqlite', dir: 'db' }, { backend: 'redis', url: 'redis://127.0.0.1:1' }]) {
  await openEventLog(o).catch((e) => console.log(e.code + ': ' + e.message));
}`,
    );
    const out = execFileSync(process.execPath, ['misuse.mjs'], { cwd: project, encoding: 'utf8' }).trim().split('\n');
    expect(out).toEqual([
      'TypeError: ringlog: JsonlEventSink has no public constructor: use JsonlEventSink.open(path, options)',
      'ERR_RINGLOG_EVENT_LOG_UNAVAILABLE: ringlog: the sqlite backend needs the optional dependency better-sqlite3: npm install better-sqlite3',
      'ERR_RINGLOG_EVENT_LOG_UNAVAILABLE: ringlog: the redis backend needs the optional dependency redis (node-redis): npm install redis',
    ]);
  });

  const script = (load: string, file: string): string => `
${load}
const sink = JsonlEventSink.open(${JSON.stringify(file)});
for (let n = 0; n < ${EVENTS}; n++) sink.handleEvent({ type: 'tick', n });
sink.close().then(() => console.log('closed', sink.eventCount()));
`;

  it('logs through import', () => {
    const file = path.join(project, 'esm', 'event_log.jsonl');
    fs.writeFileSync(path.join(project, 'esm.mjs'), script(`import { JsonlEventSink } from 'ringlog';`, file));
    const out = execFileSync(process.execPath, ['esm.mjs'], { cwd: project, encoding: 'utf8' });
    expect(out.trim()).toBe(`closed ${EVENTS}`);
    checkLog(file);
  });

  it('logs through require', () => {
    const file = path.join(project, 'cjs', 'event_log.jsonl');
    fs.writeFileSync(path.join(project, 'cjs.cjs'), script(`const { JsonlEventSink } = require('ringlog');`, file));
    const out = execFileSync(process.execPath, ['cjs.cjs'], { cwd: project, encoding: 'utf8' });
    expect(out.trim()).toBe(`closed ${EVENTS}`);
    checkLog(file);
  });
});
