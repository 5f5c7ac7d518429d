// The corpus family (issue 16): seeded generators of agent events with the traits real agent loops
// emit and the project's own corpus has little of. Same name and seed, same events, in every
// process. Each is documented where it is defined: what it stands for, and its shape.

import { CorpusGenerator, rng, type AgentEventLike } from '../demo/corpus.js';

export const CORPORA = ['large', 'small', 'keys', 'escapes', 'unicode', 'deep', 'numeric', 'huge'] as const;
export type CorpusName = (typeof CORPORA)[number];

export interface CorpusSpec {
  /** One line for tables and the README. */
  readonly about: string;
  /** Events in a contender's pool: ~13 MB of events at most, so the pool never dominates RSS. */
  readonly pool: number;
  /** Paced phase rate (events/s): 20,000 as the issue measures, fewer where the events are so big
   *  that 20,000/s would be gigabytes a second (what no agent loop logs). */
  readonly pacedPerSec: number;
  /** Saturated-phase events, for a few hundred MB per contender at most. */
  readonly saturated: number;
  /** A generator of the corpus's events from `seed`. */
  make(seed: number): () => AgentEventLike;
}

/** What most corpora share: a pool of 10,000 events (~13 MB of the large corpus's), the issue's
 *  20,000 events/s paced, and 250,000 events flat out (~330 MB of the large corpus's). */
const TYPICAL = { pool: 10_000, pacedPerSec: 20_000, saturated: 250_000 } as const;

const WORDS = 'the agent reads a file writes a patch runs tests plans the next step calls a tool with arguments'.split(' ');
const KEY_BASES = ['path', 'content', 'options', 'id', 'name', 'value', 'status', 'url', 'size', 'mtime', 'owner', 'labels', 'score', 'title', 'body', 'kind'];

function picker(next: () => number) {
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const words = (n: number): string => {
    let s = '';
    while (s.length < n) s += (s.length === 0 ? '' : ' ') + pick(WORDS);
    return s;
  };
  return { int, pick, words };
}

