#!/usr/bin/env node
// The `ringlog` command. Data goes to stdout, diagnostics to stderr; exit 0 on success, 1 on a
// runtime failure (or problems found by verify), 2 on bad usage. A reader of stdout that goes away
// (`ringlog cat x | head -1`) ends the command quietly with 0, as it would end cat(1).

import * as fs from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { cat, type CatOptions } from './cat.js';
import { createRun, type Run } from './context.js';
import { demo } from './demo.js';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, diag } from './output.js';
import { intOption, portOption } from './args.js';
import { DEFAULT_BUCKETS, stats, type StatsOptions } from './stats.js';
import { tail, type TailOptions } from './tail.js';
import { addLogOptions } from './topic-source.js';
import { addFilterOptions } from './filters.js';
import { pretty, type PrettyCommandOptions } from './pretty-command.js';
import { topics, type TopicsOptions } from './topics.js';
import { verify, type VerifyOptions } from './verify.js';
import { view } from './view.js';

/** dist/src/cli/main.js → the package's own package.json, which npm always ships. */
function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}

const BASE_HELP = 'base file of the set (event_log.jsonl, or a directory holding it); - or nothing reads NDJSON from stdin';
const TOPIC_HELP = 'read this topic of an event log instead of a set (located by --backend, --dir, --sqlite-path, --url or the RINGLOG_EVENT_LOG_* variables); indexes are its ids, types its kinds';
/** tail(1)'s default. */
const DEFAULT_TAIL_LINES = 10;

/** Readable on a terminal, as written when piped; these two decide instead. */
function addStyleOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--json', 'print the lines as written (NDJSON), also on a terminal').conflicts('pretty'))
    .option('--pretty', 'print one readable line per event, also into a pipe (colours: NO_COLOR, FORCE_COLOR)');
}

