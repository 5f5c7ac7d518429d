// Pathological shapes: what one handleEvent costs the caller next to JSON.stringify of the same
// value, for events with 10^4 and 10^6 ever-new keys and for a sparse array of length 10^9.
// Each contender (ringlog, JSON.stringify) runs in its own process, interleaved, so neither
// inherits the other's heap or JIT state; each process warms up on ordinary events first (a
// long-running agent has), then times the first wide call and `--reps` more, each on new keys.
//
//   npm run build && node dist/bench/wide-events.js [--runs R] [--reps N]

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JsonlEventSink } from '../src/index.js';
import { median, parsePositiveInt } from './lib.js';

/** The shapes of issue 11: 10^4 and 10^6 keys; an array of 10^9 holes. */
const SHAPES = { keys_1e4: 1e4, keys_1e6: 1e6, sparse_1e9: 1e9 } as const;
type Shape = keyof typeof SHAPES;
type Contender = 'ringlog' | 'json';
/** Ordinary events before timing: the encoder is JIT-compiled as in a running agent. */
const WARMUP_EVENTS = 20_000;
const DEFAULT_RUNS = 3;
const DEFAULT_REPS = 3;

interface ChildResult {
  contender: Contender;
  shape: Shape;
  /** ms of the first wide call, then of each repetition. */
  firstMs: number;
  repMs: number[];
  /** What the call did: 'written', 'rejected: <reason>', or JSON.stringify's error. */
  outcome: string;
}

function makeValue(shape: Shape, rep: number): object {
  if (shape === 'sparse_1e9') return { type: 'sparse', rows: new Array(SHAPES[shape]) };
  const o: Record<string, unknown> = { type: 'wide' };
  // New key names every repetition: interning can never help, as with data used as keys.
  for (let i = 0; i < SHAPES[shape]; i++) o[`r${rep}_key_${i}`] = i;
  return o;
}

async function child(contender: Contender, shape: Shape, reps: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ringlog-bench-wide-`));
  try {
    const sink = JsonlEventSink.open(path.join(dir, 'event_log.jsonl'));
    for (let i = 0; i < WARMUP_EVENTS; i++) {
      const e = { type: 'warm', i, text: `warm-up ${i}`, nested: { list: [1, 2, 3], ok: true } };
      if (contender === 'ringlog') sink.handleEvent(e);
      else JSON.stringify(e);
    }
    await sink.flush();
    const times: number[] = [];
    let outcome = '';
    for (let r = 0; r <= reps; r++) {
      const value = makeValue(shape, r);
      const t0 = performance.now();
      if (contender === 'ringlog') {
        sink.handleEvent(value);
      } else {
        try {
          JSON.stringify(value);
          outcome = 'written';
        } catch (err) {
          outcome = `${(err as Error).name}: ${(err as Error).message}`;
        }
      }
      times.push(performance.now() - t0);
      if (contender === 'ringlog') await sink.flush();
    }
    await sink.close();
    if (contender === 'ringlog') {
      const text = fs.readFileSync(path.join(dir, 'event_log.jsonl'), 'utf8');
      const last = JSON.parse(text.slice(text.lastIndexOf('\n', text.length - 2) + 1)) as { type: string; reason?: string };
      outcome = last.type === 'event_rejected' ? `rejected: ${last.reason}` : 'written';
    }
    const result: ChildResult = { contender, shape, firstMs: times[0]!, repMs: times.slice(1), outcome };
    process.stdout.write(JSON.stringify(result) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function parent(runs: number, reps: number): void {
  const self = fileURLToPath(import.meta.url);
  const results: ChildResult[] = [];
  for (const shape of Object.keys(SHAPES) as Shape[]) {
    for (let run = 0; run < runs; run++) {
      for (const contender of ['json', 'ringlog'] as const) {
        const p = spawnSync(process.execPath, [self, '--child', contender, '--shape', shape, '--reps', String(reps)], {
          encoding: 'utf8',
          maxBuffer: 1 << 20,
        });
        if (p.status !== 0) throw new Error(`${contender} ${shape} failed (${p.status}): ${p.stderr}`);
        const res = JSON.parse(p.stdout.trim()) as ChildResult;
        results.push(res);
        console.error(`${shape} ${contender} run ${run + 1}: first ${res.firstMs.toFixed(1)} ms, then ${res.repMs.map((t) => t.toFixed(1)).join(', ')} ms (${res.outcome})`);
      }
    }
  }
  const summary: Record<string, unknown> = {};
  for (const shape of Object.keys(SHAPES) as Shape[]) {
    const of = (c: Contender, pick: (r: ChildResult) => number[]): number =>
      median(results.filter((r) => r.shape === shape && r.contender === c).flatMap(pick));
    const first = { json: of('json', (r) => [r.firstMs]), ringlog: of('ringlog', (r) => [r.firstMs]) };
    const steady = { json: of('json', (r) => r.repMs), ringlog: of('ringlog', (r) => r.repMs) };
    summary[shape] = {
      firstCallMs: first,
      firstCallRatio: first.ringlog / first.json,
      laterCallsMs: steady,
      laterCallsRatio: steady.ringlog / steady.json,
      outcomes: [...new Set(results.filter((r) => r.shape === shape).map((r) => `${r.contender}: ${r.outcome}`))],
    };
  }
  const out = {
    command: `node dist/bench/wide-events.js --runs ${runs} --reps ${reps}`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    warmupEvents: WARMUP_EVENTS,
    summary,
    runs: results,
  };
  const outDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'wide-events.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(summary, null, 2));
}

const { values } = parseArgs({
  options: {
    child: { type: 'string' },
    shape: { type: 'string' },
    runs: { type: 'string' },
    reps: { type: 'string' },
  },
});
const reps = parsePositiveInt(values.reps, '--reps', DEFAULT_REPS);
if (values.child !== undefined) {
  await child(values.child as Contender, values.shape as Shape, reps);
} else {
  parent(parsePositiveInt(values.runs, '--runs', DEFAULT_RUNS), reps);
}
