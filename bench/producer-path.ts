// Where a producer thread's extra cost comes from, on one thread, without contention: the same
// events logged (paced, as in producer-threads.ts) by the owner into its own ring (encoded in
// place, keys interned), by the owner once a handle shares the ring (encoded into scratch, then
// placed under the claim lock, keys interned), and through connectSink on the owner's own thread
// (scratch, claim, keys written whole: a producer thread's path, minus the other threads).
// Each contender runs in a process of its own, interleaved over runs.
//
//   npm run build && node dist/bench/producer-path.js [--events 60000] [--runs 3]
//
// Results: bench/results/producer-path.json.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeCorpus } from '../demo/corpus.js';
import { connectSink, JsonlEventSink, sinkHandle, type AgentEventSink } from '../src/index.js';
import { median, parsePositiveInt } from './lib.js';

/** As producer-threads.ts: bursts of 100 events, 2 ms apart, the second pass timed. */
const BURST = 100;
const PAUSE_MS = 2;
const CONTENDERS = ['owner', 'owner-claimed', 'connected'] as const;
type Contender = (typeof CONTENDERS)[number];

async function child(contender: Contender, events: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-bench-path-'));
  try {
    const sink = JsonlEventSink.open(path.join(dir, 'events.jsonl'), { overload: 'block' });
    let target: AgentEventSink = sink;
    if (contender === 'owner-claimed') sinkHandle(sink);
    if (contender === 'connected') target = connectSink(sinkHandle(sink));
    const corpus = makeCorpus(Math.min(events, 20_000));
    let spent = 0;
    for (let pass = 0; pass < 2; pass++) {
      spent = 0;
      for (let i = 0; i < events; ) {
        const t0 = process.hrtime.bigint();
        for (let k = 0; k < BURST && i < events; k++, i++) target.handleEvent(corpus[i % corpus.length]!);
        spent += Number(process.hrtime.bigint() - t0);
        await new Promise((r) => setTimeout(r, PAUSE_MS));
      }
    }
    await target.flush?.();
    await sink.close();
    process.stdout.write(JSON.stringify({ contender, events, pacedNsPerEvent: spent / events, written: sink.stats().written }) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  // A connected handle's port would keep the process alive.
  process.exit(0);
}

function parent(events: number, runs: number): void {
  const self = fileURLToPath(import.meta.url);
  const results: { contender: Contender; pacedNsPerEvent: number }[] = [];
  for (let run = 0; run < runs; run++) {
    for (const c of CONTENDERS) {
      const p = spawnSync(process.execPath, [self, '--child', c, '--events', String(events)], { encoding: 'utf8', timeout: 300_000 });
      if (p.status !== 0) throw new Error(`${c}: exit ${p.status ?? p.signal}: ${p.stderr.slice(-800)}`);
      const r = JSON.parse(p.stdout.trim()) as { contender: Contender; pacedNsPerEvent: number };
      results.push(r);
      console.error(`run ${run + 1} ${c}: paced ${r.pacedNsPerEvent.toFixed(0)} ns/event`);
    }
  }
  const med = (c: Contender): number => median(results.filter((r) => r.contender === c).map((r) => r.pacedNsPerEvent));
  const summary = {
    pacedNsPerEvent: Object.fromEntries(CONTENDERS.map((c) => [c, med(c)])),
    claimedOverOwner: med('owner-claimed') / med('owner'),
    connectedOverOwner: med('connected') / med('owner'),
  };
  console.error(JSON.stringify(summary, null, 2));
  const out = { command: `node dist/bench/producer-path.js --events ${events} --runs ${runs}`, date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, summary, results };
  const outDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'producer-path.json'), JSON.stringify(out, null, 2) + '\n');
}

const { values } = parseArgs({ options: { child: { type: 'string' }, events: { type: 'string' }, runs: { type: 'string' } } });
const events = parsePositiveInt(values.events, '--events', 60_000);
if (values.child !== undefined) {
  if (!(CONTENDERS as readonly string[]).includes(values.child)) throw new Error(`--child must be one of ${CONTENDERS.join(', ')}`);
  await child(values.child as Contender, events);
} else {
  parent(events, parsePositiveInt(values.runs, '--runs', 3));
}
