// What durable projection (issue 15) saves and what it costs, with it on and off:
//
// - workload `streaming`: an agent session whose tool calls stream a 20 KB argument in 50-byte
//   deltas (400 cumulative `tool_call_update` snapshots per call), between ordinary events of the
//   project's large corpus; `corpus`: the large corpus alone, no streaming (what the projection's
//   byte check costs where it finds nothing to leave out).
// - the writer's cost per event: the writer thread's work (the projection's decision, the line
//   builder with the default redaction, the batched write) in-process, timed alone;
// - end to end through a real JsonlEventSink: bytes and lines on disk, the caller's time in
//   handleEvent, and the time from the first event to flush() resolving.
//
// Each contender (workload x on/off) runs in a process of its own, interleaved over runs.
//
//   npm run build && node dist/bench/projection.js [--runs 5]
//
// Results: bench/results/projection.json.

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { makeCorpus, type AgentEventLike } from '../demo/corpus.js';
import { JsonlEventSink } from '../src/index.js';
import { projectedLine } from '../src/files/format.js';
// The writer's batch: one write per 256 KiB, as the segment writer does.
import { OUT_FLUSH } from '../src/writer/segment-writer.js';
import { KeyTable } from '../src/ring/keys.js';
import { LineBuilder } from '../src/writer/line-builder.js';
import { WriterProjection } from '../src/writer/record-projection.js';
import { OutBuffer } from '../src/writer/out-buffer.js';
import { compileRedaction, resolveRedactSpec } from '../src/writer/redact.js';
import { encodeRecords } from './records.js';
import { median, parsePositiveInt, spread } from './lib.js';

/** The realistic streaming: a 20 KB argument in 50-byte deltas. */
const ARGUMENT_BYTES = 20_000;
const DELTA_BYTES = 50;
/** 25 calls: 10,000 snapshots of ~10 KB on average, ~100 MB unprojected, a second or two of writing. */
const CALLS = 25;
/** Ordinary events before each call, and one between every this many snapshots (assistant text,
 *  other tools): a session is not only snapshots. */
const EVENTS_BEFORE_CALL = 10;
const SNAPSHOTS_PER_OTHER_EVENT = 20;
/** The corpus workload: 50,000 events of ~1.3 KB, ~65 MB. */
const CORPUS_EVENTS = 50_000;
/** The caller yields to its event loop every this many events, as an agent loop awaiting its model does. */
const YIELD_EVERY = 1000;

const WORKLOADS = ['streaming', 'corpus'] as const;
type Workload = (typeof WORKLOADS)[number];

function streamingSession(): AgentEventLike[] {
  const corpus = makeCorpus(CALLS * (EVENTS_BEFORE_CALL + ARGUMENT_BYTES / DELTA_BYTES / SNAPSHOTS_PER_OTHER_EVENT + 1));
  let c = 0;
  const events: AgentEventLike[] = [];
  for (let call = 0; call < CALLS; call++) {
    for (let i = 0; i < EVENTS_BEFORE_CALL; i++) events.push(corpus[c++]!);
    const id = `call-${call}`;
    const text = `{"path":"src/file-${call}.ts","content":${JSON.stringify('x'.repeat(ARGUMENT_BYTES - 40))}}`;
    let n = 0;
    for (let at = DELTA_BYTES; at < text.length + DELTA_BYTES; at += DELTA_BYTES) {
      events.push({ type: 'tool_call_update', session_id: 'bench', tool_call_id: id, tool_name: 'write_file', status: 'pending', raw_input_partial: text.slice(0, at) });
      if (++n % SNAPSHOTS_PER_OTHER_EVENT === 0) events.push(corpus[c++]!);
    }
    events.push({ type: 'tool_call', session_id: 'bench', tool_call_id: id, tool_name: 'write_file', status: 'pending', raw_input: JSON.parse(text) as unknown });
    events.push({ type: 'tool_call_update', session_id: 'bench', tool_call_id: id, tool_name: 'write_file', status: 'completed', raw_output: { ok: true } });
  }
  return events;
}

