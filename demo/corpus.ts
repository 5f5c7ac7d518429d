// Seeded generators of realistic agent events, shared by the demo, the benchmarks and the tests.
// Same seed, same events, in every process: that is what lets contenders run in separate processes
// and still be compared on one corpus.

export type AgentEventLike = Record<string, unknown> & { type: string };

/** mulberry32: tiny, fast, good enough for test data, and identical on every platform. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = (
  'the agent calls a tool reads the file then writes a patch and runs the tests again until they pass ' +
  'context window tokens budget plan step result error retry summary function request response stream ' +
  'repository branch commit diff review judge score iteration session model prompt completion cache'
).split(' ');
// About one event in ten carries text outside ASCII, as agent transcripts do (names, quotes, emoji).
const NON_ASCII = ['naïve', 'café', 'Größe', '東京', 'данные', 'élève', '🙂', '✓', 'π≈3.14', 'مرحبا'];
const TOOLS = ['read_file', 'write_file', 'run_tests', 'search', 'shell', 'http_get', 'edit'];

export class CorpusGenerator {
  private readonly next: () => number;
  private counter = 0;

  constructor(seed = 42, private readonly small = false) {
    this.next = rng(seed);
  }

  private int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  private text(chars: number, nonAscii: boolean): string {
    let s = '';
    while (s.length < chars) {
      const w = nonAscii && this.next() < 0.15
        ? NON_ASCII[this.int(0, NON_ASCII.length - 1)]!
        : WORDS[this.int(0, WORDS.length - 1)]!;
      s += s.length === 0 ? w : ' ' + w;
    }
    return s;
  }

  event(): AgentEventLike {
    const i = this.counter++;
    const session_id = `sess-${(i >> 12).toString(36)}`;
    const nonAscii = this.next() < 0.1;
    const r = this.next();
    if (this.small) return this.smallEvent(r, session_id, nonAscii, i);
    if (r < 0.4) {
      return { type: 'message_chunk', session_id, role: 'assistant', content: this.text(this.int(40, 400), nonAscii) };
    }
    if (r < 0.55) {
      return {
        type: 'tool_call',
        session_id,
        tool_call_id: `call_${i.toString(36)}`,
        tool_name: TOOLS[this.int(0, TOOLS.length - 1)]!,
        input: {
          path: `src/module_${this.int(0, 99)}/file_${this.int(0, 999)}.ts`,
          options: { recursive: this.next() < 0.5, depth: this.int(0, 8), patterns: ['*.ts', '*.json'] },
          query: this.text(this.int(20, 200), nonAscii),
        },
      };
    }
    if (r < 0.83) {
      return {
        type: 'tool_result',
        session_id,
        tool_call_id: `call_${i.toString(36)}`,
        is_error: this.next() < 0.05,
        output: this.text(this.int(512, 8192) >> (this.next() < 0.35 ? 1 : 0), nonAscii),
      };
    }
    if (r < 0.94) {
      const ev: AgentEventLike = {
        type: this.next() < 0.5 ? 'iteration_start' : 'iteration_end',
        session_id,
        iteration: this.int(0, 200),
        usage: { input_tokens: this.int(100, 120000), output_tokens: this.int(1, 4000), cached: this.next() < 0.3 },
        model: 'agent-model-1',
      };
      if (this.next() < 0.5) ev.stop_reason = this.next() < 0.5 ? 'tool_use' : 'end_turn';
      if (this.next() < 0.3) ev.cost_usd = Math.round(this.next() * 100000) / 100000;
      return ev;
    }
    const ev: AgentEventLike = {
      type: 'judge',
      session_id,
      verdict: this.next() < 0.7 ? 'pass' : 'fail',
      score: Math.round(this.next() * 1000) / 1000,
      criteria: ['correctness', 'style', 'safety'].slice(0, this.int(1, 3)),
    };
    if (this.next() < 0.6) ev.reasoning = this.text(this.int(80, 600), nonAscii);
    if (this.next() < 0.2) ev.notes = null;
    return ev;
  }

  private smallEvent(r: number, session_id: string, nonAscii: boolean, i: number): AgentEventLike {
    if (r < 0.6) return { type: 'message_chunk', session_id, content: this.text(this.int(30, 150), nonAscii) };
    if (r < 0.8) return { type: 'tool_call', session_id, tool_name: TOOLS[this.int(0, TOOLS.length - 1)]!, call: i };
    return { type: 'iteration_end', session_id, iteration: this.int(0, 200), ok: this.next() < 0.9 };
  }
}

/** `count` events from `seed`: the large (~1.3 KB mean line) corpus, or the small (~200 B) one. */
export function makeCorpus(count: number, seed = 42, small = false): AgentEventLike[] {
  const g = new CorpusGenerator(seed, small);
  const out: AgentEventLike[] = new Array(count);
  for (let i = 0; i < count; i++) out[i] = g.event();
  return out;
}