export const CORPUS_SPECS: Record<CorpusName, CorpusSpec> = {
  large: {
    about: "the project's corpus (demo/corpus.ts): message chunks, tool calls, text tool results of 0.5–8 KB, usage; ~1.3 KB mean",
    ...TYPICAL,
    make: (seed) => {
      const g = new CorpusGenerator(seed, false);
      return () => g.event();
    },
  },
  small: {
    about: 'small events (~200 B): chunks, tool starts, iteration ends',
    ...TYPICAL,
    saturated: 500_000,
    make: (seed) => {
      const g = new CorpusGenerator(seed, true);
      return () => g.event();
    },
  },
  keys: {
    // Tool outputs are parsed API responses and directory listings: arbitrary JSON whose keys come
    // from thousands of names (`content17`, `options203`), not a fixed schema.
    about: 'high key cardinality: tool outputs as parsed API responses, keys from ~3,000 distinct names; ~1.3 KB mean',
    ...TYPICAL,
    make: (seed) => {
      const next = rng(seed);
      const { int, pick, words } = picker(next);
      let i = 0;
      return () => {
        const records: Record<string, unknown>[] = [];
        for (let r = int(2, 8); r > 0; r--) {
          const rec: Record<string, unknown> = {};
          for (let k = int(3, 8); k > 0; k--) {
            const key = `${pick(KEY_BASES)}${int(0, 190)}`;
            rec[key] = next() < 0.5 ? words(int(5, 60)) : next() < 0.5 ? int(0, 1e6) : { [`${pick(KEY_BASES)}${int(0, 190)}`]: next() < 0.5 };
          }
          records.push(rec);
        }
        return { type: 'tool_result', session_id: `sess-${i >> 12}`, tool_call_id: `call_${(i++).toString(36)}`, output: { records, total: records.length } };
      };
    },
  },
  escapes: {
    // Source code, diffs and JSON held as strings: quotes, backslashes, tabs and newlines in long text.
    about: 'escape-heavy long strings: source code, diffs and JSON-in-a-string tool outputs of 0.5–4 KB',
    ...TYPICAL,
    make: (seed) => {
      const next = rng(seed);
      const { int, pick, words } = picker(next);
      const lines = [
        '\tconst x = JSON.parse("{\\"a\\": 1}");',
        'if (path.endsWith("\\\\")) { return "C:\\\\tmp\\\\"; }',
        '+    "name": "value", "nested": {"q": "\\"quoted\\""}',
        '-\t\treturn `${a}\\n${b}`;',
        "print('it\\'s a \"test\"')\t# comment",
      ];
      let i = 0;
      return () => {
        let text = '';
        const target = int(512, 4096);
        while (text.length < target) text += (next() < 0.7 ? pick(lines) : words(int(10, 60))) + '\n';
        return { type: 'tool_result', session_id: `sess-${i >> 12}`, tool_call_id: `call_${(i++).toString(36)}`, output: text, exit_code: int(0, 2) };
      };
    },
  },
  unicode: {
    about: 'non-ASCII-heavy text: CJK, Cyrillic, Arabic, emoji (astral), combining marks; 0.2–3 KB',
    ...TYPICAL,
    make: (seed) => {
      const next = rng(seed);
      const { int, pick } = picker(next);
      const pieces = ['日本語の文章', '代码审查', '데이터', 'данные файла', 'مرحبا بالعالم', '😀🚀✨', 'naïve café', 'e\u0301\u0302 combining', 'Größe', ' ', ' ', 'ok'];
      let i = 0;
      return () => {
        let text = '';
        const target = int(200, 3000);
        while (text.length < target) text += pick(pieces);
        return next() < 0.5
          ? { type: 'message_chunk', session_id: `sess-${i++ >> 12}`, role: 'assistant', content: text }
          : { type: 'tool_result', session_id: `sess-${i++ >> 12}`, output: { text, lang: pick(['ja', 'zh', 'ko', 'ru', 'ar']) } };
      };
    },
  },
  deep: {
    // Syntax trees, nested JSON schemas, recursive directory listings.
    about: 'deep nesting: trees 8–24 levels deep (syntax trees, schemas, directory listings); ~1.3 KB',
    ...TYPICAL,
    make: (seed) => {
      const next = rng(seed);
      const { int, pick, words } = picker(next);
      const tree = (depth: number): unknown => {
        if (depth === 0) return words(int(4, 20));
        const node: Record<string, unknown> = { kind: pick(['Block', 'Call', 'If', 'Dir', 'Object']), child: tree(depth - 1) };
        if (next() < 0.4) node.sibling = [int(0, 99), words(int(3, 12))];
        return node;
      };
      let i = 0;
      return () => ({ type: 'tool_result', session_id: `sess-${i >> 12}`, tool_call_id: `call_${(i++).toString(36)}`, output: tree(int(8, 24)) });
    },
  },
  numeric: {
    // Embeddings and token ids logged with retrieval and model calls.
    about: 'numeric arrays: embeddings (128–384 floats) and token ids (200–800 integers)',
    pool: 5_000,
    pacedPerSec: 20_000,
    saturated: 100_000,
    make: (seed) => {
      const next = rng(seed);
      const { int } = picker(next);
      let i = 0;
      return () => {
        if (next() < 0.5) {
          const v = new Array<number>(int(128, 384));
          for (let k = 0; k < v.length; k++) v[k] = Math.round((next() * 2 - 1) * 1e6) / 1e6;
          return { type: 'embedding', session_id: `sess-${i++ >> 12}`, model: 'embed-1', vector: v };
        }
        const ids = new Array<number>(int(200, 800));
        for (let k = 0; k < ids.length; k++) ids[k] = int(0, 100_000);
        return { type: 'completion', session_id: `sess-${i++ >> 12}`, token_ids: ids };
      };
    },
  },
  huge: {
    // Whole files read, long command output, web pages fetched.
    about: 'large tool outputs: 64–512 KB of text (file reads, command output, fetched pages)',
    pool: 60,
    pacedPerSec: 100,
    saturated: 2_000,
    make: (seed) => {
      const next = rng(seed);
      const { int, words } = picker(next);
      let i = 0;
      return () => {
        const size = int(64, 512) * 1024;
        let text = '';
        while (text.length < size) text += words(int(60, 120)) + '\n';
        return { type: 'tool_result', session_id: `sess-${i >> 12}`, tool_call_id: `call_${(i++).toString(36)}`, output: text };
      };
    },
  },
};

export function isCorpusName(x: string): x is CorpusName {
  return (CORPORA as readonly string[]).includes(x);
}

/** `count` events of the corpus, flattened (no rope strings: what a parsed event looks like). */
export function corpusPool(name: CorpusName, seed: number, count = CORPUS_SPECS[name].pool): AgentEventLike[] {
  const gen = CORPUS_SPECS[name].make(seed);
  const out: AgentEventLike[] = [];
  for (let i = 0; i < count; i++) out.push(JSON.parse(JSON.stringify(gen())) as AgentEventLike);
  return out;
}
