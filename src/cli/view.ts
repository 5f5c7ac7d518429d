// `ringlog view`: the local web viewer (src/viewer/server.ts) on a set; prints its URL (token
// included) on stdout, opens nothing, and serves until SIGINT or SIGTERM.

import type { Run } from './context.js';
import { stopOnSignals, stopped } from './context.js';
import { CliError } from './output.js';
import { openSource } from './source.js';

export interface ViewOptions {
  port?: number;
  follow: boolean;
}

export async function view(run: Run, arg: string, opts: ViewOptions): Promise<void> {
  const src = await openSource(arg, { stdin: false });
  if (src.kind !== 'set') throw new CliError('view needs a set on disk');
  // Loaded on demand: the viewer (an HTTP server and its page) is not needed by any other command.
  const { startViewer } = await import('../viewer/server.js');
  // Handlers first: a signal that arrives while the server starts still ends the run cleanly.
  const unhook = stopOnSignals(run);
  try {
    let viewer: Awaited<ReturnType<typeof startViewer>>;
    try {
      viewer = await startViewer(src.base, { ...(opts.port !== undefined ? { port: opts.port } : {}), follow: opts.follow });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE') throw new CliError(`port ${opts.port} is already in use`);
      if (code === 'EACCES') throw new CliError(`port ${opts.port} cannot be used without privileges`);
      if (code === 'ENOENT') throw new CliError(`${arg}: no such event log`);
      throw err;
    }
    try {
      run.out.line(viewer.url);
      await run.out.flush();
      await stopped(run);
    } finally {
      await viewer.close();
    }
  } finally {
    unhook();
  }
}
