// Fast on every workload (issue 16): the caller's paced cost and the end-to-end rate of
// `JSON.stringify` alone, the synchronous port and ringlog, on every corpus of the family
// (bench/corpora.ts), in one interleaved run. Each child is one contender on one corpus (the
// pipeline harness's main phase: a paced phase, then N events flat out to the file); the order of
// corpora and contenders rotates every run, so drift of the shared machine spreads over all.
//
//   npm run build && node dist/bench/corpus-matrix.js [--runs 3] [--paced-seconds 3] [--corpus a,b]
//
// Results: bench/results/corpus-matrix.json (with the command), charts in bench/charts/.

import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { renderChart, SERIES_COLOURS, unitOf, type Chart, type Panel } from './charts.js';
import { CORPUS_SPECS, type CorpusName } from './corpora.js';
import { parseCorpusList, parsePositiveInt, runChild, spread, type ContenderResult, type Spread } from './lib.js';

const CONTENDERS = ['stringify', 'sync-port', 'ringlog'] as const;
type ContenderName = (typeof CONTENDERS)[number];
/** The issue's bars: caller ≤ 0.5× stringify alone; end to end ≥ 1.2× (≥ 1.5× on the default corpus). */
const CALLER_BAR = 0.5;
const E2E_BAR = 1.2;
const E2E_BAR_DEFAULT = 1.5;
/** 3 s paced: 300 bursts at 20,000 events/s, enough for a stable median; the matrix is 8 corpora. */
const DEFAULT_PACED_SECONDS = 3;

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));
const ROOT = here('../../');

interface Cell {
  callerNsPerEvent: Spread | null;
  eventsPerSec: Spread | null;
}

const { values } = parseArgs({ options: { runs: { type: 'string' }, 'paced-seconds': { type: 'string' }, corpus: { type: 'string' } } });
const runs = parsePositiveInt(values.runs, '--runs', 3);
const pacedSeconds = parsePositiveInt(values['paced-seconds'], '--paced-seconds', DEFAULT_PACED_SECONDS);
const corpora: CorpusName[] = parseCorpusList(values.corpus);

