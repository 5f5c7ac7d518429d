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
  try {
    for (let after = 0; broken === null && !run.signal.aborted; ) {
      const page = await src.log.readRange(src.topic, after, PAGE);
      if (page.length === 0) break;
      firstId ??= page[0]!.id;
      broken = checkChain(src.topic, page, state);
      records += broken === null ? page.length : page.findIndex((r) => r.id === broken!.id);
      after = page[page.length - 1]!.id;
    }
  } catch (err) {
    throw logFailure(err);
  }
  if (run.signal.aborted) return;
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
