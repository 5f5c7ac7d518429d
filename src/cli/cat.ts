// `ringlog cat`: the lines of a set (or of stdin, or the events of a topic) in index order —
// readable on a terminal, as written when piped — after the filters given.

import type { Run } from './context.js';
import { makeFilter, reportUnmatchedTypes, type FilterOptions } from './filters.js';
import { CliError, EXIT_USAGE, warn } from './output.js';
import { lineStyle, styled } from './pretty.js';
import { readSource, withSource, type SourceArgs } from './source.js';

export interface CatOptions extends SourceArgs, FilterOptions {
  from?: number;
  to?: number;
  warn?: boolean;
  json?: boolean;
  pretty?: boolean;
}

export async function cat(run: Run, arg: string | undefined, opts: CatOptions): Promise<void> {
  if (opts.from !== undefined && opts.to !== undefined && opts.from > opts.to) {
    throw new CliError(`--from ${opts.from} is past --to ${opts.to}: the range is empty`, EXIT_USAGE);
  }
  const filter = makeFilter(opts);
  const style = lineStyle(opts);
  await withSource(arg, opts, async (src) => {
    const records = readSource(src, {
      ...(opts.from !== undefined ? { fromIndex: opts.from } : {}),
      ...(opts.to !== undefined ? { toIndex: opts.to } : {}),
      issues: opts.warn ? 'warn' : 'throw',
      onIssue: (issue) => warn(issue.message),
      signal: run.signal,
    });
    const { out } = run;
    // As written, the line text is the file's own bytes (decoded only for the envelope), so the
    // output is byte-identical to the selected lines of the set.
    for await (const rec of records) {
      if (!filter.test(rec)) continue;
      out.line(styled(rec.text, style));
      if (out.full) await out.flush();
    }
    await out.flush();
  });
  if (!run.signal.aborted) reportUnmatchedTypes(filter);
}
