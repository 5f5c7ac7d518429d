// Issue 6: the local viewer (`startViewer`, the page behind `ringlog view <base>`). Over HTTP: who
// may talk to it (token, Host, 127.0.0.1 only) and that its answers agree with the files. In
// headless Chromium (Debian's package, driven by playwright-core): what a person sees — the
// histogram and its legend, a jump by index and by time, the selected event's JSON, keyboard
// steps, live follow — and, on a million events, that the browser only receives what it shows.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import * as zlib from 'node:zlib';
import { chromium, type Browser, type Page } from 'playwright-core';
import { JsonlEventSink } from '../dist/src/index.js';
import { startViewer, type Viewer } from '../dist/src/viewer/server.js';
import { BASE_NAME, readLines, segmentFiles, tempDirs, type LogSet } from './helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const dirs = tempDirs();
const DOCS_SCREENSHOT = new URL('../docs/viewer.png', import.meta.url);

// ---------------------------------------------------------------------------------------------
// Chromium: Debian's package, installed here when missing.

function run(cmd: string, args: string[], timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    let out = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

async function ensureChromium(): Promise<void> {
  if (fs.existsSync(CHROMIUM)) return;
  // Another install may be under way (apt holds the dpkg lock while it runs): apt-get waits for the
  // lock up to this long instead of failing, and then finds the package already there.
  const lock = ['-o', 'DPkg::Lock::Timeout=900'];
  // 20 minutes: downloading and unpacking Chromium and its libraries takes minutes on a slow line.
  const deadline = 20 * 60_000;
  let r = await run('apt-get', [...lock, 'install', '-y', 'chromium'], deadline);
  if (!fs.existsSync(CHROMIUM)) {
    // The package lists may be missing or stale (a fresh container has none).
    await run('apt-get', [...lock, 'update'], deadline);
    r = await run('apt-get', [...lock, 'install', '-y', 'chromium'], deadline);
  }
  if (!fs.existsSync(CHROMIUM)) {
    throw new Error(
      `The viewer tests need Chromium at ${CHROMIUM} (Debian's "chromium" package) and could not install it ` +
        `(apt-get exited ${r.code}; run as root with network access, or install it by hand). apt-get said:\n${r.out.slice(-3000)}`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Event sets.

/** Deterministic pseudo-random numbers (a 32-bit LCG), so every run writes the same kind of set. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const TOOLS = ['read_file', 'grep', 'run_tests', 'edit_file', 'list_dir'];
const FILES = ['src/sink.ts', 'src/encoder.ts', 'README.md', 'test/rotation.test.ts', 'src/viewer/server.ts'];
const WORDS = 'the writer thread drains the ring in batches while the loop keeps going and nothing blocks'.split(' ');

function words(r: () => number, n: number): string {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(WORDS[Math.floor(r() * WORDS.length)]!);
  return out.join(' ');
}

/** One agent-loop event; `phase` (0..1) shifts the mix from planning to tool work to answering. */
function agentEvent(r: () => number, i: number, phase: number): Record<string, unknown> {
  const x = r();
  // Shares of each kind: tool work dominates the middle of the run, answering its end.
  const tools = phase > 0.25 && phase < 0.75 ? 0.5 : 0.15;
  const iteration = 0.08;
  const plan = phase < 0.3 ? 0.15 : 0.03;
  const judge = phase > 0.6 ? 0.08 : 0.02;
  const error = 0.02;
  if (x < tools / 2) return { type: 'tool_call', tool_name: TOOLS[i % TOOLS.length], input: { path: FILES[i % FILES.length], line: i % 400 } };
  if (x < tools) return { type: 'tool_result', tool_name: TOOLS[i % TOOLS.length], ok: r() > 0.1, output: words(r, 20 + Math.floor(r() * 200)) };
  if (x < tools + iteration) return { type: 'iteration', n: i, tokens: { input: 1000 + Math.floor(r() * 9000), output: Math.floor(r() * 2000) } };
  if (x < tools + iteration + plan) return { type: 'plan', steps: [words(r, 4), words(r, 5), words(r, 3)] };
  if (x < tools + iteration + plan + judge) return { type: 'judge', verdict: r() > 0.3 ? 'pass' : 'retry', score: Math.round(r() * 100) / 100 };
  if (x < tools + iteration + plan + judge + error) return { type: 'error', message: `ENOENT: ${FILES[i % FILES.length]}`, retryable: true };
  return { type: 'message_chunk', content: words(r, 3 + Math.floor(r() * 12)) };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A set written over a few seconds, a small group of events every `tickMs`, the group size rising
 * and falling (with a lull a third of the way in), so the timeline has a shape to show.
 */
async function writeAgentSet(dir: string, ticks: number, tickMs: number, rotateBytes: number): Promise<LogSet> {
  const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes });
  const r = rng(6);
  let i = 0;
  for (let t = 0; t < ticks; t++) {
    const phase = t / ticks;
    const lull = phase > 0.35 && phase < 0.42;
    const size = lull ? (t % 3 === 0 ? 1 : 0) : Math.max(1, Math.round(16 + 11 * Math.sin(t / 13) + 5 * Math.sin(t / 3.7)));
    for (let k = 0; k < size; k++, i++) {
      sink.handleEvent(agentEvent(r, i, phase), i % 9 === 0 ? { frameDepth: 1 + (i % 3), executionId: `exec-${i % 4}` } : undefined);
    }
    await sleep(tickMs);
  }
  await sink.close();
  return readLines(dir);
}

/** The raw line with this index, found by streaming the set (a million lines are not held in memory). */
async function rawLineOf(dir: string, index: number): Promise<string> {
  const prefix = `{"index":${index},`;
  for (const { name } of segmentFiles(dir)) {
    const rl = readline.createInterface({ input: fs.createReadStream(path.join(dir, name)), crlfDelay: Infinity });
    for await (const line of rl) {
      if (line.startsWith(prefix)) {
        rl.close();
        return line;
      }
    }
  }
  throw new Error(`no line with index ${index}`);
}

const prettyOf = (raw: string): string => JSON.stringify(JSON.parse(raw), null, 2);

// ---------------------------------------------------------------------------------------------
// HTTP helpers: node:http, because fetch() will not send a Host header of the caller's choosing.

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, pathname: string, headers: Record<string, string> = {}, host = '127.0.0.1', method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, path: pathname, method, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function api<T>(v: Viewer, pathname: string): Promise<T> {
  const r = await request(v.port, pathname, { 'x-ringlog-token': v.token });
  if (r.status !== 200) throw new Error(`${pathname}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as T;
}

function connectRefused(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' || err.code === 'EADDRNOTAVAIL' || err.code === 'ENETUNREACH'));
  });
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

interface Summary {
  events: number;
  lines: number;
  droppedIndexes: number;
  projectedIndexes: number;
  firstIndex: number;
  lastIndex: number;
  firstTime: number;
  lastTime: number;
  types: { name: string; count: number }[];
  segments: { number: number; file: string; bytes: number }[];
  follow: boolean;
  generation: number;
  scanner: 'reader' | 'own';
  issues: { count: number; samples: string[] };
}
interface Histogram {
  from: number;
  to: number;
  buckets: number;
  bucketMs: number;
  total: number;
  series: { type: string; total: number; counts: number[] }[];
}

// ---------------------------------------------------------------------------------------------
// Browser helpers.

let browser: Browser | undefined;

async function openPage(url: string): Promise<Page> {
  // Wide enough for list and JSON side by side; the screenshot is taken at this size.
  const page = await browser!.newPage({ viewport: { width: 1440, height: 880 } });
  await page.goto(url);
  await page.waitForSelector('#histogram[data-total]');
  await page.waitForSelector('#event-list li.sel');
  return page;
}

/**
 * Run in the page (a string: this file is compiled without the DOM's types): the share of the
 * histogram canvas that is painted, and how many distinct colours it has.
 */
const PAINTED_PIXELS = `(() => {
  const c = document.getElementById('histogram');
  const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const colours = new Set();
  let n = 0;
  for (let i = 0; i < data.length; i += 4) {
    if (data[i + 3] > 0) {
      n++;
      colours.add(data[i] + ',' + data[i + 1] + ',' + data[i + 2]);
    }
  }
  return { fraction: n / (data.length / 4), colours: colours.size };
})()`;

async function selectedIndex(page: Page): Promise<number> {
  return Number(await page.locator('#event-list li.sel').getAttribute('data-index'));
}

/** Waits until the list selects `index` and the JSON panel shows that event. */
async function expectSelected(page: Page, index: number): Promise<void> {
  await page.waitForSelector(`#event-list li.sel[data-index="${index}"]`);
  await page.waitForSelector(`#event-json[data-index="${index}"]`);
}

beforeAll(async () => {
  await ensureChromium();
  // --no-sandbox: the tests run as root, where Chromium refuses its sandbox.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 25 * 60_000);

afterAll(async () => {
  await browser?.close();
  dirs.cleanup();
});

// ---------------------------------------------------------------------------------------------

describe('viewer: a set of agent events', () => {
  let dir: string;
  let set: LogSet;
  let v: Viewer;

  beforeAll(async () => {
    dir = dirs.make('viewer-agent');
    // 300 ticks 10 ms apart: ~4,500 events over ~3-4 s (timers are coarse), in several 256 KB segments.
    set = await writeAgentSet(dir, 300, 10, 256 * 1024);
    v = await startViewer(path.join(dir, BASE_NAME), { follow: false });
  });
  afterAll(async () => {
    await v?.close();
  });

  it('validates its options', async () => {
    const base = path.join(dir, BASE_NAME);
    await expect(startViewer(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(startViewer('')).rejects.toThrow(RangeError);
    await expect(startViewer(base, { port: '80' as unknown as number })).rejects.toThrow(TypeError);
    await expect(startViewer(base, { port: -1 })).rejects.toThrow(RangeError);
    await expect(startViewer(base, { port: 1.5 })).rejects.toThrow(RangeError);
    await expect(startViewer(base, { port: 65536 })).rejects.toThrow(RangeError);
    await expect(startViewer(base, { token: 'short' })).rejects.toThrow(RangeError);
    await expect(startViewer(base, { token: 'a'.repeat(20) + '/?' })).rejects.toThrow(RangeError);
    await expect(startViewer(base, { token: 7 as unknown as string })).rejects.toThrow(TypeError);
    await expect(startViewer(base, { follow: 'yes' as unknown as boolean })).rejects.toThrow(TypeError);
    await expect(startViewer(path.join(dir, 'missing.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('listens on 127.0.0.1 only, on a random port unless given one, with a 32-hex-digit token in the URL', async () => {
    expect(v.address.address).toBe('127.0.0.1');
    expect(v.port).toBeGreaterThan(0);
    expect(v.token).toMatch(/^[0-9a-f]{32}$/);
    expect(v.url).toBe(`http://127.0.0.1:${v.port}/?token=${v.token}`);
    // Same port, any other address: nothing listens there (127.0.0.2 is loopback too, yet not bound).
    expect(await connectRefused('127.0.0.2', v.port)).toBe(true);
    const external = Object.values(os.networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (external) expect(await connectRefused(external.address, v.port)).toBe(true);
    expect(await connectRefused('::1', v.port)).toBe(true);

    const port = await freePort();
    const other = await startViewer(path.join(dir, BASE_NAME), { port, token: 'given-token-0123456789', follow: false });
    try {
      expect(other.port).toBe(port);
      expect(other.url).toBe(`http://127.0.0.1:${port}/?token=given-token-0123456789`);
      expect((await request(port, '/api/summary?token=given-token-0123456789')).status).toBe(200);
    } finally {
      await other.close();
    }
    expect(await connectRefused('127.0.0.1', port)).toBe(true);
  });

  it('answers 403, with no data, to a request without the token or with a wrong one', async () => {
    for (const p of ['/', '/app.js', '/api/summary', '/api/event?index=0', '/api/events?around=10']) {
      const none = await request(v.port, p);
      expect(none.status, p).toBe(403);
      expect(none.body).not.toContain('index');
    }
    const wrong = 'f'.repeat(32);
    expect((await request(v.port, `/?token=${wrong}`)).status).toBe(403);
    expect((await request(v.port, '/api/summary', { 'x-ringlog-token': wrong })).status).toBe(403);
    expect((await request(v.port, `/api/summary?token=${v.token.slice(0, 31)}`)).status).toBe(403);
    // The right token, by query (the page's URL) or by header (the page's API calls).
    expect((await request(v.port, `/?token=${v.token}`)).status).toBe(200);
    expect((await request(v.port, '/api/summary', { 'x-ringlog-token': v.token })).status).toBe(200);
    // A wrong header is not rescued by a right query.
    expect((await request(v.port, `/api/summary?token=${v.token}`, { 'x-ringlog-token': wrong })).status).toBe(403);
  });

  it('refuses a foreign Host header even with the token (DNS rebinding)', async () => {
    const auth = { 'x-ringlog-token': v.token };
    for (const host of [`evil.example:${v.port}`, `127.0.0.1:${v.port + 1}`, 'localhost', `127.0.0.1.evil.example:${v.port}`]) {
      const r = await request(v.port, '/api/summary', { ...auth, host });
      expect([403, 421], host).toContain(r.status);
      expect(r.body).not.toContain('events');
    }
    expect((await request(v.port, '/api/summary', { ...auth, host: `localhost:${v.port}` })).status).toBe(200);
    expect((await request(v.port, '/api/summary', { ...auth, host: `LOCALHOST:${v.port}` })).status).toBe(200);
  });

  it('serves the page under a strict CSP and refuses other methods', async () => {
    const page = await request(v.port, `/?token=${v.token}`);
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['content-security-policy']).toContain("script-src 'self'");
    expect(page.headers['content-security-policy']).not.toContain('unsafe-inline');
    expect(page.headers['cache-control']).toBe('no-store');
    expect(page.body).toContain(`app.js?token=${v.token}`);
    expect((await request(v.port, '/api/summary', { 'x-ringlog-token': v.token }, '127.0.0.1', 'POST')).status).toBe(405);
    expect((await request(v.port, '/api/events?limit=201', { 'x-ringlog-token': v.token })).status).toBe(400);
    expect((await request(v.port, '/api/event?index=x', { 'x-ringlog-token': v.token })).status).toBe(400);
  });

  it('summarises the set and buckets it server-side: the histogram sums to the event count', async () => {
    const s = await api<Summary>(v, '/api/summary');
    expect(s.scanner).toBe('reader');
    expect(s.events).toBe(set.lines.length);
    expect(s.firstIndex).toBe(0);
    expect(s.lastIndex).toBe(set.lines.length - 1);
    expect(s.firstTime).toBe(set.lines[0]!.emitted_at_ms);
    expect(s.lastTime).toBe(set.lines.at(-1)!.emitted_at_ms);
    expect(s.segments.map((x) => x.file)).toEqual(set.files.map((f) => f.name));
    const byType = new Map<string, number>();
    for (const l of set.lines) byType.set(l.type!, (byType.get(l.type!) ?? 0) + 1);
    expect(new Map(s.types.map((t) => [t.name, t.count]))).toEqual(byType);

    for (const buckets of [1, 37, 300]) {
      const h = await api<Histogram>(v, `/api/histogram?buckets=${buckets}`);
      expect(h.buckets).toBe(buckets);
      expect(h.total).toBe(set.lines.length);
      let sum = 0;
      for (const series of h.series) {
        expect(series.counts).toHaveLength(buckets);
        expect(series.counts.reduce((a, c) => a + c, 0)).toBe(series.total);
        expect(series.total).toBe(byType.get(series.type));
        sum += series.total;
      }
      expect(sum).toBe(set.lines.length);
    }
    // A window: only the events inside it, in the right buckets.
    const from = set.lines[1000]!.emitted_at_ms;
    const to = set.lines[3000]!.emitted_at_ms;
    const h = await api<Histogram>(v, `/api/histogram?from=${from}&to=${to}&buckets=10`);
    const inside = set.lines.filter((l) => l.emitted_at_ms >= from && l.emitted_at_ms <= to);
    expect(h.total).toBe(inside.length);
    const expected = new Array<number>(10).fill(0);
    for (const l of inside) expected[Math.min(9, Math.floor(((l.emitted_at_ms - from) / (to - from)) * 10))]!++;
    const got = new Array<number>(10).fill(0);
    for (const series of h.series) series.counts.forEach((c, b) => (got[b]! += c));
    expect(got).toEqual(expected);
  });

  it('pages events, returns one event as its exact line and locates a time', async () => {
    const n = set.lines.length;
    type Page = { focus: number | null; hasBefore: boolean; hasAfter: boolean; events: { index: number; time: number; type: string; bytes: number }[] };
    const around = await api<Page>(v, '/api/events?around=2500&limit=11');
    expect(around.focus).toBe(2500);
    expect(around.events.map((e) => e.index)).toEqual([2495, 2496, 2497, 2498, 2499, 2500, 2501, 2502, 2503, 2504, 2505]);
    for (const e of around.events) {
      expect(e.time).toBe(set.lines[e.index]!.emitted_at_ms);
      expect(e.type).toBe(set.lines[e.index]!.type);
      expect(e.bytes).toBe(Buffer.byteLength(set.raw[e.index]!));
    }
    const from = await api<Page>(v, `/api/events?from=${n - 3}&limit=200`);
    expect(from.events.map((e) => e.index)).toEqual([n - 3, n - 2, n - 1]);
    expect(from.hasAfter).toBe(false);
    const before = await api<Page>(v, '/api/events?before=5&limit=200');
    expect(before.events.map((e) => e.index)).toEqual([0, 1, 2, 3, 4]);
    expect(before.hasBefore).toBe(false);

    // Every segment's first and last line, and some in between.
    const probes = [0, n - 1, 1234, ...set.files.slice(1).map((_, k) => set.files.slice(0, k + 1).reduce((a, f) => a + f.raw.length, 0))];
    for (const i of probes.flatMap((p) => [p - 1, p]).filter((p) => p >= 0)) {
      const ev = await api<{ index: number; line: string; file: string }>(v, `/api/event?index=${i}`);
      expect(ev.index).toBe(i);
      expect(ev.line).toBe(set.raw[i]);
    }

    const k = set.lines.findIndex((l, i) => i > 2000 && l.emitted_at_ms > set.lines[i - 1]!.emitted_at_ms);
    const t = set.lines[k]!.emitted_at_ms;
    expect((await api<{ index: number }>(v, `/api/locate?time=${t}`)).index).toBe(k);
    expect((await api<{ index: number }>(v, `/api/locate?time=${t - 0.5}`)).index).toBe(k);
    expect((await api<{ index: number; after: boolean }>(v, `/api/locate?time=${t + 1e9}`))).toMatchObject({ index: n - 1, after: true });
    expect((await api<{ index: number }>(v, '/api/locate?time=0')).index).toBe(0);
  });

  it('shows the histogram stacked by type, with a legend of the types', async () => {
    const page = await openPage(v.url);
    try {
      const canvas = page.locator('#histogram');
      expect(Number(await canvas.getAttribute('data-total'))).toBe(set.lines.length);
      expect(Number(await canvas.getAttribute('data-nonempty'))).toBeGreaterThan(10);
      // Pixels that are not background: bars were drawn (not just axes and labels).
      const painted = (await page.evaluate(PAINTED_PIXELS)) as { fraction: number; colours: number };
      expect(painted.fraction).toBeGreaterThan(0.05);
      // Stacked by type: several bar colours, not one.
      expect(painted.colours).toBeGreaterThan(5);
      const types = [...new Set(set.lines.map((l) => l.type!))].sort();
      const legend = await Promise.all((await page.locator('#legend li').all()).map(async (li) => (await li.getAttribute('data-type'))!));
      expect([...legend].sort()).toEqual(types);
      expect(await page.locator('#count').textContent()).toBe(set.lines.length.toLocaleString('en-US'));
      expect(await page.locator('#following').getAttribute('data-state')).toBe('static');
      // The page starts at the first event.
      await expectSelected(page, 0);
      expect(await page.locator('#event-json').textContent()).toBe(prettyOf(set.raw[0]!));
    } finally {
      await page.close();
    }
  });

  it('jumps to an index, by time, by a click on the histogram and by keyboard, showing the exact JSON', async () => {
    const page = await openPage(v.url);
    try {
      const n = 3210;
      await page.fill('#jump-index', String(n));
      await page.press('#jump-index', 'Enter');
      await expectSelected(page, n);
      expect(await page.locator('#event-json').textContent()).toBe(prettyOf(set.raw[n]!));
      expect(await page.locator(`#event-list li[data-index="${n + 5}"]`).count()).toBe(1);
      expect(await page.locator(`#event-list li[data-index="${n - 5}"]`).count()).toBe(1);
      expect(await page.locator('#event-meta').textContent()).toContain(`index ${n.toLocaleString('en-US')}`);

      // Keyboard: down twice, up once.
      await page.locator('#event-list').focus();
      await page.keyboard.press('ArrowDown');
      await expectSelected(page, n + 1);
      await page.keyboard.press('ArrowDown');
      await expectSelected(page, n + 2);
      await page.keyboard.press('ArrowUp');
      await expectSelected(page, n + 1);
      expect(await page.locator('#event-json').textContent()).toBe(prettyOf(set.raw[n + 1]!));

      // By time, as a person types it: the first event at or after that instant.
      const k = set.lines.findIndex((l, i) => i > 1500 && l.emitted_at_ms > set.lines[i - 1]!.emitted_at_ms);
      const t = set.lines[k]!.emitted_at_ms;
      await page.fill('#jump-time', new Date(t).toISOString());
      await page.press('#jump-time', 'Enter');
      await expectSelected(page, k);
      expect(await page.locator('#event-json').textContent()).toBe(prettyOf(set.raw[k]!));

      // A click on the histogram: the first event at or after the time under the pointer.
      const h = await api<Histogram>(v, '/api/histogram?buckets=10');
      const box = (await page.locator('#histogram').boundingBox())!;
      const x = box.width * 0.6;
      await page.mouse.click(box.x + x, box.y + box.height / 2);
      const timeAt = (px: number): number => h.from + ((h.to - h.from) * px) / box.width;
      // Polled from here: the page's CSP forbids the eval that a string waitForFunction needs.
      await expect.poll(() => selectedIndex(page)).not.toBe(k);
      const clicked = await selectedIndex(page);
      await expectSelected(page, clicked);
      // Within a pixel of the click either way.
      expect(set.lines[clicked]!.emitted_at_ms).toBeGreaterThanOrEqual(timeAt(x - 1));
      if (clicked > 0) expect(set.lines[clicked - 1]!.emitted_at_ms).toBeLessThan(timeAt(x + 1));
      expect(await page.locator('#event-json').textContent()).toBe(prettyOf(set.raw[clicked]!));
    } finally {
      await page.close();
    }
  });

  // The screenshot goes to a temp file; RINGLOG_UPDATE_SCREENSHOT=1 writes docs/viewer.png instead
  // (a test run must not change a tracked file).
  it('takes a screenshot of what a person sees (docs/viewer.png with RINGLOG_UPDATE_SCREENSHOT=1)', async () => {
    const page = await openPage(v.url);
    try {
      // A tool call in the busy middle of the run, with its neighbours around it.
      const n = set.lines.findIndex((l, i) => i > set.lines.length * 0.55 && l.type === 'tool_call' && l.frame_depth !== null);
      await page.fill('#jump-index', String(n));
      await page.press('#jump-index', 'Enter');
      await expectSelected(page, n);
      await page.locator('#event-list').focus();
      const target = process.env.RINGLOG_UPDATE_SCREENSHOT === '1' ? DOCS_SCREENSHOT.pathname : path.join(dirs.make('viewer-shot'), 'viewer.png');
      fs.mkdirSync(path.dirname(target), { recursive: true });
      const png = await page.screenshot({ path: target });
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
      // Small enough to commit and to load in a README.
      expect(png.length).toBeLessThan(320 * 1024);
    } finally {
      await page.close();
    }
  });
});

describe('viewer: a live log', () => {
  it('follows the log as it grows and rotates: the header count and the histogram follow', async () => {
    const dir = dirs.make('viewer-live');
    const base = path.join(dir, BASE_NAME);
    // Small segments, so the growth below also crosses rotations.
    const sink = JsonlEventSink.open(base, { rotateBytes: 64 * 1024 });
    const r = rng(7);
    for (let i = 0; i < 500; i++) sink.handleEvent(agentEvent(r, i, 0.1));
    await sink.flush();
    const v = await startViewer(base);
    const page = await openPage(v.url);
    try {
      expect(await page.locator('#following').getAttribute('data-state')).toBe('following');
      expect(await page.locator('#count').getAttribute('data-events')).toBe('500');
      const segmentsBefore = segmentFiles(dir).length;
      for (let i = 500; i < 1800; i++) sink.handleEvent(agentEvent(r, i, 0.5));
      await sink.flush();
      expect(segmentFiles(dir).length).toBeGreaterThan(segmentsBefore);
      await page.waitForSelector('#count[data-events="1800"]', { timeout: 30_000 });
      await page.waitForSelector('#histogram[data-total="1800"]', { timeout: 30_000 });
      // The list ended at the old last event, so it now reaches on to the new ones.
      await page.keyboard.press('End');
      await expectSelected(page, 1799);
      const set = readLines(dir);
      expect(await page.locator('#event-json').textContent()).toBe(prettyOf(set.raw[1799]!));
      expect((await api<Summary>(v, '/api/summary')).segments.length).toBe(set.files.length);
    } finally {
      await page.close();
      await sink.close();
      await v.close();
    }
  });

  it('starts over when a new session truncates the set under it', async () => {
    const dir = dirs.make('viewer-restart');
    const base = path.join(dir, BASE_NAME);
    let sink = JsonlEventSink.open(base, { rotateBytes: 32 * 1024 });
    for (let i = 0; i < 800; i++) sink.handleEvent({ type: 'first_session', i, pad: 'x'.repeat(100) });
    await sink.close();
    const v = await startViewer(base);
    try {
      expect((await api<Summary>(v, '/api/summary')).events).toBe(800);
      sink = JsonlEventSink.open(base); // truncate mode: numbered segments of the old session are deleted
      for (let i = 0; i < 50; i++) sink.handleEvent({ type: 'second_session', i });
      await sink.close();
      await expect.poll(async () => (await api<Summary>(v, '/api/summary')).events, { timeout: 30_000 }).toBe(50);
      const s = await api<Summary>(v, '/api/summary');
      expect(s.generation).toBeGreaterThan(0);
      expect(s.types).toEqual([{ name: 'second_session', count: 50 }]);
      expect((await api<{ line: string }>(v, '/api/event?index=49')).line).toBe(readLines(dir).raw[49]);
    } finally {
      await v.close();
    }
  });
});

// Issue 14: helping people find things — filters (a clickable legend, a session, a text), previews
// chosen by type, a tool call paired with its result, and a live view that follows the newest.
describe('viewer: finding things', () => {
  let dir: string;
  let set: LogSet;
  let v: Viewer;
  const SESSIONS = ['alpha', 'beta', 'gamma'];
  /** Milliseconds slept between each tool call and its result. */
  const GAP_MS = 40;
  type Ev = { index: number; type: string; session_id: string; tool_call_id?: string; tool_name?: string; content?: string };
  const lines = (): Ev[] => set.lines as unknown as Ev[];

  beforeAll(async () => {
    dir = dirs.make('viewer-find');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 64 * 1024 });
    const r = rng(11);
    for (let i = 0; i < 1200; i++) {
      const session_id = SESSIONS[i % 3]!;
      if (i % 50 === 10) {
        // A call, its result GAP_MS later, with other sessions' events in between.
        const id = `call_${i}`;
        sink.handleEvent({ type: 'tool_call', session_id, tool_call_id: id, tool_name: TOOLS[i % TOOLS.length], input: { path: FILES[i % FILES.length] } });
        await sleep(GAP_MS);
        sink.handleEvent({ type: 'message_chunk', session_id: SESSIONS[(i + 1) % 3], content: 'meanwhile elsewhere' });
        sink.handleEvent({ type: 'tool_result', session_id, tool_call_id: id, is_error: false, output: words(r, 8) });
        continue;
      }
      sink.handleEvent({ type: 'message_chunk', session_id, content: i % 97 === 0 ? `needle ${i} in the Haystack` : words(r, 6) });
    }
    await sink.close();
    set = readLines(dir);
    v = await startViewer(path.join(dir, BASE_NAME), { follow: false });
  });
  afterAll(async () => {
    await v?.close();
  });

  /** The rows of the list: index, type, session and preview text (read in one call into the page). */
  async function rows(page: Page): Promise<{ index: number; type: string; session: string; preview: string }[]> {
    return page.locator('#event-list li[data-index]').evaluateAll((lis) =>
      lis.map((li) => {
        const text = (sel: string): string => li.querySelector(sel)?.textContent ?? '';
        return { index: Number(li.getAttribute('data-index')), type: text('.type').trim(), session: text('.sess'), preview: text('.preview') };
      }),
    );
  }

  it('previews each row by what its type says: a tool call its tool and arguments, a result its status and output, a message its text — the session in a column of its own', async () => {
    const page = await openPage(v.url);
    try {
      const shown = await rows(page);
      const call = shown.find((x) => x.type === 'tool_call')!;
      const ev = lines()[call.index]!;
      expect(call.preview).toBe(`${ev.tool_name} {"path":"${FILES[call.index % FILES.length]}"}`);
      expect(call.session).toBe(ev.session_id);
      const result = shown.find((x) => x.type === 'tool_result')!;
      expect(result.preview).toMatch(/^ok /);
      const msg = shown.find((x) => x.type === 'message_chunk')!;
      expect(msg.preview).toBe(lines()[msg.index]!.content);
    } finally {
      await page.close();
    }
  });

  it('filters by type from the legend (click again: all), by session and by text, together; clear filters shows all', async () => {
    const page = await openPage(v.url);
    try {
      await page.locator('#legend li[data-type="tool_call"]').click();
      await expect.poll(async () => new Set((await rows(page)).map((x) => x.type))).toEqual(new Set(['tool_call']));
      const calls = lines().filter((l) => l.type === 'tool_call').map((l) => l.index);
      expect((await rows(page)).map((x) => x.index)).toEqual(calls);
      expect(await page.locator('#legend li[data-type="tool_call"]').getAttribute('class')).toBe('on');
      expect(await page.locator('#legend li[data-type="message_chunk"]').getAttribute('class')).toBe('off');
      expect(await page.locator('#filter-info').textContent()).toBe('showing types: tool_call');

      // And one session: its calls only.
      const options = await page.locator('#session option').allTextContents();
      expect(options.slice(1).map((o) => o.replace(/ \(.*$/, '')).sort()).toEqual(SESSIONS);
      await page.selectOption('#session', 'beta');
      const betaCalls = lines().filter((l) => l.type === 'tool_call' && l.session_id === 'beta').map((l) => l.index);
      await expect.poll(async () => (await rows(page)).map((x) => x.index)).toEqual(betaCalls);

      // The legend again: every type, of that session.
      await page.locator('#legend li[data-type="tool_call"]').click();
      await expect.poll(async () => new Set((await rows(page)).map((x) => x.type)).size).toBeGreaterThan(1);
      expect(new Set((await rows(page)).map((x) => x.session))).toEqual(new Set(['beta']));

      // Text, case-insensitive, on top of the session.
      await page.fill('#search', 'HAYSTACK');
      const needles = lines().filter((l) => l.session_id === 'beta' && /haystack/i.test(l.content ?? '')).map((l) => l.index);
      expect(needles.length).toBeGreaterThan(1);
      await expect.poll(async () => (await rows(page)).map((x) => x.index)).toEqual(needles);
      await expectSelected(page, needles[0]!);

      await page.locator('#clear-filters').click();
      await expect.poll(async () => new Set((await rows(page)).map((x) => x.session)).size).toBe(3);
      expect(await page.locator('#filter-info').textContent()).toBe('');

      await page.fill('#search', 'no such text anywhere');
      await expect.poll(async () => page.locator('#event-list li.more').textContent()).toBe('no event matches the filters');
    } finally {
      await page.close();
    }
  });

  it('pages filtered events server-side: around an index (the nearest match), from and before it, in order, with whether more lie beyond', async () => {
    type Page = { focus: number | null; hasBefore: boolean; hasAfter: boolean; searchedAll: boolean; events: { index: number; type: string; session: string | null }[] };
    const betaMsgs = lines().filter((l) => l.type === 'message_chunk' && l.session_id === 'beta').map((l) => l.index);
    const start = lines().findIndex((l) => l.index >= 600 && l.type === 'tool_call');
    const around = await api<Page>(v, `/api/events?around=${start}&limit=11&types=message_chunk&session=beta`);
    const focus = betaMsgs.find((i) => i >= start)!;
    expect(around.focus).toBe(focus);
    const k = betaMsgs.indexOf(focus);
    expect(around.events.map((e) => e.index)).toEqual(betaMsgs.slice(k - 5, k + 6));
    expect(around.events.every((e) => e.type === 'message_chunk' && e.session === 'beta')).toBe(true);
    expect([around.hasBefore, around.hasAfter]).toEqual([true, true]);
    const from = await api<Page>(v, `/api/events?from=${betaMsgs.at(-3)}&limit=10&types=message_chunk&session=beta`);
    expect(from.events.map((e) => e.index)).toEqual(betaMsgs.slice(-3));
    expect(from.hasAfter).toBe(false);
    const before = await api<Page>(v, `/api/events?before=${betaMsgs[3]}&limit=10&types=message_chunk&session=beta`);
    expect(before.events.map((e) => e.index)).toEqual(betaMsgs.slice(0, 3));
    expect(before.hasBefore).toBe(false);
    const none = await api<Page>(v, `/api/events?around=10&limit=10&q=no%20such%20text`);
    expect(none).toMatchObject({ focus: null, events: [], searchedAll: true });
  });

  it('pairs a tool call with its result: jumps between them and shows the time between', async () => {
    const page = await openPage(v.url);
    try {
      const call = lines().find((l) => l.type === 'tool_call' && l.index > 600)!;
      const result = lines().find((l) => l.type === 'tool_result' && l.tool_call_id === call.tool_call_id)!;
      await page.fill('#jump-index', String(call.index));
      await page.press('#jump-index', 'Enter');
      await expectSelected(page, call.index);
      await page.waitForSelector(`#pair[data-other="${result.index}"]`);
      const text = (await page.locator('#pair').textContent())!;
      expect(text).toContain(`→ result #${result.index} (tool_result)`);
      expect(text).toContain(`${call.tool_call_id} · `);
      // The time between the two lines as written (a timer's GAP_MS may end a millisecond or two
      // early by the wall clock, so the file, not the sleep, is the reference).
      const ms = Number(/· (\d+) ms later/.exec(text)?.[1]);
      expect(ms).toBe((result as Ev & { emitted_at_ms: number }).emitted_at_ms - (call as Ev & { emitted_at_ms: number }).emitted_at_ms);
      expect(ms).toBeGreaterThan(0);
      await page.locator('[data-testid="pair-jump"]').click();
      await expectSelected(page, result.index);
      await page.waitForSelector(`#pair[data-other="${call.index}"]`);
      expect(await page.locator('#pair').textContent()).toContain(`← call #${call.index} (tool_call)`);
      // A message has no pair: the answer says so, and nothing is shown.
      const message = lines().find((l) => l.type === 'message_chunk' && l.index > result.index)!;
      await page.fill('#jump-index', String(message.index));
      await page.press('#jump-index', 'Enter');
      await expectSelected(page, message.index);
      await page.waitForSelector('#pair[data-state="none"]', { state: 'attached' });
      expect(await page.locator('#pair').textContent()).toBe('');
    } finally {
      await page.close();
    }
  });

  // Looked at by a person after each change of the page (the README shows docs/viewer-find.png).
  it('takes a screenshot with filters on and a pair shown (docs/viewer-find.png with RINGLOG_UPDATE_SCREENSHOT=1)', async () => {
    const page = await openPage(v.url);
    try {
      await page.locator('#legend li[data-type="tool_call"]').click();
      await page.locator('#legend li[data-type="tool_result"]').click();
      await page.selectOption('#session', 'alpha');
      const call = lines().find((l) => l.type === 'tool_call' && l.session_id === 'alpha' && l.index > 500)!;
      await expect.poll(async () => (await rows(page)).every((x) => x.session === 'alpha')).toBe(true);
      await page.locator(`#event-list li[data-index="${call.index}"]`).click();
      await expectSelected(page, call.index);
      await page.waitForSelector('#pair[data-other]');
      const target = process.env.RINGLOG_UPDATE_SCREENSHOT === '1' ? new URL('../docs/viewer-find.png', import.meta.url).pathname : path.join(dirs.make('viewer-shot'), 'viewer-find.png');
      const png = await page.screenshot({ path: target });
      expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
    } finally {
      await page.close();
    }
  });

  it('a live view follows the newest event by default; picking another event stops that, the checkbox starts it again', async () => {
    const liveDir = dirs.make('viewer-follow');
    const base = path.join(liveDir, BASE_NAME);
    const sink = JsonlEventSink.open(base);
    for (let i = 0; i < 300; i++) sink.handleEvent({ type: 'message_chunk', session_id: 's', content: `m${i}` });
    await sink.flush();
    const live = await startViewer(base);
    const page = await openPage(live.url);
    try {
      await expectSelected(page, 299);
      expect(await page.locator('#tail').isChecked()).toBe(true);
      for (let i = 300; i < 350; i++) sink.handleEvent({ type: 'message_chunk', session_id: 's', content: `m${i}` });
      await sink.flush();
      await expectSelected(page, 349);
      // A person picks an event: the view stays there as the log grows.
      await page.locator('#event-list li[data-index="340"]').click();
      await expectSelected(page, 340);
      expect(await page.locator('#tail').isChecked()).toBe(false);
      for (let i = 350; i < 360; i++) sink.handleEvent({ type: 'message_chunk', session_id: 's', content: `m${i}` });
      await sink.flush();
      await page.waitForSelector('#count[data-events="360"]');
      expect(await selectedIndex(page)).toBe(340);
      await page.locator('#tail').check();
      await expectSelected(page, 359);
    } finally {
      await page.close();
      await sink.close();
      await live.close();
    }
  });
});

describe('viewer: compressed segments', () => {
  /** What the janitor does to a closed segment: `<segment>.gz` with the same bytes, then the plain file goes. */
  function compress(file: string): void {
    fs.writeFileSync(`${file}.gz`, zlib.gzipSync(fs.readFileSync(file)));
    fs.rmSync(file);
  }

  it('reads .gz segments, and keeps its index when a followed segment is compressed under it', async () => {
    const dir = dirs.make('viewer-gz');
    const base = path.join(dir, BASE_NAME);
    const sink = JsonlEventSink.open(base, { rotateBytes: 16 * 1024 });
    const r = rng(8);
    for (let i = 0; i < 1500; i++) sink.handleEvent(agentEvent(r, i, i / 1500));
    await sink.close();
    const set = readLines(dir);
    expect(set.files.length).toBeGreaterThan(4);
    // Compressed before the viewer starts: segments 1 and 2.
    compress(set.files[1]!.path);
    compress(set.files[2]!.path);
    const v = await startViewer(base);
    try {
      const s = await api<Summary>(v, '/api/summary');
      expect(s.events).toBe(1500);
      expect(s.segments.map((x) => x.file)).toEqual(set.files.map((f, k) => (k === 1 || k === 2 ? `${f.name}.gz` : f.name)));
      const firstOf = (k: number): number => set.files.slice(0, k).reduce((a, f) => a + f.raw.length, 0);
      for (const i of [firstOf(1), firstOf(2) - 1, firstOf(2) + 3, firstOf(3) - 1, firstOf(3)]) {
        expect((await api<{ line: string }>(v, `/api/event?index=${i}`)).line).toBe(set.raw[i]);
      }
      // Compressed while followed: same index (no rebuild), pages still right.
      compress(set.files[3]!.path);
      await expect.poll(async () => (await api<Summary>(v, '/api/summary')).segments[3]!.file, { timeout: 30_000 }).toBe(`${set.files[3]!.name}.gz`);
      expect((await api<Summary>(v, '/api/summary')).generation).toBe(0);
      const page = await api<{ events: { index: number }[] }>(v, `/api/events?from=${firstOf(3) - 2}&limit=5`);
      expect(page.events.map((e) => e.index)).toEqual([0, 1, 2, 3, 4].map((d) => firstOf(3) - 2 + d));
      expect((await api<{ line: string }>(v, `/api/event?index=${firstOf(3) + 1}`)).line).toBe(set.raw[firstOf(3) + 1]);
      // Retention removed the oldest segment: the index is rebuilt from what is left.
      fs.rmSync(set.files[0]!.path);
      await expect.poll(async () => (await api<Summary>(v, '/api/summary')).firstIndex, { timeout: 30_000 }).toBe(firstOf(1));
      expect((await api<Summary>(v, '/api/summary')).events).toBe(1500 - firstOf(1));
    } finally {
      await v.close();
    }
  });
});

describe('viewer: damaged lines', () => {
  it('indexes around a line that is not a record (the own scan, which keeps exact offsets past it)', async () => {
    const dir = dirs.make('viewer-damaged');
    const base = path.join(dir, BASE_NAME);
    const sink = JsonlEventSink.open(base);
    for (let i = 0; i < 100; i++) sink.handleEvent({ type: i % 2 ? 'odd' : 'even', i });
    await sink.close();
    const lines = fs.readFileSync(base, 'utf8').split('\n');
    lines.splice(50, 0, 'this is not json');
    fs.writeFileSync(base, lines.join('\n'));
    const v = await startViewer(base, { follow: false });
    try {
      const s = await api<Summary>(v, '/api/summary');
      expect(s.scanner).toBe('own');
      expect(s.events).toBe(100);
      expect(s.issues.count).toBe(1);
      for (const i of [49, 50, 99]) expect((await api<{ line: string }>(v, `/api/event?index=${i}`)).line).toBe(lines[i >= 50 ? i + 1 : i]);
    } finally {
      await v.close();
    }
  });
});

describe('viewer: marker lines', () => {
  it('counts events without the drop and projection markers, which it reports as the indexes they stand for', async () => {
    const dir = dirs.make('viewer-markers');
    const base = path.join(dir, BASE_NAME);
    const line = (o: Record<string, unknown>): string => JSON.stringify(o) + '\n';
    const env = (index: number): { index: number; emitted_at_ms: number; frame_depth: null } => ({ index, emitted_at_ms: 1_764_000_000_000 + index, frame_depth: null });
    // 0–2 events, 3–7 dropped, 8 an event, 9–10 projected, 11 an event.
    fs.writeFileSync(
      base,
      [
        line({ ...env(0), type: 'a' }),
        line({ ...env(1), type: 'a' }),
        line({ ...env(2), type: 'b' }),
        line({ ...env(3), type: 'events_dropped', count: 5 }),
        line({ ...env(8), type: 'a' }),
        line({ ...env(9), type: 'events_projected', count: 2 }),
        line({ ...env(11), type: 'b' }),
      ].join(''),
    );
    const v = await startViewer(base, { follow: false });
    try {
      const s = await api<Summary>(v, '/api/summary');
      expect(s).toMatchObject({ events: 5, lines: 7, droppedIndexes: 5, projectedIndexes: 2, firstIndex: 0, lastIndex: 11 });
      expect(s.events + s.droppedIndexes + s.projectedIndexes).toBe(s.lastIndex - s.firstIndex + 1);
      // The markers stay visible where they are: the histogram buckets lines, markers by their type.
      const h = await api<{ total: number }>(v, '/api/histogram?buckets=10');
      expect(h.total).toBe(7);
    } finally {
      await v.close();
    }
    // A line of a marker's type without a positive count stands for nothing: an event like any
    // other, as \`ringlog stats\` counts it (the reader refuses it, so the viewer's own scan runs).
    fs.appendFileSync(base, line({ ...env(12), type: 'events_dropped', note: 'no count' }));
    const own = await startViewer(base, { follow: false });
    try {
      const s = await api<Summary>(own, '/api/summary');
      expect(s).toMatchObject({ scanner: 'own', events: 6, lines: 8, droppedIndexes: 5, projectedIndexes: 2, lastIndex: 12 });
    } finally {
      await own.close();
    }
  });
});

describe('viewer: a million events', () => {
  const N = 1_000_000;
  let dir: string;
  let v: Viewer;
  let setBytes = 0;
  let indexBytes = 0;

  beforeAll(async () => {
    dir = dirs.make('viewer-million');
    const sink = JsonlEventSink.open(path.join(dir, BASE_NAME), { rotateBytes: 20_000_000 });
    const types = ['message_chunk', 'tool_call', 'tool_result', 'iteration', 'judge'];
    for (let i = 0; i < N; i++) sink.handleEvent({ type: types[i % 5 === 4 && i % 3 ? 0 : i % 5], n: i, text: `event ${i}` });
    await sink.close();
    setBytes = segmentFiles(dir).reduce((a, f) => a + fs.statSync(path.join(dir, f.name)).size, 0);
    const before = process.memoryUsage().arrayBuffers;
    v = await startViewer(path.join(dir, BASE_NAME), { follow: false });
    indexBytes = process.memoryUsage().arrayBuffers - before;
  }, 300_000);
  afterAll(async () => {
    await v?.close();
  });

  it('keeps a compact index server-side', async () => {
    const s = await api<Summary>(v, '/api/summary');
    expect(s.events).toBe(N);
    expect(s.lastIndex).toBe(N - 1);
    // 20 bytes per event in typed arrays (grown by doubling), far below the set's own size.
    expect(indexBytes).toBeLessThan(64 * 1024 * 1024);
    expect(setBytes).toBeGreaterThan(50 * 1024 * 1024);
  });

  it('loads in the browser, jumps to index 765,432 and shows its JSON, receiving only a few MB', async () => {
    const page = await browser!.newPage({ viewport: { width: 1440, height: 880 } });
    let received = 0;
    page.on('requestfinished', (req) => {
      void req.sizes().then((s) => (received += s.responseBodySize + s.responseHeadersSize));
    });
    try {
      await page.goto(v.url);
      await page.waitForSelector('#histogram[data-total="1000000"]', { timeout: 60_000 });
      await page.waitForSelector('#event-list li.sel');
      expect(await page.locator('#count').textContent()).toBe('1,000,000');
      const target = 765_432;
      await page.fill('#jump-index', String(target));
      await page.press('#jump-index', 'Enter');
      await expectSelected(page, target);
      const raw = await rawLineOf(dir, target);
      expect(await page.locator('#event-json').textContent()).toBe(prettyOf(raw));
      // Page through with the keyboard a little: each step is one small request.
      await page.locator('#event-list').focus();
      for (let i = 1; i <= 3; i++) {
        await page.keyboard.press('PageDown');
        await expect.poll(() => selectedIndex(page)).toBeGreaterThan(target + (i - 1) * 20);
      }
      await page.keyboard.press('End');
      await expectSelected(page, N - 1);
      // Let a few follow polls land, then count everything the browser received.
      await sleep(2500);
      expect(received).toBeGreaterThan(0);
      // An absolute bound: the set itself is over 50 MiB.
      expect(received).toBeLessThan(5 * 1024 * 1024);
    } finally {
      await page.close();
    }
  });
});
