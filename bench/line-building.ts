// The writer thread's line building alone, per corpus: ring records (encoded before timing, as
// handleEvent encodes them) turned into JSON lines by the LineBuilder with the default redaction
// policy, against JSON.stringify of the same events with their envelope — the work the writer
// does per event besides its writes, against what a logger that stringifies on its thread pays.
// Optionally the same builder from an earlier build (a checkout built beside this one), to tell
// what a change to line building did. Each (corpus, contender) runs in a process of its own,
// interleaved and rotated over runs; the figure is the median over runs of each child's median
// pass (a pass builds every event of the corpus pool once).
//
//   npm run build && node dist/bench/line-building.js [--runs 5] [--corpus a,b] [--previous <dir>] [--label L]
//
// Results: bench/results/line-building[-<label>].json (--label: what was compared, so that one
// comparison's results do not overwrite another's).

import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { CORPORA, corpusPool, type CorpusName } from './corpora.js';
import { commitOf, median, parseCorpusList, parseLabel, parsePositiveInt } from './lib.js';

/** Events per pass: the corpus pools' size, so every shape is in each pass (huge: 200 of 64–512 KB). */
const POOL = 5_000;
const HUGE_POOL = 200;
/** Passes per child after two warm-up passes (JIT tiers settle within them on every corpus). */
const PASSES = 9;
const DEFAULT_RUNS = 5;

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

interface ChildResult {
  nsPerEvent: number;
  bytesPerEvent: number;
}

/** One child: `builder` loads the LineBuilder from `root` (this build or an earlier one). */
async function child(contender: string, corpus: CorpusName, root: string): Promise<ChildResult> {
  const pool = corpusPool(corpus, 1, corpus === 'huge' ? HUGE_POOL : POOL) as object[];
  let pass: () => number;
  /** UTF-8 bytes of one pass's lines, for the record (not timed). */
  let utf8Bytes = (): number => pass();
  if (contender === 'stringify') {
    // Strings made and dropped, as the matrix's stringify contender: no UTF-8 encoding, no
    // redaction (the builder does both). Their UTF-8 size is counted after timing.
    const line = (i: number): string => JSON.stringify({ index: i, emitted_at_ms: 1_700_000_000_000 + i, frame_depth: null, ...pool[i] });
    pass = () => {
      let chars = 0;
      for (let i = 0; i < pool.length; i++) chars += line(i).length;
      return chars;
    };
    utf8Bytes = () => {
      let bytes = 0;
      for (let i = 0; i < pool.length; i++) bytes += Buffer.byteLength(line(i));
      return bytes;
    };
  } else {
    const load = async <T>(rel: string): Promise<T> => (await import(pathToFileURL(path.join(root, 'dist', rel)).href)) as T;
    const { encodeRecords } = await load<typeof import('./records.js')>('bench/records.js');
    const { LineBuilder } = await load<typeof import('../src/writer/line-builder.js')>('src/writer/line-builder.js');
    const { OutBuffer } = await load<typeof import('../src/writer/out-buffer.js')>('src/writer/out-buffer.js');
    const { KeyTable } = await load<typeof import('../src/ring/keys.js')>('src/ring/keys.js');
    const { compileRedaction, resolveRedactSpec } = await load<typeof import('../src/writer/redact.js')>('src/writer/redact.js');
    const { target, offsets } = encodeRecords(pool, (i) => 1_700_000_000_000 + i);
    // The writer's own key table starts empty and learns each key from its first record, as here.
    const builder = new LineBuilder(new KeyTable(), compileRedaction(resolveRedactSpec(undefined)));
    const out = new OutBuffer(1 << 20);
    pass = () => {
      let bytes = 0;
      for (let i = 0; i < offsets.length; i++) {
        out.len = 0;
        builder.build(target, offsets[i]!, out);
        bytes += out.len;
      }
      return bytes;
    };
  }
  pass();
  pass();
  const times: number[] = [];
  for (let k = 0; k < PASSES; k++) {
    const t = process.hrtime.bigint();
    pass();
    times.push(Number(process.hrtime.bigint() - t));
  }
  return { nsPerEvent: median(times) / pool.length, bytesPerEvent: utf8Bytes() / pool.length };
}

