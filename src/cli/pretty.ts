// One readable line per event, for a person at a terminal: time, index, type (coloured by what it
// is), session, and the event's summary (reader/summary.ts). Pure: `ringlog cat`/`tail`/`pretty`
// call it.

import { gistOf, isObject, oneLine, scalar, type EventKind } from '../reader/summary.js';

export interface PrettyOptions {
  /** ANSI colours (see colorWanted). */
  readonly color: boolean;
  /** Characters per line; longer summaries are cut with an ellipsis. */
  readonly width: number;
}

/**
 * Whether to colour: NO_COLOR (any value, no-color.org) turns it off, FORCE_COLOR turns it on
 * ('0' or 'false' off), else on a terminal only.
 */
export function colorWanted(isTTY: boolean, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined) return force !== '0' && force !== 'false';
  return isTTY;
}

const ESC = '\u001b[';
const RESET = `${ESC}0m`;
const DIM = '2';
const BOLD = '1';
/** Colours by kind of event (ANSI foreground codes). */
const COLOR: Record<EventKind, string> = { message: '36', tool: '33', ok: '32', error: '31', loss: '35', other: '34' };

/** The readable line of one parsed JSON value; `fallback` is printed for anything not an object. */
export function prettyLine(value: unknown, fallback: string, o: PrettyOptions): string {
  if (!isObject(value)) return cut(oneLine(fallback), o.width);
  const g = gistOf(value);
  const head = [timeText(g.time), g.index === undefined ? '#-' : `#${String(g.index)}`, g.type, ...(g.session !== undefined ? [`[${g.session}]`] : [])];
  const painted = [paint(o, DIM, head[0]!), paint(o, DIM, head[1]!), paint(o, `${BOLD};${COLOR[g.kind]}`, g.type), ...(g.session !== undefined ? [paint(o, DIM, head[3]!)] : [])].join(' ');
  if (g.summary === '') return painted;
  const room = o.width - head.join(' ').length - 1;
  return `${painted} ${room > 8 ? cut(g.summary, room) : g.summary}`;
}

/** HH:MM:SS.mmm local time of a number of ms or a date string; the value itself otherwise. */
function timeText(t: unknown): string {
  const d = typeof t === 'number' ? new Date(t) : typeof t === 'string' ? new Date(t) : undefined;
  if (d === undefined || Number.isNaN(d.getTime())) return t === undefined ? '--:--:--.---' : scalar(t);
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

function cut(s: string, width: number): string {
  if (s.length <= width) return s;
  return width <= 1 ? '…' : `${s.slice(0, width - 1)}…`;
}

function paint(o: PrettyOptions, code: string, text: string): string {
  return o.color ? `${ESC}${code}m${text}${RESET}` : text;
}

/** How a command prints each event: as written (NDJSON), or readable. */
export interface LineStyle extends PrettyOptions {
  readonly pretty: boolean;
}

/**
 * Readable on a terminal, the lines as written when piped; --json and --pretty decide instead.
 * Colour follows colorWanted; the width is the terminal's (no cutting when piped).
 */
export function lineStyle(o: { json?: boolean; pretty?: boolean }, out: { isTTY?: boolean; columns?: number } = process.stdout): LineStyle {
  const tty = out.isTTY === true;
  const pretty = o.pretty === true || (o.json !== true && tty);
  return { pretty, color: pretty && colorWanted(tty), width: tty ? out.columns || DEFAULT_WIDTH : Infinity };
}

/** A terminal that does not say how wide it is: the classic 80 columns would cut most summaries short. */
const DEFAULT_WIDTH = 120;

/** One line of output for the text of one record. */
export function styled(text: string, s: LineStyle): string {
  if (!s.pretty) return text;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  return prettyLine(value, text, s);
}
