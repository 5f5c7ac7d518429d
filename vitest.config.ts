import { defineConfig } from 'vitest/config';

// Tests run against the compiled library in dist/ (build first: `npx tsc -p tsconfig.json`).
// Forks, not threads: the library starts worker threads, installs a process 'exit' listener and
// the exit tests spawn child processes; each test file gets a process of its own.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Child processes and 100k-event runs on a slow 2-core machine.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // expect.poll waits 1 s by default: short for a browser round trip or a child's output under
    // load. A poll that succeeds returns as soon as it does, so a long ceiling costs nothing.
    expect: { poll: { timeout: 15_000 } },
    reporters: ['default'],
  },
});
