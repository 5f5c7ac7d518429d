// Buffer's UTF-8 fast paths. They are undocumented but have been stable for many Node majors and
// skip the argument parsing of write()/toString(), which shows at millions of calls per second.
export interface FastBuffer extends Buffer {
  utf8Write(s: string, offset: number, length?: number): number;
  utf8Slice(start: number, end: number): string;
  /** One byte per character: for text known to be ASCII (JSON numbers and punctuation), or for
   *  bytes carried through a one-byte string unchanged (see latin1Slice). */
  latin1Write(s: string, offset: number, length?: number): number;
  /** Each byte as one character (0–255): a copy that any byte survives, UTF-8 or not. */
  latin1Slice(start: number, end: number): string;
  /** A string's UTF-16 code units as they are held, little-endian: a copy, no transcoding. */
  ucs2Write(s: string, offset: number, length?: number): number;
  ucs2Slice(start: number, end: number): string;
}

export function fast(b: Buffer): FastBuffer {
  return b as FastBuffer;
}