async function parent(runs: number, corpora: readonly CorpusName[], previous: string | undefined, label: string | undefined): Promise<void> {
  const self = here('line-building.js');
  const thisRoot = here('../..');
  const contenders: { name: string; root: string }[] = [
    { name: 'builder', root: thisRoot },
    { name: 'stringify', root: thisRoot },
    ...(previous === undefined ? [] : [{ name: 'builder-previous', root: previous }]),
  ];
  const results: { corpus: CorpusName; contender: string; run: number; nsPerEvent: number; bytesPerEvent: number }[] = [];
  for (let run = 1; run <= runs; run++) {
    for (let c = 0; c < corpora.length; c++) {
      const corpus = corpora[(c + run - 1) % corpora.length]!;
      for (let k = 0; k < contenders.length; k++) {
        const { name, root } = contenders[(k + run - 1) % contenders.length]!;
        const p = spawnSync(process.execPath, [self, '--child', name === 'stringify' ? 'stringify' : 'builder', '--corpus', corpus, '--root', root], { encoding: 'utf8', timeout: 600_000 });
        if (p.status !== 0) throw new Error(`${name} on ${corpus}: exit ${p.status ?? p.signal}: ${p.stderr.slice(-800)}`);
        const r = JSON.parse(p.stdout.trim()) as ChildResult;
        results.push({ corpus, contender: name, run, ...r });
        process.stderr.write(`run ${run} ${corpus.padEnd(8)} ${name.padEnd(16)} ${r.nsPerEvent.toFixed(0)} ns/event\n`);
      }
    }
  }
  const med = (corpus: CorpusName, contender: string): number => median(results.filter((r) => r.corpus === corpus && r.contender === contender).map((r) => r.nsPerEvent));
  const summary = Object.fromEntries(
    corpora.map((corpus) => {
      const builder = med(corpus, 'builder');
      const stringify = med(corpus, 'stringify');
      const row: Record<string, number> = { builderNsPerEvent: builder, stringifyNsPerEvent: stringify, builderOverStringify: builder / stringify };
      if (previous !== undefined) {
        row.previousNsPerEvent = med(corpus, 'builder-previous');
        row.builderOverPrevious = builder / row.previousNsPerEvent;
      }
      return [corpus, row];
    }),
  );
  console.error(JSON.stringify(summary, null, 2));
  const all = corpora.length === CORPORA.length;
  const command = `node dist/bench/line-building.js --runs ${runs}${all ? '' : ` --corpus ${corpora.join(',')}`}${previous === undefined ? '' : ' --previous <checkout of ' + commitOf(previous) + '>'}${label === undefined ? '' : ` --label ${label}`}`;
  const out = { command, date: new Date().toISOString(), node: process.version, cpus: os.cpus().length, commit: commitOf(thisRoot), previousCommit: previous === undefined ? null : commitOf(previous), summary, results };
  const outDir = here('../../bench/results/');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, `line-building${label === undefined ? '' : `-${label}`}.json`), JSON.stringify(out, null, 2) + '\n');
}

const { values } = parseArgs({
  options: { child: { type: 'string' }, corpus: { type: 'string' }, root: { type: 'string' }, runs: { type: 'string' }, previous: { type: 'string' }, label: { type: 'string' } },
  strict: true,
});
const corpora: CorpusName[] = parseCorpusList(values.corpus);
if (values.child !== undefined) {
  if (values.child !== 'builder' && values.child !== 'stringify') throw new Error(`--child must be builder or stringify, got ${values.child}`);
  if (corpora.length !== 1 || values.root === undefined) throw new Error('--child needs one --corpus and --root');
  process.stdout.write(JSON.stringify(await child(values.child, corpora[0]!, values.root)) + '\n');
} else {
  let previous: string | undefined;
  if (values.previous !== undefined) {
    previous = path.resolve(values.previous);
    if (!fs.existsSync(path.join(previous, 'dist/src/writer/line-builder.js'))) throw new Error(`${previous}/dist is missing: build the earlier checkout first`);
  }
  await parent(parsePositiveInt(values.runs, '--runs', DEFAULT_RUNS), corpora, previous, parseLabel(values.label));
}
