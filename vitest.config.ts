import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

// vitest's default is one worker fewer than the machine has cores: on the project's 2-core machines that is one,
// and every test file runs after the other. Most files wait on sockets, Redis, DNS and child processes rather
// than compute, so two at a time halve the suite's time there (docs/testing.md, "Test files in parallel").
const workers = Math.max(2, availableParallelism());

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    maxWorkers: workers,
    minWorkers: 1,
    reporters: ['default'],
  },
});
