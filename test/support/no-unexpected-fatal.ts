import { afterAll, afterEach } from 'vitest';
import { takeUnexpectedFatal } from './processes.js';

/**
 * Issue 18.2, asserted for the whole suite: no process a test started (agents, clouds, CLIs) may
 * log an unhandled rejection or an uncaught exception, unless the test made it fail on purpose.
 */
function check(): void {
  const seen = takeUnexpectedFatal();
  if (seen.length > 0)
    throw new Error(`a process logged an unhandled failure (issue 18.2):\n${seen.join('\n')}`);
}
afterEach(check);
afterAll(check);
