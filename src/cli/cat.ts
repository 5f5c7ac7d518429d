// `ringlog cat`: the lines of a set (or of stdin), as they are in the files, in index order.

import type { Run } from './context.js';
import { CliError, EXIT_USAGE, warn } from './output.js';
import { readSource, withSource, type SourceArgs } from './source.js';

export interface CatOptions extends SourceArgs {
  from?: number;
  to?: number;
  type?: string[];
  warn?: boolean;
}

export async function cat(run: Run, arg: string | undefined, opts: CatOptions): Promise<void> {
  if (opts.from !== undefined && opts.to !== undefined && opts.from > opts.to) {
    throw new CliError(`--from ${opts.from} is past --to ${opts.to}: the range is empty`, EXIT_USAGE);
  }
  await withSource(arg, opts, async (src) => {
    const records = readSource(src, {
      ...(opts.from !== undefined ? { fromIndex: opts.from } : {}),
      ...(opts.to !== undefined ? { toIndex: opts.to } : {}),
      ...(opts.type !== undefined && opts.type.length > 0 ? { types: opts.type } : {}),
      issues: opts.warn ? 'warn' : 'throw',
      onIssue: (issue) => warn(issue.message),
      signal: run.signal,
    });
    const { out } = run;
    // The line text is the file's own bytes (decoded only for the envelope), so the output is
    // byte-identical to the selected lines of the set.
    for await (const rec of records) {
      out.line(rec.text);
      if (out.full) await out.flush();
    }
    await out.flush();
  });
}
