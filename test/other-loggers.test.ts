// Issue 14: the loggers people already use besides pino, with the real libraries. LogTape through
// `ringlog/logtape` (a sink LogTape configures and disposes of); winston through the README's
// transport class (winston-transport, which winston installs, calling handleEvent).

import { configure, getLogger, reset } from '@logtape/logtape';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import winston from 'winston';
import Transport from 'winston-transport';
import { getRinglogSink } from '../dist/src/bridges/logtape.js';
import { JsonlEventSink } from '../dist/src/index.js';
import { readLines, tempDirs } from './helpers.js';

const dirs = tempDirs();
afterEach(() => dirs.cleanup());

describe('LogTape: getRinglogSink', () => {
  afterEach(async () => {
    await reset();
  });

  it('writes each record as an event (level, category, rendered message, timestamp, properties); dispose() closes the sink', async () => {
    const dir = dirs.make('logtape');
    const sink = getRinglogSink({ path: path.join(dir, 'app.jsonl') });
    await configure({ sinks: { ringlog: sink }, loggers: [{ category: ['agent'], lowestLevel: 'debug', sinks: ['ringlog'] }, { category: ['logtape', 'meta'], sinks: [] }] });
    const log = getLogger(['agent', 'tools']);
    log.info('called {tool} with {args}', { tool: 'read_file', args: { path: 'a.ts' }, session: 's1' });
    log.debug`tick ${42}`;
    log.with({ session: 's2' }).warn('slow', { level: 'mine', ms: 1200 });
    getLogger(['other']).info('not routed');
    await reset(); // disposes the sinks: ringlog's closes, so the file is complete
    const lines = readLines(dir, 'app.jsonl').raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map(({ emitted_at_ms, timestamp, ...rest }) => rest)).toEqual([
      { index: 0, frame_depth: null, type: 'log', level: 'info', category: 'agent.tools', message: 'called read_file with {"path":"a.ts"}', tool: 'read_file', args: { path: 'a.ts' }, session: 's1' },
      { index: 1, frame_depth: null, type: 'log', level: 'debug', category: 'agent.tools', message: 'tick 42' },
      { index: 2, frame_depth: null, type: 'log', level: 'warning', category: 'agent.tools', message: 'slow', session: 's2', ms: 1200, properties: { level: 'mine' } },
    ]);
    expect(typeof lines[0]!.timestamp).toBe('number');
    expect(sink.sink.stats()).toMatchObject({ accepted: 3, written: 3, dropped: 0 });
  });

  it('rejects bad options synchronously', () => {
    expect(() => getRinglogSink(undefined as never)).toThrow(new TypeError('ringlog: getRinglogSink expects options with a path'));
    expect(() => getRinglogSink({ path: '' })).toThrow(new TypeError('ringlog: getRinglogSink needs a path (a non-empty string)'));
    expect(() => getRinglogSink({ path: path.join(dirs.make('logtape-bad'), 'x.jsonl'), overload: 'never' as never })).toThrow(RangeError);
  });
});

describe('winston: the README\'s transport class', () => {
  it('writes each winston info object as an event: level, message, format fields and metadata; ringlog renames envelope-named fields', async () => {
    const dir = dirs.make('winston');
    // The README's adapter, as a user writes it.
    const sink = JsonlEventSink.open(path.join(dir, 'app.jsonl'));
    class RinglogTransport extends Transport {
      override log(info: object, next: () => void): void {
        sink.handleEvent(info);
        next();
      }
    }
    const logger = winston.createLogger({ level: 'debug', format: winston.format.combine(winston.format.errors({ stack: true }), winston.format.timestamp()), transports: [new RinglogTransport()] });
    logger.info('hello', { session: 's1', index: 4 });
    logger.debug('details', { nested: { a: [1, 2] } });
    logger.error(new Error('boom'));
    await sink.close();
    const lines = readLines(dir, 'app.jsonl').raw.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l.index, l.level, l.message])).toEqual([
      [0, 'info', 'hello'],
      [1, 'debug', 'details'],
      [2, 'error', 'boom'],
    ]);
    expect(lines[0]).toMatchObject({ session: 's1', event_index: 4 });
    expect(lines[1]).toMatchObject({ nested: { a: [1, 2] } });
    expect(typeof lines[0]!.timestamp).toBe('string');
    expect(String(lines[2]!.stack)).toMatch(/^Error: boom\n/);
  });
});