const results: { corpus: CorpusName; contender: ContenderName; run: number; result: ContenderResult }[] = [];
for (let run = 1; run <= runs; run++) {
  const cs = corpora.map((_, i) => corpora[(i + run - 1) % corpora.length]!);
  for (const corpus of cs) {
    const order = CONTENDERS.map((_, i) => CONTENDERS[(i + run - 1) % CONTENDERS.length]!);
    for (const contender of order) {
      const dir = await mkdtemp(join(tmpdir(), `ringlog-matrix-${contender}-`));
      try {
        const args = ['--events', String(CORPUS_SPECS[corpus].saturated), '--paced-seconds', String(pacedSeconds), '--corpus', corpus, '--dir', dir];
        const result = await runChild<ContenderResult>(here(`./contenders/${contender}.js`), args, 600_000);
        results.push({ corpus, contender, run, result });
        process.stderr.write(`run ${run} ${corpus.padEnd(8)} ${contender.padEnd(10)} caller ${result.callerNsPerEvent.toFixed(0)} ns/event, ${result.eventsPerSec.toFixed(0)} events/s\n`);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
  }
}

const cells = new Map<string, Cell>();
for (const corpus of corpora) {
  for (const contender of CONTENDERS) {
    const mine = results.filter((r) => r.corpus === corpus && r.contender === contender).map((r) => r.result);
    cells.set(`${corpus}/${contender}`, { callerNsPerEvent: spread(mine.map((r) => r.callerNsPerEvent)), eventsPerSec: spread(mine.map((r) => r.eventsPerSec)) });
  }
}
const cell = (corpus: CorpusName, contender: ContenderName): Cell => cells.get(`${corpus}/${contender}`)!;
const summary = corpora.map((corpus) => {
  const s = cell(corpus, 'stringify');
  const r = cell(corpus, 'ringlog');
  const callerRatio = r.callerNsPerEvent && s.callerNsPerEvent ? r.callerNsPerEvent.median / s.callerNsPerEvent.median : null;
  const e2eRatio = r.eventsPerSec && s.eventsPerSec ? r.eventsPerSec.median / s.eventsPerSec.median : null;
  const e2eBar = corpus === 'large' ? E2E_BAR_DEFAULT : E2E_BAR;
  return {
    corpus,
    about: CORPUS_SPECS[corpus].about,
    callerVsStringify: callerRatio,
    callerMet: callerRatio !== null && callerRatio <= CALLER_BAR,
    endToEndVsStringify: e2eRatio,
    endToEndBar: e2eBar,
    endToEndMet: e2eRatio !== null && e2eRatio >= e2eBar,
    cells: Object.fromEntries(CONTENDERS.map((c) => [c, cell(corpus, c)])),
  };
});

const fmt = (x: number | null, d = 2): string => (x === null ? '—' : x.toFixed(d));
const n0 = (s: Spread | null): string => (s === null ? '—' : Math.round(s.median).toLocaleString('en-US'));
const table = [
  '| corpus | stringify caller ns | ringlog caller ns | **caller ÷ stringify** (bar ≤ 0.5) | stringify events/s | sync port events/s | ringlog events/s | **end to end ÷ stringify** (bar) |',
  '|---|--:|--:|--:|--:|--:|--:|--:|',
  ...summary.map((s) =>
    `| ${s.corpus} | ${n0(s.cells.stringify!.callerNsPerEvent)} | ${n0(s.cells.ringlog!.callerNsPerEvent)} | ${fmt(s.callerVsStringify)}× ${s.callerMet ? '✓' : '✗'} | ` +
      `${n0(s.cells.stringify!.eventsPerSec)} | ${n0(s.cells['sync-port']!.eventsPerSec)} | ${n0(s.cells.ringlog!.eventsPerSec)} | ${fmt(s.endToEndVsStringify)}× (≥ ${s.endToEndBar}) ${s.endToEndMet ? '✓' : '✗'} |`,
  ),
].join('\n');
const worstCaller = summary.reduce((a, b) => ((b.callerVsStringify ?? 0) > (a.callerVsStringify ?? 0) ? b : a));
const worstE2e = summary.reduce((a, b) => ((b.endToEndVsStringify ?? Infinity) < (a.endToEndVsStringify ?? Infinity) ? b : a));
const command = `node dist/bench/corpus-matrix.js --runs ${runs} --paced-seconds ${pacedSeconds}${values.corpus ? ` --corpus ${values.corpus}` : ''}`;
process.stdout.write(`${table}\n\nworst caller: ${worstCaller.corpus} ${fmt(worstCaller.callerVsStringify)}×; worst end to end: ${worstE2e.corpus} ${fmt(worstE2e.endToEndVsStringify)}×\n`);

const chart = (metric: 'callerNsPerEvent' | 'eventsPerSec', title: string, subtitle: string): Chart => {
  const panel: Panel = {
    heading: null,
    unit: unitOf(metric),
    series: CONTENDERS.map((c, i) => ({ label: c, colour: c === 'ringlog' ? '#0072B2' : SERIES_COLOURS[i]! })),
    rows: corpora.map((corpus) => ({
      name: corpus,
      highlight: false,
      bars: CONTENDERS.map((c, i) => {
        const s = cell(corpus, c)[metric];
        return s === null ? null : { spread: s, colour: c === 'ringlog' ? '#0072B2' : SERIES_COLOURS[i]! };
      }),
    })),
  };
  return { title, subtitle, panels: [panel], bandHighlight: false, notes: [], footer: [`${cpus()[0]?.model ?? 'unknown CPU'}, ${cpus().length} cores, Node ${process.version}. ${command}`] };
};
const chartsDir = join(ROOT, 'bench', 'charts');
await mkdir(chartsDir, { recursive: true });
// A run over some corpora only (--corpus) keeps its own files: the full matrix stays what the README cites.
const suffix = values.corpus === undefined ? '' : `-${corpora.join('-')}`;
await writeFile(join(chartsDir, `corpus-matrix${suffix}-caller.svg`), renderChart(chart('callerNsPerEvent', 'Caller cost per corpus (paced, lower is better)', 'Median nanoseconds per handleEvent / JSON.stringify call at 20,000 events/s (100 events/s for huge), whiskers min–max over runs.')));
await writeFile(join(chartsDir, `corpus-matrix${suffix}-end-to-end.svg`), renderChart(chart('eventsPerSec', 'End to end per corpus (higher is better)', 'Events per second from the first event to the last line in the file (stringify: to the last string made), whiskers min–max over runs.')));

const out = join(ROOT, 'bench', 'results', `corpus-matrix${suffix}.json`);
await writeFile(out, JSON.stringify({ command, date: new Date().toISOString(), node: process.version, cpus: cpus().length, runs, pacedSeconds, summary, results }, null, 2) + '\n');
process.stdout.write(`saved ${relative(process.cwd(), out)}\n`);
