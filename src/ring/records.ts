// The byte format of records in the ring, shared by the encoder (caller thread) and the line
// builder (writer thread, or the caller when it drains on exit). Little-endian throughout.
//
// Record: u32 total length (a multiple of RECORD_ALIGN) | u8 kind | u8 flags | u16 unused | body

/** Records start on 8-byte boundaries so a wrap always leaves room for a PAD header. */
export const RECORD_ALIGN = 8;
export const RECORD_HEADER = 8;

export const Kind = {
  /** Skip to the end of the data region: the next record starts at offset 0. */
  PAD: 1,
  /** f64 index | f64 emitted_at_ms | value frame_depth | [value execution_id] | value event */
  EVENT: 2,
  /** f64 first index | f64 count | f64 emitted_at_ms: events lost before they reached the ring. */
  DROPPED: 3,
  /** f64 index | f64 emitted_at_ms | value frame_depth | [value execution_id] | value reason */
  REJECTED: 4,
  /** u32 id: a record too big for the ring, held in its own SharedArrayBuffer sent by message. */
  EXTERNAL: 5,
} as const;

export const Flag = {
  EXECUTION_ID: 1,
  /** On DROPPED: made under the claim lock (shared rings), where a producer dying mid-claim can
   *  leave a range marked twice or published after all; the consumer marks only the indexes it
   *  has not seen, and counts them. */
  IF_MISSING: 2,
  /** On DROPPED with IF_MISSING: the indexes were taken by a producer that died mid-claim (counted
   *  as PRODUCER_LOST; other claim-made markers are overload drops, counted as CLAIM_DROPPED). */
  PRODUCER_DIED: 4,
} as const;

export const Tag = {
  NULL: 0,
  FALSE: 1,
  TRUE: 2,
  F64: 3,
  I32: 4,
  /** u32 byte length | UTF-8 bytes of a well-formed string */
  STR: 5,
  /** u32 byte length | JSON text written verbatim (strings with lone surrogates, pre-escaped) */
  RAW: 6,
  /** u32 element count | values */
  ARR: 7,
  /** entries (key, value) until END */
  OBJ: 8,
  END: 9,
  /** u32 byte length | UTF-8 text of one JSON object, another logger's line (only as an EVENT's
   *  body): the writer checks it and splices its members after the envelope. */
  JSON_OBJECT: 10,
  /** u32 UTF-16 code unit count | a zero byte if needed so the units start at an even offset
   *  (wideAt) | the string's code units, little-endian: a string with non-ASCII text, copied as it
   *  is held in memory (no transcoding, no surrogate check on the caller's thread); the writer makes
   *  its UTF-8, lone surrogates escaped as JSON.stringify escapes them. */
  STR16: 11,
  /** u16 key id, known to the reader */
  KEY_ID: 0x10,
  /** u16 key id | u16 byte length | UTF-8 bytes: defines the id, then uses it */
  KEY_DEF: 0x11,
  /** u32 byte length | the key's quoted JSON text: a key not worth interning */
  KEY_INLINE: 0x12,
} as const;

/**
 * Where the code units of the STR16 value at `p` start: the first even offset after its count.
 * Records start at multiples of RECORD_ALIGN, in the ring as in any buffer they are made or copied
 * into, so an offset's parity is the same counted from the record or from the buffer: the units
 * can be read through a Uint16Array of the buffer.
 */
export function wideAt(p: number): number {
  return (p + 6) & ~1;
}

export function alignRecord(n: number): number {
  return (n + RECORD_ALIGN - 1) & ~(RECORD_ALIGN - 1);
}