function workloadEvents(w: Workload): AgentEventLike[] {
  return w === 'streaming' ? streamingSession() : makeCorpus(CORPUS_EVENTS);
}

interface ChildResult {
  events: number;
  /** Writer stage, in-process. */
  writerNsPerEvent: number;
  writerBytes: number;
  writerLines: number;
  /** Through a real sink. */
  sinkBytes: number;
  sinkLines: number;
  projected: number;
  callerNsPerEvent: number;
  endToEndMs: number;
}

/** The writer thread's work on these events: build each line, let the projection judge it, write in 256 KiB batches. */
function writerStage(events: readonly AgentEventLike[], projection: boolean, file: string): { ns: number; bytes: number; lines: number } {
  const stamp = Date.now();
  const { target: src, offsets } = encodeRecords(events, () => stamp);
  const builder = new LineBuilder(new KeyTable(), compileRedaction(resolveRedactSpec(undefined)));
  const proj = projection ? new WriterProjection() : null;
  const out = new OutBuffer(2 * OUT_FLUSH);
  const fd = fs.openSync(file, 'w');
  let bytes = 0;
  let lines = 0;
  const write = (): void => {
    let off = 0;
    while (off < out.len) off += fs.writeSync(fd, out.buf, off, out.len - off);
    bytes += out.len;
    out.len = 0;
  };
  const endLine = (): void => {
    out.ensure(1);
    out.buf[out.len++] = 0x0a;
    lines++;
  };
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < offsets.length; i++) {
    // As the writer's consumer does (src/writer/consumer.ts): judged before the line is built.
    const verdict = proj === null ? 'keep' : proj.judgeRecord(builder, src, offsets[i]!);
    if (verdict === 'leave') {
      proj!.leftOut(i, stamp);
      continue;
    }
    const start = out.len;
    builder.build(src, offsets[i]!, out);
    if (proj !== null) {
      if (verdict === 'line' && !proj.keepLine(out.buf, start, out.len)) {
        out.len = start;
        proj.leftOut(i, stamp);
        continue;
      }
      const run = proj.takeRun();
      if (run !== undefined) {
        const line = Buffer.from(out.buf.subarray(start, out.len));
        out.len = start;
        out.ascii(projectedLine(run.first, run.emittedAtMs, run.count));
        endLine();
        out.bytes(line, 0, line.length);
      }
    }
    endLine();
    if (out.len >= OUT_FLUSH) write();
  }
  const run = proj?.takeRun();
  if (run !== undefined) {
    out.ascii(projectedLine(run.first, run.emittedAtMs, run.count));
    endLine();
  }
  write();
  const ns = Number(process.hrtime.bigint() - t0);
  fs.closeSync(fd);
  return { ns, bytes, lines };
}

async function throughSink(events: readonly AgentEventLike[], projection: boolean, file: string): Promise<{ bytes: number; lines: number; projected: number; callerNs: number; ms: number }> {
  const sink = JsonlEventSink.open(file, { durableProjection: projection });
  let callerNs = 0n;
  const t0 = performance.now();
  for (let i = 0; i < events.length; i += YIELD_EVERY) {
    const c0 = process.hrtime.bigint();
    for (let k = i; k < Math.min(events.length, i + YIELD_EVERY); k++) sink.handleEvent(events[k]!);
    callerNs += process.hrtime.bigint() - c0;
    await yieldToLoop();
  }
  await sink.flush();
  const ms = performance.now() - t0;
  const stats = sink.stats();
  await sink.close();
  const text = fs.readFileSync(file);
  let lines = 0;
  for (let at = text.indexOf(10); at !== -1; at = text.indexOf(10, at + 1)) lines++;
  return { bytes: text.length, lines, projected: stats.projected, callerNs: Number(callerNs), ms };
}

