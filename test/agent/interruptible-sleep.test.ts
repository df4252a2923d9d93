import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleepUnless } from '../../agent/interruptible-sleep.js';

describe('sleepUnless', () => {
  it('sleeps the whole time, or ends at the first abort; never leaves a listener behind', async () => {
    const long = new AbortController();
    for (let i = 0; i < 50; i++)
      expect(await sleepUnless(0, long.signal, new AbortController().signal)).toBe(true);
    expect(getEventListeners(long.signal, 'abort')).toHaveLength(0);

    const short = new AbortController();
    const pending = sleepUnless(60_000, long.signal, short.signal);
    short.abort();
    expect(await pending).toBe(false);
    expect(getEventListeners(long.signal, 'abort')).toHaveLength(0);

    long.abort();
    expect(await sleepUnless(60_000, long.signal)).toBe(false);
  });
});
