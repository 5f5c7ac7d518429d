// Where the encoder's short-string loop stops paying: a JS loop copying ASCII into a
// SharedArrayBuffer against one native utf8Write call, per string length. Then non-ASCII text:
// UTF-8 (utf8Write plus the lone-surrogate check it needs) against the string's UTF-16 code units
// as they are (ucs2Write), with JSON.stringify of the same strings beside them.
//   node dist/bench/string-copy.js
// Results feed SHORT_STRING and wideString in src/caller/encoder.ts.

const sab = new SharedArrayBuffer(1 << 20);
const buf = Buffer.from(sab) as Buffer & { utf8Write(s: string, offset: number): number; ucs2Write(s: string, offset: number): number };
const u8 = new Uint8Array(sab);
// 1,000 distinct strings per length so the loop cannot specialise on one string.
const STRINGS = 1000;
const WARMUP = 200;
const ROUNDS = 2000;

function loopCopy(strs: string[]): number {
  let p = 0;
  for (const s of strs) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) break;
      u8[p++] = c;
    }
  }
  return p;
}

function nativeCopy(strs: string[]): number {
  let p = 0;
  for (const s of strs) p += buf.utf8Write(s, p);
  return p;
}

function nsPerString(f: (strs: string[]) => number, strs: string[]): number {
  for (let w = 0; w < WARMUP; w++) f(strs);
  const t = process.hrtime.bigint();
  for (let r = 0; r < ROUNDS; r++) f(strs);
  return Number(process.hrtime.bigint() - t) / ROUNDS / STRINGS;
}

const rows: { length: number; loopNs: number; nativeNs: number }[] = [];
for (const length of [4, 8, 12, 16, 24, 32, 48, 64, 128]) {
  const strs = Array.from({ length: STRINGS }, (_, i) => ('abcdefghij'.repeat(20) + i).slice(0, length));
  rows.push({ length, loopNs: nsPerString(loopCopy, strs), nativeNs: nsPerString(nativeCopy, strs) });
}
console.log('| chars | JS loop ns | utf8Write ns |\n|--:|--:|--:|');
for (const r of rows) console.log(`| ${r.length} | ${r.loopNs.toFixed(1)} | ${r.nativeNs.toFixed(1)} |`);

function utf8Checked(strs: string[]): number {
  let p = 0;
  for (const s of strs) {
    p += buf.utf8Write(s, p);
    if (!s.isWellFormed()) p++;
  }
  return p;
}

function utf16Copy(strs: string[]): number {
  let p = 0;
  for (const s of strs) p += buf.ucs2Write(s, p);
  return p;
}

function stringify(strs: string[]): number {
  let n = 0;
  for (const s of strs) n += JSON.stringify(s).length;
  return n;
}

// Text as the unicode corpus makes it (bench/corpora.ts), flattened as parsed or received text is.
const PIECES = ['日本語の文章', '代码审查', '데이터', 'данные файла', 'مرحبا بالعالم', '😀🚀✨', 'naïve café', 'Größe', ' '];
const wide: { length: number; utf8Ns: number; utf16Ns: number; stringifyNs: number }[] = [];
for (const length of [16, 64, 256, 2048]) {
  const strs = Array.from({ length: STRINGS / 4 }, (_, i) => {
    let t = '';
    for (let k = i; t.length < length; k++) t += PIECES[k % PIECES.length];
    return JSON.parse(JSON.stringify(t.slice(0, length).replace(/[\ud800-\udbff]$/, ' '))) as string;
  });
  // 4 × fewer strings, so per-string figures are scaled back by nsPerString's STRINGS divisor.
  wide.push({ length, utf8Ns: 4 * nsPerString(utf8Checked, strs), utf16Ns: 4 * nsPerString(utf16Copy, strs), stringifyNs: 4 * nsPerString(stringify, strs) });
}
console.log('\n| non-ASCII chars | utf8Write + isWellFormed ns | ucs2Write ns | JSON.stringify ns |\n|--:|--:|--:|--:|');
for (const r of wide) console.log(`| ${r.length} | ${r.utf8Ns.toFixed(0)} | ${r.utf16Ns.toFixed(0)} | ${r.stringifyNs.toFixed(0)} |`);