async function child(workload: Workload, projection: boolean): Promise<ChildResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ringlog-bench-projection-'));
  try {
    const events = workloadEvents(workload);
    const w = writerStage(events, projection, path.join(dir, 'writer.jsonl'));
    const s = await throughSink(events, projection, path.join(dir, 'sink.jsonl'));
    return {
      events: events.length,
      writerNsPerEvent: w.ns / events.length,
      writerBytes: w.bytes,
      writerLines: w.lines,
      sinkBytes: s.bytes,
      sinkLines: s.lines,
      projected: s.projected,
      callerNsPerEvent: s.callerNs / events.length,
      endToEndMs: s.ms,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const { values } = parseArgs({ options: { child: { type: 'string' }, projection: { type: 'string' }, runs: { type: 'string' } } });
if (values.child !== undefined) {
  const workload = values.child as Workload;
  if (!WORKLOADS.includes(workload)) throw new Error(`--child must be one of ${WORKLOADS.join(', ')}`);
  process.stdout.write(JSON.stringify(await child(workload, values.projection === 'on')) + '\n');
} else {
  const runs = parsePositiveInt(values.runs, '--runs', 5);
  const self = fileURLToPath(import.meta.url);
  const results: (ChildResult & { workload: Workload; projection: boolean; run: number })[] = [];
  for (let run = 1; run <= runs; run++) {
    for (const workload of WORKLOADS) {
      for (const projection of run % 2 === 0 ? [true, false] : [false, true]) {
        const p = spawnSync(process.execPath, [self, '--child', workload, '--projection', projection ? 'on' : 'off'], { encoding: 'utf8', timeout: 600_000 });
        if (p.status !== 0) throw new Error(`${workload} projection ${projection}: ${p.stderr}`);
        const r = JSON.parse(p.stdout.trim().split('\n').at(-1)!) as ChildResult;
        results.push({ workload, projection, run, ...r });
        process.stdout.write(
          `run ${run} ${workload.padEnd(9)} projection ${projection ? 'on ' : 'off'}: ${(r.sinkBytes / 1e6).toFixed(1)} MB, ${r.sinkLines.toLocaleString('en-US')} lines, ` +
            `writer ${Math.round(r.writerNsPerEvent).toLocaleString('en-US')} ns/event, caller ${Math.round(r.callerNsPerEvent).toLocaleString('en-US')} ns/event, end to end ${Math.round(r.endToEndMs)} ms\n`,
        );
      }
    }
  }
  const summary = Object.fromEntries(
    WORKLOADS.map((workload) => {
      const of = (p: boolean, f: (r: ChildResult) => number): number => median(results.filter((r) => r.workload === workload && r.projection === p).map(f));
      const figures = (p: boolean): Record<string, unknown> => ({
        bytes: of(p, (r) => r.sinkBytes),
        lines: of(p, (r) => r.sinkLines),
        projected: of(p, (r) => r.projected),
        writerNsPerEvent: spread(results.filter((r) => r.workload === workload && r.projection === p).map((r) => r.writerNsPerEvent)),
        callerNsPerEvent: of(p, (r) => r.callerNsPerEvent),
        endToEndMs: of(p, (r) => r.endToEndMs),
      });
      return [
        workload,
        {
          events: results.find((r) => r.workload === workload)!.events,
          off: figures(false),
          on: figures(true),
          bytesOnOverOff: of(true, (r) => r.sinkBytes) / of(false, (r) => r.sinkBytes),
          writerOnOverOff: of(true, (r) => r.writerNsPerEvent) / of(false, (r) => r.writerNsPerEvent),
          endToEndOnOverOff: of(true, (r) => r.endToEndMs) / of(false, (r) => r.endToEndMs),
        },
      ];
    }),
  );
  const out = {
    command: `node dist/bench/projection.js --runs ${runs}`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    summary,
    runs: results,
  };
  const dest = path.join(path.dirname(self), '..', '..', 'bench', 'results', 'projection.json');
  fs.writeFileSync(dest, JSON.stringify(out, null, 2) + '\n');
  process.stdout.write(JSON.stringify(summary, null, 2) + '\n' + `written to ${path.relative(process.cwd(), dest)}\n`);
}