function buildProgram(run: Run): Command {
  const program = new Command('ringlog')
    .description('Read, check and summarise the JSONL event logs ringlog writes (a base file and its numbered segments), and the topics of its event log.')
    .version(version(), '-V, --version', 'print the version')
    .helpOption('-h, --help', 'show help')
    .helpCommand('help [command]', 'show help for a command')
    // Errors come back here, so that every usage error ends with exit code 2 and nothing exits
    // behind the back of a command still writing.
    .exitOverride()
    .configureOutput({ outputError: (str, write) => write(`ringlog: ${str.replace(/^error: /, '')}`) })
    .addHelpText(
      'after',
      `
Exit status: 0 success, 1 a failure (or problems found by verify), 2 bad usage.

Examples:
  ringlog cat runs/s1 --type tool_call --since 10m
  ringlog cat runs/s1/event_log.jsonl --type tool_call | jq .tool_name
  node app.js | ringlog pretty
  ringlog tail -f runs/s1
  ringlog stats runs/s1 --json
  ringlog verify runs/s1 && echo clean
  ringlog topics --url redis://10.0.0.5:6379
  ringlog tail -f --topic observability.agent_events.s1 --url redis://10.0.0.5:6379`,
    );

  addStyleOptions(addFilterOptions(addLogOptions(
    program
      .command('cat')
      .description('print the events of a set in index order, across segments (or of a topic, or stdin): one readable line each on a terminal, the lines exactly as written when piped or with --json')
      .argument('[base]', BASE_HELP)
      .option('--topic <T>', TOPIC_HELP)
      .option('--from <N>', 'first index to print', intOption(0))
      .option('--to <M>', 'last index to print (inclusive)', intOption(0))
      .option('--warn', 'report gaps, duplicates and bad lines on stderr and go on, instead of failing at the first'),
  ))).action((base: string | undefined, opts: CatOptions) => cat(run, base, opts));

  addStyleOptions(addFilterOptions(addLogOptions(
    program
      .command('tail')
      .description('print the last lines of a set (or events of a topic); with -f, keep printing lines as they are appended')
      .argument('[base]', BASE_HELP)
      .option('--topic <T>', TOPIC_HELP)
      .option('-n, --lines <K>', 'how many lines', intOption(0), DEFAULT_TAIL_LINES)
      .option('-f, --follow', 'follow the set as it grows (and rotates), or the topic as any process appends, until interrupted (SIGINT/SIGTERM)'),
  ))).action((base: string | undefined, opts: TailOptions) => tail(run, base, opts));

  addFilterOptions(addLogOptions(
    program
      .command('stats')
      .description('events and bytes per type, indexes, time span, rate over time, segments and issues of a set (or of a topic)')
      .argument('[base]', BASE_HELP)
      .option('--topic <T>', TOPIC_HELP)
      .option('--json', 'machine-readable output')
      .option('--buckets <B>', 'buckets of the rate-over-time chart', intOption(1), DEFAULT_BUCKETS),
  )).action((base: string | undefined, opts: StatsOptions) => stats(run, base, opts));

  addFilterOptions(
    program
      .command('pretty')
      .description("read NDJSON on stdin (ringlog's, pino's, any tool's) and print one readable line per event, like pino-pretty")
      .option('--json', 'print the lines that pass the filters as they are'),
  ).action((opts: PrettyCommandOptions) => pretty(run, opts));

  addLogOptions(
    program
      .command('topics')
      .description('list the topics of an event log (file, SQLite or Redis), one per line')
      .option('--json', 'as JSON, each topic with its latest id'),
  ).action((opts: TopicsOptions) => topics(run, opts));

  addLogOptions(
    program
      .command('verify')
      .description("check a whole set: contiguous indexes, no duplicates, every line parses, no torn line but at the end (or a topic's provenance chain, with --topic); exit 0 only when clean")
      .argument('[base]', BASE_HELP)
      .option('--topic <T>', "check this event-log topic's provenance chain (prev_hash/record_hash) instead of a set"),
  )
    .option('-q, --quiet', 'print nothing; the exit status tells')
    .option('--json', 'machine-readable report')
    .addOption(new Option('--progress', 'always show a progress bar on stderr (default: on a terminal, for sets of 256 MiB and more)'))
    .addOption(new Option('--no-progress', 'never show a progress bar'))
    .action((base: string | undefined, opts: VerifyOptions) => verify(run, base, opts))
    .addHelpText('after', '\nA torn last line (a writer killed mid-line) is reported as a note and does not fail the check.');

  program
    .command('demo')
    .description('log a simulated high-volume agent loop through ringlog, read it back and check it (as `npm run demo`)')
    .option('--events <N>', 'events to log (default 1,000,000)', intOption(1))
    .option('--out <dir>', 'output directory (default ./ringlog-demo)')
    .option('--rotate-bytes <B>', 'segment size limit (default 100 MiB)', intOption(1))
    .option('--rate <R>', 'events per second instead of flat out', intOption(1))
    .action((opts: { events?: number; out?: string; rotateBytes?: number; rate?: number }) => demo(run, opts));

  program
    .command('view')
    .description('serve a local web viewer of a set on 127.0.0.1; prints its URL (with its access token) and runs until SIGINT/SIGTERM')
    .argument('<base>', 'base file of the set (or a directory holding event_log.jsonl)')
    .option('-p, --port <P>', 'port to listen on (default: a free one)', portOption)
    .option('--no-follow', 'index the set once instead of following what is appended')
    .action((base: string, opts: { port?: number; follow: boolean }) => view(run, base, opts));

  for (const cmd of program.commands) cmd.showHelpAfterError(`(see 'ringlog ${cmd.name()} --help')`);
  program.showHelpAfterError(`(see 'ringlog --help')`);
  return program;
}

/** The exit code for what went wrong, after reporting it on stderr. */
function failure(err: unknown, run: Run): number {
  if (err instanceof CommanderError) {
    // Help and version are "errors" to commander; they exit 0. Anything else it reports is usage.
    return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
  }
  // Whatever broke after stdout's reader left was caused by its leaving.
  if (run.stopReason === 'broken-pipe' && run.out.error === null) return EXIT_OK;
  if (err instanceof CliError) {
    diag(err.exitCode === EXIT_USAGE ? `${err.message} (see --help)` : err.message);
    return err.exitCode;
  }
  const e = err as NodeJS.ErrnoException;
  // Read errors carry the file and line in their message; system errors name their path.
  diag(e instanceof Error ? e.message : String(err));
  return EXIT_FAILURE;
}

async function main(argv: readonly string[] = process.argv): Promise<number> {
  // With stderr's reader gone (`2>&1 | head`), a diagnostic has nowhere to go: dropped, not a crash.
  process.stderr.on('error', () => undefined);
  const run = createRun();
  let code: number;
  try {
    await buildProgram(run).parseAsync([...argv]);
    code = run.exitCode;
  } catch (err) {
    // What was read before a failure is valid output: deliver it before the diagnostic.
    await run.out.flush().catch(() => undefined);
    code = failure(err, run);
  }
  if (run.out.error !== null) {
    diag(`cannot write to stdout: ${run.out.error.message}`);
    return EXIT_FAILURE;
  }
  if (run.stopReason === 'broken-pipe') return EXIT_OK;
  return code;
}

// Natural exit rather than process.exit(): stdout to a pipe may still be draining.
main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    diag(`internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exitCode = EXIT_FAILURE;
  },
);
