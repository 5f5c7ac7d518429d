// `ringlog demo`: the demo of `npm run demo` (demo/demo.ts, compiled to dist/demo/demo.js), run
// as a process of its own exactly as npm runs it, so the figures it measures are the same.

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { constants as osConstants } from 'node:os';
import type { Run } from './context.js';
import { CliError } from './output.js';

export interface DemoOptions {
  events?: number;
  out?: string;
  rotateBytes?: number;
  rate?: number;
}

/** dist/src/cli/demo.js → dist/demo/demo.js, in the checkout and in an installed package alike. */
export const DEMO_URL = new URL('../../demo/demo.js', import.meta.url);

/** A child killed by a signal ends the command as a shell reports it: 128 + the signal's number. */
const SIGNAL_EXIT_BASE = 128;

export async function demo(run: Run, opts: DemoOptions): Promise<void> {
  const script = fileURLToPath(DEMO_URL);
  if (!fs.existsSync(script)) throw new CliError(`the demo is not part of this installation (${script} is missing)`);
  const args: string[] = [];
  if (opts.events !== undefined) args.push('--events', String(opts.events));
  if (opts.out !== undefined) args.push('--out', opts.out);
  if (opts.rotateBytes !== undefined) args.push('--rotate-bytes', String(opts.rotateBytes));
  if (opts.rate !== undefined) args.push('--rate', String(opts.rate));
  // Inherited stdio: the demo's report and progress go straight to the user's terminal or pipe.
  const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
  // A terminal's Ctrl-C reaches the whole process group already; a signal sent to this process
  // alone is passed on, so the demo's sink still flushes before it goes.
  const forward = (sig: NodeJS.Signals): void => {
    child.kill(sig);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c, s) => resolve({ code: c, signal: s }));
    });
    run.exitCode = signal !== null ? SIGNAL_EXIT_BASE + (osConstants.signals[signal] ?? 0) : (code ?? 1);
  } finally {
    process.off('SIGINT', forward);
    process.off('SIGTERM', forward);
  }
}
