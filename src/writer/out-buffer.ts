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

/** Below this many bytes a JS loop beats the native copy's call overhead. */
export const SHORT_COPY = 32;
