// A growable byte buffer the line builder writes JSON into and the segment writer writes out.
import { fast, type FastBuffer } from '../node-buffer.js';

export class OutBuffer {
  buf: FastBuffer;
  len = 0;

  constructor(size: number) {
    this.buf = fast(Buffer.allocUnsafe(size));
  }

  /** Makes room for `n` more bytes. */
  ensure(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = fast(Buffer.allocUnsafe(size));
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  /** Appends a string known to be ASCII (numbers, fixed JSON text). */
  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    const buf = this.buf;
    let p = this.len;
    for (let i = 0; i < n; i++) buf[p++] = s.charCodeAt(i);
    this.len = p;
  }

  /**
   * Appends a number as JSON.stringify writes it. Safe integers, |x| ≤ 2^53 − 1 (indexes, times,
   * counts: most numbers in events), are written digit by digit, with no string made; the rest
   * (fractions, larger values, NaN and ±Infinity, which the caller never sends) as JS writes them.
   */
  number(x: number): void {
    if (!(Math.abs(x) <= Number.MAX_SAFE_INTEGER && Math.floor(x) === x)) return this.ascii('' + x);
    // 16 digits and a sign at most (2^53 has 16 digits).
    this.ensure(17);
    if (x < 0) {
      this.buf[this.len++] = MINUS;
      x = -x;
    }
    if (x < INT_LIMIT) return this.digits(x, 0);
    // Split so each half is an int32: 2^53 / 10^8 < 2^31, and the low half is zero-padded.
    const hi = Math.floor(x / 1e8);
    this.digits(hi, 0);
    this.digits(x - hi * 1e8, 8);
  }

  /** Writes 0 ≤ n < 2^31 in decimal, zero-padded to `width` digits. */
  private digits(n: number, width: number): void {
    let count = 1;
    for (let m = n; m >= 10; m = (m / 10) | 0) count++;
    if (count < width) count = width;
    const buf = this.buf;
    let p = this.len + count;
    this.len = p;
    for (let k = 0; k < count; k++) {
      const q = (n / 10) | 0;
      buf[--p] = 0x30 + (n - q * 10);
      n = q;
    }
  }

  /** Appends any string as UTF-8. */
  utf8(s: string): void {
    this.ensure(s.length * 3);
    this.len += this.buf.utf8Write(s, this.len);
  }

  /** Appends bytes [start, end) of `src`. */
  bytes(src: Buffer, start: number, end: number): void {
    const n = end - start;
    this.ensure(n);
    if (n < SHORT_COPY) {
      const buf = this.buf;
      let p = this.len;
      for (let i = start; i < end; i++) buf[p++] = src[i]!;
      this.len = p;
    } else {
      src.copy(this.buf, this.len, start, end);
      this.len += n;
    }
  }
}

const MINUS = 0x2d;
const INT_LIMIT = 2 ** 31;

/** Below this many bytes a JS loop beats the native copy's call overhead. */
export const SHORT_COPY = 32;
