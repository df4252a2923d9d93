import { defineConfig } from 'vitest/config';

/** `npm run test:system`: posagent under a real systemd in a systemd-nspawn container (root). */
export default defineConfig({
  test: {
    include: ['test/system/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 300_000,
    reporters: ['default', ['json', { outputFile: '.vitest-system-results.json' }]],
  },
});
