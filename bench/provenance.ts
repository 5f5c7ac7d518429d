// The cost of a tamper-evident log (openEventLog's `provenance`, issue 15): appends per second and
// time per append, with and without the chain, on the memory, file, SQLite and Redis backends (a
// redis-server started here, appendonly yes, a fresh topic per contender). Events are
// the project's large corpus (~1.3 KB) as EventLogSink would append them; each contender appends
// EVENTS of them in awaited batches of BATCH and flushes, in a process of its own, the contenders
// interleaved over runs.
//
//   npm run build && node dist/bench/provenance.js [--runs 3]
//
// Results: bench/results/provenance.json.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeCorpus } from '../demo/corpus.js';
import { openEventLog } from '../src/index.js';
import { median, parsePositiveInt } from './lib.js';
import { startRedis } from './redis-server.js';

/** 20,000 events of ~1.3 KB: ~26 MB per contender, seconds of work on the slowest. */
const EVENTS = 20_000;
/** Appends in flight at a time: what an EventLogSink's drain hands over in one turn (DRAIN_SLICE). */
const BATCH = 1024;
const BACKENDS = ['memory', 'file', 'sqlite', 'redis'] as const;
type Backend = (typeof BACKENDS)[number];

async function child(backend: Backend, provenance: boolean, url: string | undefined): Promise<{ nsPerAppend: number; appendsPerSec: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-bench-prov-'));
  try {
    const log = await openEventLog(backend === 'memory' ? { backend, provenance } : backend === 'redis' ? { backend, url: url!, provenance } : { backend, dir, provenance });
    const corpus = makeCorpus(EVENTS);
    // A topic of its own per child: the Redis server outlives each of them.
    const topic = `observability.agent_events.bench-${process.pid}`;
    const t0 = performance.now();
    for (let i = 0; i < EVENTS; i += BATCH) {
      const batch: Promise<number>[] = [];
      for (let k = i; k < Math.min(EVENTS, i + BATCH); k++) {
        const event = corpus[k]!;
        batch.push(log.append(topic, { kind: String(event.type), payload: { index_hint: k, session_id: 'bench', event }, headers: { session_id: 'bench' } }));
      }
      await Promise.all(batch);
    }
    await log.flush();
    const ms = performance.now() - t0;
    await log.close();
    return { nsPerAppend: (ms * 1e6) / EVENTS, appendsPerSec: EVENTS / (ms / 1000) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { child: { type: 'string' }, provenance: { type: 'string' }, runs: { type: 'string' }, url: { type: 'string' } } });
if (values.child !== undefined) {
  const backend = values.child as Backend;
  if (!BACKENDS.includes(backend)) throw new Error(`--child must be one of ${BACKENDS.join(', ')}`);
  process.stdout.write(JSON.stringify(await child(backend, values.provenance === 'on', values.url)) + '\n');
} else {
  const runs = parsePositiveInt(values.runs, '--runs', 3);
  const self = fileURLToPath(import.meta.url);
  const results: { backend: Backend; provenance: boolean; run: number; nsPerAppend: number; appendsPerSec: number }[] = [];
  const serverDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-bench-prov-redis-'));
  const server = await startRedis(serverDir);
  for (let run = 1; run <= runs; run++) {
    for (const backend of BACKENDS) {
      for (const provenance of run % 2 === 0 ? [true, false] : [false, true]) {
        const p = spawnSync(process.execPath, [self, '--child', backend, '--provenance', provenance ? 'on' : 'off', '--url', server.url], { encoding: 'utf8', timeout: 300_000 });
        if (p.status !== 0) throw new Error(`${backend} provenance ${provenance}: ${p.stderr}`);
        const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as { nsPerAppend: number; appendsPerSec: number };
        results.push({ backend, provenance, run, ...r });
        process.stdout.write(`run ${run} ${backend} provenance ${provenance ? 'on ' : 'off'}: ${Math.round(r.nsPerAppend).toLocaleString('en-US')} ns/append, ${Math.round(r.appendsPerSec).toLocaleString('en-US')} appends/s\n`);
      }
    }
  }
  await server.stop('SIGTERM');
  fs.rmSync(serverDir, { recursive: true, force: true });
  const summary = Object.fromEntries(
    BACKENDS.map((backend) => {
      const of = (p: boolean): number => median(results.filter((r) => r.backend === backend && r.provenance === p).map((r) => r.nsPerAppend));
      const off = of(false);
      const on = of(true);
      return [backend, { nsPerAppendOff: off, nsPerAppendOn: on, addedNsPerAppend: on - off, ratio: on / off }];
    }),
  );
  const out = {
    command: `node dist/bench/provenance.js --runs ${runs}`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    events: EVENTS,
    batch: BATCH,
    summary,
    results,
  };
  const file = fileURLToPath(new URL('../../bench/results/provenance.json', import.meta.url));
  fs.writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\nsaved ${path.relative(process.cwd(), file)}\n`);
}
