// Where the encoder's short-string loop stops paying: a JS loop copying ASCII into a
// SharedArrayBuffer against one native utf8Write call, per string length.
//   node dist/bench/string-copy.js
// Result feeds SHORT_STRING in src/caller/encoder.ts.

const sab = new SharedArrayBuffer(1 << 20);
const buf = Buffer.from(sab) as Buffer & { utf8Write(s: string, offset: number): number };
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
