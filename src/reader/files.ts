// Which files make up a set on disk, and reading one of them as a sequence of byte chunks —
// plain files by positioned reads (so a reader can start at a byte offset and, when following,
// read on as the file grows), gzip segments through a streaming inflater.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream';
import * as zlib from 'node:zlib';
import { GZ_SUFFIX, segmentName, segmentPath } from '../files/format.js';
import { ReadError, type SegmentInfo } from './types.js';

/**
 * Bytes per read. Large enough that the fixed cost of a read (a syscall and a promise turn, some
 * microseconds) is well under 1% of the time spent splitting and decoding the megabyte; small
 * enough that a reader holds a bounded, trivial amount of memory whatever the set's size.
 */
export const CHUNK_BYTES = 1024 * 1024;

/**
 * A candidate numbered name: the last "-<6+ digits>." in it (a stem may hold such digits too; segments.ts pads to six). Only a sieve:
 * segmentPath decides below.
 */
const NUMBERED = /^.*-(\d{6,})\./;

interface Candidate {
  number: number;
  plain?: string;
  gz?: string;
}

/**
 * The files of the set in segment order. A segment present both plain and compressed (a crash
 * between the compressed file's rename and the original's removal) is read from the plain file,
 * which is complete by construction; the .gz may be too, but nothing proves it. `*.tmp` files never
 * match because the patterns end in the extension.
 */
export async function listSegments(basePath: string): Promise<SegmentInfo[]> {
  const { dir } = segmentName(basePath);
  let names: string[];
  try {
    names = await fs.promises.readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw ioError(err, dir);
  }
  const base = path.basename(basePath);
  const found = new Map<number, Candidate>();
  const note = (n: number, kind: 'plain' | 'gz', name: string): void => {
    const c = found.get(n) ?? { number: n };
    c[kind] = name;
    found.set(n, c);
  };
  for (const name of names) {
    if (name === base) note(0, 'plain', name);
    else if (name === base + GZ_SUFFIX) note(0, 'gz', name);
    else {
      const m = NUMBERED.exec(name);
      if (!m) continue;
      const n = Number(m[1]);
      // The naming rule lives in segments.ts: a name counts only if it is exactly what it builds.
      const plain = path.basename(segmentPath(basePath, n));
      if (name === plain) note(n, 'plain', name);
      else if (name === plain + GZ_SUFFIX) note(n, 'gz', name);
    }
  }
  const out: SegmentInfo[] = [];
  for (const c of [...found.values()].sort((a, b) => a.number - b.number)) {
    for (const [name, compressed] of [
      [c.plain, false],
      [c.gz, true],
    ] as const) {
      if (name === undefined) continue;
      const p = path.join(dir, name);
      let st: fs.Stats;
      try {
        st = await fs.promises.stat(p);
      } catch (err) {
        // Removed since readdir (retention, or compression finishing): try the other form.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw ioError(err, p);
      }
      if (!st.isFile()) continue;
      out.push({ path: p, number: c.number, compressed, bytes: st.size });
      break;
    }
  }
  return out;
}

export function ioError(err: unknown, file: string, line = 0): ReadError {
  if (err instanceof ReadError) return err;
  const e = err as NodeJS.ErrnoException;
  return new ReadError(`${file}: ${e?.message ?? String(err)}`, { code: 'ERR_RINGLOG_READ_IO', file, line, cause: err });
}

/** A segment read chunk by chunk. `read()` returns null at the current end of the data. */
export interface ChunkSource {
  /** Byte offset (in the decompressed stream for .gz) of the next chunk's first byte. */
  readonly position: number;
  read(): Promise<Buffer | null>;
  close(): Promise<void>;
}

/**
 * Opens a segment at `offset`. Returns null when the file is gone (retention removed it, or the
 * compressor replaced it): the caller then looks again at what is on disk.
 */
export async function openSegment(seg: Pick<SegmentInfo, 'path' | 'compressed'>, offset: number): Promise<ChunkSource | null> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(seg.path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw ioError(err, seg.path);
  }
  return seg.compressed ? gzipSource(fh, seg.path, offset) : plainSource(fh, seg.path, offset);
}

/**
 * The bytes of the plain file open as `fh`, from `offset` up to `end` (by default on to whatever
 * end the file has at each read, so a follower sees it grow). Closing the source closes `fh`.
 */
export function plainSource(fh: fs.promises.FileHandle, file: string, offset: number, end = Infinity): ChunkSource {
  let position = offset;
  let closed = false;
  return {
    get position() {
      return position;
    },
    async read() {
      const want = Math.min(CHUNK_BYTES, end - position);
      if (want <= 0) return null;
      // A fresh buffer per read: the caller may still hold the previous one (a line cut at the
      // chunk's end), and allocation of a megabyte is cheap next to decoding it.
      const buf = Buffer.allocUnsafe(want);
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, 0, want, position));
      } catch (err) {
        throw ioError(err, file);
      }
      if (n === 0) return null;
      position += n;
      return buf.subarray(0, n);
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close().catch(() => undefined);
    },
  };
}

/**
 * A compressed segment whose data ends early or does not inflate (a truncated or damaged `.gz`):
 * unlike an I/O error, it is a fault of that one file, so a reader can report it and go on.
 */
export class DamagedData extends Error {
  constructor(
    message: string,
    /** Bytes inflated (and handed out) before the damage. */
    readonly offset: number,
  ) {
    super(message);
  }
}

/** zlib's own errors carry its status names (Z_DATA_ERROR, Z_BUF_ERROR for a stream cut short, …). */
function isZlibError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

function gzipSource(fh: fs.promises.FileHandle, file: string, offset: number): ChunkSource {
  const input = fh.createReadStream({ highWaterMark: CHUNK_BYTES, autoClose: true });
  const gunzip = zlib.createGunzip({ chunkSize: CHUNK_BYTES });
  // Errors of either stream reach the consumer through the iterator; this callback only keeps
  // pipeline from treating them as unhandled.
  pipeline(input, gunzip, () => undefined);
  const it = gunzip[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let position = 0;
  let skip = offset;
  let closed = false;
  return {
    get position() {
      return position;
    },
    async read() {
      for (;;) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (err) {
          if (isZlibError(err)) throw new DamagedData((err as Error).message, position);
          throw ioError(err, file);
        }
        if (r.done) return null;
        let chunk = r.value;
        // There is no seeking in a deflate stream: bytes before the offset are inflated and dropped.
        if (skip > 0) {
          const drop = Math.min(skip, chunk.length);
          skip -= drop;
          position += drop;
          chunk = chunk.subarray(drop);
          if (chunk.length === 0) continue;
        }
        position += chunk.length;
        return chunk;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await it.return?.().catch(() => undefined);
      gunzip.destroy();
      input.destroy();
      await fh.close().catch(() => undefined);
    },
  };
}
