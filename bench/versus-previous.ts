// This build against an earlier one, in the pipeline benchmark's own terms: the ringlog contender
// (bench/contenders/ringlog.ts: a paced phase for the caller's cost, then a saturated phase for
// end-to-end events/s), run for each build in its own process, interleaved, medians compared.
// The earlier build is a checkout of another commit, built (`npm run build`) beside this one.
//
//   git worktree add /tmp/prev <commit> && (cd /tmp/prev && npm install && npm run build)
//   npm run build && node dist/bench/versus-previous.js --previous /tmp/prev [--runs R] [--corpus <one of bench/corpora.ts>] [--label L]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CORPUS_SPECS, type CorpusName } from './corpora.js';
import { commitOf, median, parseCorpus, parseLabel, parsePositiveInt, runChild, type ContenderResult } from './lib.js';

/** As run.ts's full run for the large corpus: 10 s paced, 250,000 events saturated; the other
 *  corpora as the corpus matrix runs them (bench/corpora.ts). */
const DEFAULT_EVENTS: Partial<Record<CorpusName, number>> = { large: 250_000, small: 500_000 };
const DEFAULT_PACED_SECONDS = 10;
const DEFAULT_RUNS = 3;
const CHILD_TIMEOUT_MS = 300_000;

const here = (p: string): string => fileURLToPath(new URL(p, import.meta.url));

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      previous: { type: 'string' },
      runs: { type: 'string' },
      events: { type: 'string' },
      'paced-seconds': { type: 'string' },
      corpus: { type: 'string' },
      label: { type: 'string' },
    },
    strict: true,
  });
  if (values.previous === undefined) throw new Error('--previous <dir> is required: a built checkout of the earlier commit');
  const label = parseLabel(values.label);
  const previousLib = path.resolve(values.previous, 'dist/src/index.js');
  if (!fs.existsSync(previousLib)) throw new Error(`${previousLib} is missing: build the earlier checkout first`);
  const corpus: CorpusName = parseCorpus(values.corpus, 'large');
  const runs = parsePositiveInt(values.runs, '--runs', DEFAULT_RUNS);
  const events = parsePositiveInt(values.events, '--events', DEFAULT_EVENTS[corpus] ?? CORPUS_SPECS[corpus].saturated);
  const paced = parsePositiveInt(values['paced-seconds'], '--paced-seconds', DEFAULT_PACED_SECONDS);
  const builds = [
    { name: 'this', lib: undefined, commit: commitOf(here('../..')) },
    { name: 'previous', lib: previousLib, commit: commitOf(values.previous) },
  ] as const;
  const results: { build: string; run: number; result: ContenderResult }[] = [];
  for (let run = 1; run <= runs; run++) {
    // Alternate who goes first: the kernel may still be writing back the other's pages.
    const order = run % 2 === 1 ? builds : [...builds].reverse();
    for (const b of order) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), `ringlog-bench-versus-${b.name}-`));
      try {
        if (b.lib === undefined) delete process.env.RINGLOG_LIB;
        else process.env.RINGLOG_LIB = b.lib;
        const args = ['--events', String(events), '--paced-seconds', String(paced), '--corpus', corpus, '--dir', dir];
        const result = await runChild<ContenderResult>(here('./contenders/ringlog.js'), args, CHILD_TIMEOUT_MS + paced * 1000);
        results.push({ build: b.name, run, result });
        process.stderr.write(
          `run ${run} ${b.name} (${b.commit}): caller ${result.callerNsPerEvent.toFixed(0)} ns/event paced, ${Math.round(result.eventsPerSec)} events/s end to end\n`,
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const of = (build: string, pick: (r: ContenderResult) => number): number => median(results.filter((r) => r.build === build).map((r) => pick(r.result)));
  const summary = {
    callerNsPerEvent: { this: of('this', (r) => r.callerNsPerEvent), previous: of('previous', (r) => r.callerNsPerEvent) },
    callerP99NsPerEvent: { this: of('this', (r) => r.callerP99NsPerEvent), previous: of('previous', (r) => r.callerP99NsPerEvent) },
    eventsPerSec: { this: of('this', (r) => r.eventsPerSec), previous: of('previous', (r) => r.eventsPerSec) },
  };
  const out = {
    command: `node dist/bench/versus-previous.js --previous ${values.previous} --runs ${runs} --events ${events} --paced-seconds ${paced} --corpus ${corpus}${label === undefined ? '' : ` --label ${label}`}`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: os.cpus().length,
    builds: builds.map((b) => ({ name: b.name, commit: b.commit })),
    summary: {
      ...summary,
      callerRatio: summary.callerNsPerEvent.this / summary.callerNsPerEvent.previous,
      throughputRatio: summary.eventsPerSec.this / summary.eventsPerSec.previous,
    },
    runs: results,
  };
  const outDir = here('../../bench/results/');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, `versus-previous${label === undefined ? '' : `-${label}`}.json`), JSON.stringify(out, null, 2) + '\n');
  console.log(JSON.stringify(out.summary, null, 2));
}

await main();
