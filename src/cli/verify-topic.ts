// `ringlog verify --topic T`: an event-log topic's provenance chain (the log's `provenance` option)
// read from its first record to its last: each record's record_hash matches its contents and its
// prev_hash is the record_hash of the record before. Exit 0 only when the chain holds; otherwise the
// first record that breaks it is named, with why.

import { checkChain, type ChainBreak } from '../event-log/provenance.js';
import type { Run } from './context.js';
import { EXIT_FAILURE, EXIT_OK, int } from './output.js';
import type { TopicSource } from './source.js';
import { logFailure, PAGE } from './topic-source.js';

export interface VerifyTopicJson {
  source: string;
  clean: boolean;
  records: number;
  firstId: number | null;
  lastId: number | null;
  /** The first record that breaks the chain, null when it holds. */
  broken: ChainBreak | null;
}

export async function verifyTopic(run: Run, src: TopicSource, opts: { quiet?: boolean; json?: boolean }): Promise<void> {
  const state: { prev: string | null; lastId: number } = { prev: null, lastId: 0 };
  let records = 0;
  let firstId: number | null = null;
  let broken: ChainBreak | null = null;
  let neverWritten = false;
  try {
    neverWritten = (await src.log.latest(src.topic)) === null;
    for (let after = 0; broken === null && !run.signal.aborted && !neverWritten; ) {
      const page = await src.log.readRange(src.topic, after, PAGE);
      if (page.length === 0) break;
      firstId ??= page[0]!.id;
      broken = checkChain(src.topic, page, state);
      // Ids missing right at a page's start: compaction ran between two reads. The chain is
      // checked on from what is left, as from any compaction's start.
      if (broken !== null && broken.id === page[0]!.id && broken.id > state.lastId + 1 && state.prev !== null) {
        state.prev = null;
        broken = checkChain(src.topic, page, state);
      }
      records += broken === null ? page.length : page.findIndex((r) => r.id === broken!.id);
      after = page[page.length - 1]!.id;
    }
  } catch (err) {
    throw logFailure(err);
  }
  if (run.signal.aborted) return;
  if (neverWritten) {
    run.exitCode = EXIT_FAILURE;
    if (!opts.quiet) run.out.line(opts.json ? JSON.stringify({ source: `topic ${src.topic}`, clean: false, records: 0, firstId: null, lastId: null, broken: null, neverWritten: true }, null, 2) : `NONE — topic ${src.topic} has never been written (a misspelt name, or another log?)`);
    await run.out.flush();
    return;
  }
  const report: VerifyTopicJson = { source: `topic ${src.topic}`, clean: broken === null, records, firstId, lastId: broken === null ? (records > 0 ? state.lastId : null) : broken.id, broken };
  run.exitCode = report.clean ? EXIT_OK : EXIT_FAILURE;
  if (opts.quiet) return;
  if (opts.json) run.out.line(JSON.stringify(report, null, 2));
  else if (broken !== null) run.out.line(`BROKEN — topic ${src.topic}: record ${int(broken.id)} ${broken.reason} (${int(records)} record(s) before it check out)`);
  else if (records === 0) run.out.line(`OK — topic ${src.topic} holds no records`);
  else {
    const compacted = firstId !== null && firstId > 1 ? ` (ids before ${int(firstId)} were compacted: the chain is checked from there)` : '';
    run.out.line(`OK — topic ${src.topic}: ${int(records)} records, ids ${int(firstId!)} … ${int(state.lastId)}, the provenance chain holds${compacted}`);
  }
  await run.out.flush();
}
