// Does compression of rotated segments slow the writer? The same flat-out stream of the large
// corpus goes through a JsonlEventSink with and without `compress: 'gzip'`, each run in its own
// process, interleaved; the figure is the writer's events/s (first handleEvent to flush() resolved)
// with compression over without. Also measured: zlib levels 1, 6 and 9 on the same lines, which is
// what DEFAULT_COMPRESS_LEVEL rests on.
//
//   npx tsc -p tsconfig.json && node dist/bench/compress.js [--events N] [--runs R]

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { gzipSync } from 'node:zlib';
import { JsonlEventSink } from '../src/index.js';
import { makeCorpus } from '../demo/corpus.js';
import { median, parsePositiveInt } from './lib.js';

/** ~260 MB of lines at the large corpus's 1.3 KB mean: several seconds of writing, many rotations. */
const DEFAULT_EVENTS = 200_000;
/** Odd, so the median is a real run. */
const DEFAULT_RUNS = 3;
/** 16 MiB segments: ~16 rotations per run, so compression runs through most of the stream. */
const ROTATE_BYTES = 16 * 1024 * 1024;
/** Events per burst, the event loop turning in between (as the demo does): rotation messages
 *  reach the janitor while the stream runs, as they would in an agent loop. */
const BURST = 1000;
/** Distinct events generated; the stream cycles through them (generation is not what is measured). */
const CORPUS_EVENTS = 20_000;
/** Bytes of lines for the level comparison: large enough for gzip's window to reach steady state. */
const LEVEL_SAMPLE_BYTES = 32 * 1024 * 1024;

interface ChildResult {
  variant: 'off' | 'gzip';
  events: number;
  writeMs: number;
  eventsPerSec: number;
  closeMs: number;
  rotations: number;
  /** Segments compressed by the time flush() resolved: compression overlapped the writing. */
  compressedWhileWriting: number;
  segmentsCompressed: number;
  bytesOnDisk: number;
  bytesWritten: number;
}

async function child(variant: 'off' | 'gzip', events: number): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ringlog-bench-compress-${variant}-`));
  try {
    const corpus = makeCorpus(CORPUS_EVENTS);
    const sink = JsonlEventSink.open(path.join(dir, 'event_log.jsonl'), {
      rotateBytes: ROTATE_BYTES,
      ...(variant === 'gzip' ? { compress: 'gzip' as const } : {}),
    });
    const t0 = performance.now();
    for (let i = 0; i < events; i++) {
      sink.handleEvent(corpus[i % CORPUS_EVENTS]!);
      if (i % BURST === BURST - 1) await new Promise((r) => setImmediate(r));
    }
    await sink.flush();
    const t1 = performance.now();
    const compressedWhileWriting = sink.stats().segmentsCompressed;
    await sink.close();
    const t2 = performance.now();
    const st = sink.stats();
    let bytesOnDisk = 0;
    for (const name of fs.readdirSync(dir)) bytesOnDisk += fs.statSync(path.join(dir, name)).size;
    const out: ChildResult = {
      variant,
      events,
      writeMs: t1 - t0,
      eventsPerSec: events / ((t1 - t0) / 1000),
      closeMs: t2 - t1,
      rotations: st.rotations,
      compressedWhileWriting,
      segmentsCompressed: st.segmentsCompressed,
      bytesOnDisk,
      bytesWritten: st.bytes,
    };
    console.log(JSON.stringify(out));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function levels(): { level: number; ms: number; ratio: number }[] {
  const corpus = makeCorpus(CORPUS_EVENTS);
  const parts: string[] = [];
  let bytes = 0;
  for (let i = 0; bytes < LEVEL_SAMPLE_BYTES; i++) {
    const line = JSON.stringify({ index: i, emitted_at_ms: 1764000000000 + i, frame_depth: null, ...corpus[i % CORPUS_EVENTS] }) + '\n';
    parts.push(line);
    bytes += Buffer.byteLength(line);
  }
  const input = Buffer.from(parts.join(''));
  return [1, 6, 9].map((level) => {
    const t0 = performance.now();
    const out = gzipSync(input, { level });
    return { level, ms: performance.now() - t0, ratio: out.length / input.length };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { events: { type: 'string' }, runs: { type: 'string' }, child: { type: 'string' } } });
  const events = parsePositiveInt(values.events, '--events', DEFAULT_EVENTS);
  if (values.child === 'off' || values.child === 'gzip') return child(values.child, events);
  const runs = parsePositiveInt(values.runs, '--runs', DEFAULT_RUNS);
  const self = fileURLToPath(import.meta.url);
  const results: ChildResult[] = [];
  for (let r = 0; r < runs; r++) {
    // Alternate which variant goes first, so drift of the machine falls on both alike.
    const order: ('off' | 'gzip')[] = r % 2 === 0 ? ['off', 'gzip'] : ['gzip', 'off'];
    for (const v of order) {
      const p = spawnSync(process.execPath, [self, '--child', v, '--events', String(events)], { encoding: 'utf8' });
      if (p.status !== 0) throw new Error(`child ${v} failed (${p.status}): ${p.stderr}`);
      const res = JSON.parse(p.stdout.trim().split('\n').pop()!) as ChildResult;
      results.push(res);
      console.error(`run ${r + 1} ${v}: ${Math.round(res.eventsPerSec)} events/s, close ${Math.round(res.closeMs)} ms, compressed while writing ${res.compressedWhileWriting}/${res.rotations}`);
    }
  }
  const eps = (v: string): number => median(results.filter((x) => x.variant === v).map((x) => x.eventsPerSec));
  const ratio = eps('gzip') / eps('off');
  const lv = levels();
  const report = {
    benchmark: 'compress',
    date: new Date().toISOString(),
    command: `node dist/bench/compress.js --events ${events} --runs ${runs}`,
    node: process.version,
    cpu: os.cpus()[0]?.model,
    cores: os.cpus().length,
    platform: `${os.platform()} ${os.release()}`,
    params: { events, runs, rotateBytes: ROTATE_BYTES, burst: BURST, corpus: 'large' },
    medianEventsPerSec: { off: eps('off'), gzip: eps('gzip') },
    ratio,
    runs: results,
    levels: lv,
  };
  const outDir = fileURLToPath(new URL('../../bench/results/', import.meta.url));
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'compress.json'), JSON.stringify(report, null, 2) + '\n');
  console.log(`writer events/s, median of ${runs}: without ${Math.round(eps('off'))}, with gzip ${Math.round(eps('gzip'))}: ${ratio.toFixed(2)}x`);
  for (const l of lv) console.log(`gzip level ${l.level}: ${l.ms.toFixed(0)} ms for ${LEVEL_SAMPLE_BYTES >> 20} MiB, ${(l.ratio * 100).toFixed(1)}% of the input`);
}

await main();
