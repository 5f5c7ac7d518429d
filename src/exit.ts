// Process-exit flushing. One 'exit' listener for all sinks: it runs synchronously after
// process.exit(), an uncaught exception or unhandled rejection, or the natural end of the loop,
// and each open sink drains what is left on this thread (the writer threads may never run again).
//
// SIGTERM and SIGINT kill a Node process without an 'exit' event. While a sink is open and
// nobody else listens for them, ringlog listens: it flushes, then re-raises the signal so the
// process still dies of it (exit status and parent's view unchanged). When the application has its
// own listener, that listener decides; if it exits, the 'exit' listener flushes.

export interface ExitFlushable {
  exitFlush(): void;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type Sig = (typeof SIGNALS)[number];

const open = new Set<ExitFlushable>();
let installed = false;

function flushAll(): void {
  for (const sink of open) {
    try {
      sink.exitFlush();
    } catch (err) {
      // Nothing can be thrown from an exit listener usefully; say it where a person will see it.
      process.stderr.write(`ringlog: exit flush failed: ${(err as Error)?.message ?? String(err)}\n`);
    }
  }
}

function onSignal(sig: Sig): void {
  if (process.listenerCount(sig) > 1) return;
  flushAll();
  open.clear();
  uninstall();
  process.kill(process.pid, sig);
}

function install(): void {
  installed = true;
  process.on('exit', flushAll);
  for (const sig of SIGNALS) process.on(sig, onSignal);
}

function uninstall(): void {
  installed = false;
  process.removeListener('exit', flushAll);
  for (const sig of SIGNALS) process.removeListener(sig, onSignal);
}

export function trackForExit(sink: ExitFlushable): void {
  open.add(sink);
  if (!installed) install();
}

export function untrackForExit(sink: ExitFlushable): void {
  open.delete(sink);
  if (open.size === 0 && installed) uninstall();
}
