// `ringlog pretty`: NDJSON on stdin (ringlog's lines, an event log's records, pino's, winston's,
// any tool's) as readable lines on stdout, like pino-pretty; lines that are not JSON pass through
// as they are. The filters of `cat` apply.

import * as readline from 'node:readline';
import type { Run } from './context.js';
import { makeFilter, recordOfText, reportUnmatchedTypes, type FilterOptions } from './filters.js';
import { CliError, EXIT_USAGE } from './output.js';
import { lineStyle, styled } from './pretty.js';

export interface PrettyCommandOptions extends FilterOptions {
  json?: boolean;
}

export async function pretty(run: Run, opts: PrettyCommandOptions, stdin: NodeJS.ReadableStream & { isTTY?: boolean } = process.stdin): Promise<void> {
  if (stdin.isTTY === true) throw new CliError('ringlog pretty reads NDJSON from stdin: pipe something into it (ringlog cat … | ringlog pretty)', EXIT_USAGE);
  const filter = makeFilter(opts);
  // A filter for people: readable even when its output goes on down a pipe, unless --json.
  const style = lineStyle({ pretty: opts.json !== true, json: opts.json === true });
  const { out } = run;
  const lines = readline.createInterface({ input: stdin, crlfDelay: Infinity });
  let n = 0;
  for await (const text of lines) {
    if (run.signal.aborted) break;
    n++;
    if (text.trim() === '') continue;
    if (filter.active && !filter.test(recordOfText(text, '-', n))) continue;
    out.line(styled(text, style));
    if (out.full) await out.flush();
    else out.flushSoon();
  }
  lines.close();
  await out.flush();
  if (!run.signal.aborted) reportUnmatchedTypes(filter);
}
