import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails any test whose processes logged an unhandled rejection or uncaught exception.
    setupFiles: ['test/support/no-unexpected-fatal.ts'],
    // test/system boots a real systemd in a container (root, debootstrap): `npm run test:system`.
    exclude: ['test/system/**', 'node_modules/**'],
    // e2e files start real clouds and agents; two cores here, so keep files to two at a time.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default', ['json', { outputFile: '.vitest-results.json' }]],
  },
});
