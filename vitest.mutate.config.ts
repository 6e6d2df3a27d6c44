import { defineConfig } from 'vitest/config';

/**
 * The fast tests only: unit tests of the domain, over in-memory ports (test/memory/) where they need storage; no emulator.
 * `npm run mutate` (stryker.config.json) runs StrykerJS against these; `npm test` runs them too, as
 * part of test/** with vitest.config.ts.
 */
export default defineConfig({
  test: {
    // The domain's fast tests, listed: test/unit/ may also hold tests of other layers.
    include: [
      'test/unit/domain/**/*.test.ts',
      'test/unit/progress.test.ts',
      'test/unit/expression.test.ts',
      'test/unit/ids.test.ts',
      'test/unit/delay.test.ts',
      'test/unit/push.test.ts',
    ],
    testTimeout: 20_000,
  },
});
