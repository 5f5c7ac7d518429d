// Where package look-ups start (better-sqlite3 for the SQLite backend): this module's own location,
// or, bundled, the bundle's. In a CommonJS bundle import.meta.url is empty (esbuild warns about it
// once at bundle time); the bundle's __filename stands in, and failing both, the working directory.

import * as path from 'node:path';

export function moduleBase(): string {
  const url: string | undefined = import.meta.url;
  if (url) return url;
  if (typeof __filename === 'string') return __filename;
  return path.join(process.cwd(), 'index.js');
}
