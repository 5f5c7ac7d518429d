// A one-line progress bar on stderr, for long reads someone is watching.

import { fixed } from './output.js';

/**
 * Redraws at most ten times a second: fast enough to look continuous to a person, and at most a few
 * hundred bytes a second of terminal output, nothing next to a read of hundreds of MB a second.
 */
export const REDRAW_MS = 100;
/** Cells of the bar: fits an 80-column terminal with the label and the figures beside it. */
const BAR_CELLS = 30;
/** Time is checked once per this many updates: a clock read per record would cost more than the record's bookkeeping. */
const CHECK_EVERY = 256;

export interface Progress {
  update(done: number): void;
  /** Erases the bar, so what is printed next starts on a clean line. */
  finish(): void;
}

/** MiB with one decimal: enough to see movement on a set of hundreds of MiB. */
function mib(bytes: number): string {
  return fixed(bytes / (1024 * 1024), 1);
}

export const NO_PROGRESS: Progress = { update() {}, finish() {} };

export function progressBar(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  let lastDraw = 0;
  let calls = 0;
  let drawn = false;
  const draw = (done: number): void => {
    const fraction = total > 0 ? Math.min(1, done / total) : 1;
    const filled = Math.round(fraction * BAR_CELLS);
    const bar = '█'.repeat(filled) + '░'.repeat(BAR_CELLS - filled);
    stream.write(`\r${label} ${bar} ${fixed(fraction * 100, 0).padStart(3)}%  ${mib(done)} of ${mib(total)} MiB\x1b[K`);
    drawn = true;
  };
  return {
    update(done) {
      if (++calls % CHECK_EVERY !== 0) return;
      const now = Date.now();
      if (now - lastDraw < REDRAW_MS) return;
      lastDraw = now;
      draw(done);
    },
    finish() {
      // \r and erase-to-end-of-line: the bar leaves no trace in the terminal's scrollback.
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
