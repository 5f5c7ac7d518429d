// Process exit and signals, for every open sink of the process (and, first, for the events that
// producer threads already sent them through handles).
//
// Exit. One 'exit' listener: it runs synchronously after process.exit(), an uncaught exception or
// unhandled rejection, or the natural end of the loop, and each open sink writes what is left on
// this thread (its writer thread may never run again). Exit is last: the sink does not close there
// but goes on writing every later event synchronously at its call, so events logged from the
// application's own 'exit' listeners — added before or after open() — are written too.
//
// Signals. SIGTERM and SIGINT end a Node process without an 'exit' event. ringlog never changes
// what the application decided about them, and it never takes part in the decision:
// - its listener is prepended, so it runs before any other and sees every listener there is;
// - alone, it keeps the default: everything is written, then the signal is raised again with no
//   listener left, and the process dies of it (exit status and parent's view unchanged);
// - with others, it writes everything accepted so far (the sinks stay open: an asynchronous
//   shutdown may log more), then steps out of the listener list until the signal has been
//   handled, so that a library that acts only when it is the sole listener (signal-exit, used by
//   ora, execa, write-file-atomic, …) finds itself alone, and an application's `once` handler runs
//   undisturbed. It is back for the next signal. Such a library dies by raising the signal again
//   once its own handlers ran (which may log): with no listener left the process ends inside that
//   process.kill() call, so for that moment ringlog wraps process.kill and, when the call is such a
//   fatal re-raise (no listener left for it), writes everything left first.

import { constants } from 'node:os';

/** Events on their way to a sink from elsewhere (a producer thread's handle): delivered first. */
export interface InboundQueue {
  /** Hands the events already sent to their sink, synchronously, until `deadline` (a producer
   *  that keeps sending would otherwise hold the process forever); `ending`: the process ends. */
  deliverNow(ending: boolean, deadline: number): void;
}

/**
 * How long the exit takes events off producers' ports, in total: what they sent before the end is
 * normally there at once (tens of thousands of events take milliseconds), so this bounds only a
 * producer still sending flat out, which would otherwise keep the process from ever ending.
 */
const EXIT_INBOUND_MS = 1000;
/** The same on a signal that others handle: their turn must not wait on it. */
const SIGNAL_INBOUND_MS = 100;

export interface ExitFlushable {
  /** A signal arrived and others decide: write what can be written without waiting; stay open. */
  signalFlush(): void;
  /** The process is ending: write everything left, then every later event at its call. */
  exitFlush(): void;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type Sig = (typeof SIGNALS)[number];

const open = new Set<ExitFlushable>();
const inbound = new Set<InboundQueue>();
let installed = false;

function report(what: string, err: unknown): void {
  // Nothing can be thrown from an exit or signal listener usefully; say it where a person will see it.
  process.stderr.write(`ringlog: ${what} failed: ${(err as Error)?.message ?? String(err)}\n`);
}

function onExit(): void {
  exitAll('exit flush');
}

const signalListeners: Record<Sig, () => void> = {
  SIGTERM: () => onSignal('SIGTERM'),
  SIGINT: () => onSignal('SIGINT'),
};

function onSignal(sig: Sig): void {
  const mine = signalListeners[sig];
  const others = process.listeners(sig).some((l) => l !== mine);
  if (!others) {
    // The default: die of the signal, after everything is written. No 'exit' event follows.
    uninstall();
    exitAll('signal flush');
    open.clear();
    process.kill(process.pid, sig);
    return;
  }
  deliverInbound(false);
  for (const sink of open) {
    try {
      sink.signalFlush();
    } catch (err) {
      report('signal flush', err);
    }
  }
  // Out of the list while the other listeners of this signal run (they see the list as it is when
  // they run), back once they all have: a microtask runs after the signal's emit returns.
  process.removeListener(sig, mine);
  const kill = process.kill;
  let armed = true;
  const guarded = function (this: NodeJS.Process, pid: number, signal?: string | number): true {
    // Only a re-raise that will end the process (nobody left to hear it) calls for the final write;
    // a process that lives on keeps its sinks open.
    if (armed && pid === process.pid && sameSignal(signal, sig) && process.listenerCount(sig) === 0) exitAll('signal flush');
    return kill.call(this, pid, signal);
  };
  process.kill = guarded;
  queueMicrotask(() => {
    armed = false;
    // Another wrapper (a second copy of ringlog) may sit on top of this one: then this one stays in
    // the chain, disarmed, passing calls through.
    if (process.kill === guarded) process.kill = kill;
    if (installed && !process.listeners(sig).includes(mine)) process.prependListener(sig, mine);
  });
}

/** `signal` as process.kill takes it (a name, a number, or absent for SIGTERM) is `sig`. */
function sameSignal(signal: string | number | undefined, sig: Sig): boolean {
  if (signal === undefined) return sig === 'SIGTERM';
  return signal === sig || signal === constants.signals[sig];
}

/** Events already sent by producer threads reach their sinks before those write for good: the
 *  owner's side of a handle does not keep the process alive, so at its end they may still wait. */
function deliverInbound(ending: boolean): void {
  const deadline = Date.now() + (ending ? EXIT_INBOUND_MS : SIGNAL_INBOUND_MS);
  for (const q of inbound) {
    try {
      q.deliverNow(ending, deadline);
    } catch (err) {
      report('delivery of producer events', err);
    }
  }
}

/** The process is ending: every sink writes everything, for good. */
function exitAll(what: string): void {
  deliverInbound(true);
  for (const sink of open) {
    try {
      sink.exitFlush();
    } catch (err) {
      report(what, err);
    }
  }
}

function install(): void {
  installed = true;
  process.on('exit', onExit);
  for (const sig of SIGNALS) process.prependListener(sig, signalListeners[sig]);
}

function uninstall(): void {
  installed = false;
  process.removeListener('exit', onExit);
  for (const sig of SIGNALS) process.removeListener(sig, signalListeners[sig]);
}

/** The listeners are there exactly while a sink or an inbound queue is tracked. */
function listenWhileTracked(): void {
  const needed = open.size > 0 || inbound.size > 0;
  if (needed && !installed) install();
  else if (!needed && installed) uninstall();
}

export function trackForExit(sink: ExitFlushable): void {
  open.add(sink);
  listenWhileTracked();
}

export function untrackForExit(sink: ExitFlushable): void {
  open.delete(sink);
  listenWhileTracked();
}

export function trackInbound(q: InboundQueue): void {
  inbound.add(q);
  listenWhileTracked();
}

export function untrackInbound(q: InboundQueue): void {
  inbound.delete(q);
  listenWhileTracked();
}
