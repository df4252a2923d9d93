import { describe, expect, it } from 'vitest';
import {
  attemptAfterLink,
  type BackoffPolicy,
  fullJitterDelay,
  reconnectDelay,
} from '../../agent/backoff.js';

const p: BackoffPolicy = { baseMs: 1000, capMs: 300_000, restartSpreadMs: 10_000, stableAfterMs: 60_000 };

describe('backoff', () => {
  it('is full jitter: 0 .. base·2ⁿ', () => {
    expect(fullJitterDelay(0, p, () => 0)).toBe(0);
    expect(fullJitterDelay(0, p, () => 0.999999)).toBe(999);
    expect(fullJitterDelay(3, p, () => 0.5)).toBe(4000);
  });

  it('keeps jitter at the cap, so a fleet never retries in lock-step', () => {
    expect(fullJitterDelay(20, p, () => 0.999999)).toBe(299_999);
    expect(fullJitterDelay(20, p, () => 0.1)).toBe(30_000);
    expect(fullJitterDelay(1000, p, () => 0.5)).toBe(150_000);
    // many devices at the cap spread over the whole window
    let seed = 1;
    const rnd = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    const delays = Array.from({ length: 2000 }, () => fullJitterDelay(30, p, rnd));
    const buckets = new Array(10).fill(0) as number[];
    for (const d of delays) buckets[Math.floor(d / 30_000)]!++;
    for (const b of buckets) expect(b).toBeGreaterThan(120);
  });

  it('spreads the first retry after a cloud restart over the restart window', () => {
    expect(reconnectDelay({ attempt: 0, cloudRestarted: true }, p, () => 0.5)).toBe(5000);
    expect(reconnectDelay({ attempt: 0, cloudRestarted: false }, p, () => 0.5)).toBe(500);
    expect(reconnectDelay({ attempt: 2, cloudRestarted: true }, p, () => 0.5)).toBe(2000);
  });

  it('resets only after a link that stayed up long enough', () => {
    expect(attemptAfterLink(5, 60_000, p)).toBe(0);
    expect(attemptAfterLink(5, 59_999, p)).toBe(6);
    expect(attemptAfterLink(5, null, p)).toBe(6);
  });
});
