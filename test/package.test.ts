// The built package works where users get it: packed with `npm pack`, installed into another
// project, loaded through `import` and through `require`, its writer worker found with no bundler
// plugin and no path option.
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

describe('the packed package', () => {
  let project: string;

  beforeAll(() => {
    project = tempDir('package');
    const out = execFileSync(npm, ['pack', '--ignore-scripts', '--json', '--pack-destination', project], { cwd: repo, encoding: 'utf8' });
    const [{ filename }] = JSON.parse(out) as [{ filename: string }];
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
    // Offline: the tarball, and its dependencies (commander, piscina; better-sqlite3 optional) from
    // the npm cache the repository's own `npm install` filled.
    execFileSync(npm, ['install', '--offline', '--no-audit', '--no-fund', path.join(project, filename)], { cwd: project, encoding: 'utf8' });
  });

  afterAll(() => removeDir(project));

  it('ships the library, its workers, the command and the demo — no benchmarks, no tests', () => {
    const installed = path.join(project, 'node_modules', 'ringlog');
    expect(fs.existsSync(path.join(installed, 'dist/src/index.js'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'dist/src/index.d.ts'))).toBe(true);
    expect(fs.existsSync(path.join(installed, 'dist/src/cli/main.js'))).toBe(true);
    expect(fs.readdirSync(path.join(installed, 'dist/workers')).filter((f) => f.endsWith('.js')).sort()).toEqual(['compress.js', 'sqlite.js', 'writer.js']);
    // `ringlog demo` runs the demo, so it ships with its corpus; the benchmarks stay in the repository.
    expect(fs.readdirSync(path.join(installed, 'dist/bench')).filter((f) => f.endsWith('.js')).sort()).toEqual(['corpus.js', 'demo.js', 'lib.js']);
    expect(fs.existsSync(path.join(installed, 'test'))).toBe(false);
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
