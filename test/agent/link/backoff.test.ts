import { describe, expect, it } from 'vitest';
import {
  type BackoffPolicy,
  fullJitterDelay,
  reconnectDelay,
  retryAfterLink,
  stableLink,
} from '../../../agent/link/backoff.js';

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
    const r = () => 0.5;
    expect(retryAfterLink(5, { upForMs: 60_000, cloudRestarted: false }, p, r)).toMatchObject({
      attempt: 0,
      failed: 1,
    });
    expect(retryAfterLink(5, { upForMs: 59_999, cloudRestarted: false }, p, r)).toMatchObject({
      attempt: 5,
      failed: 6,
    });
    expect(retryAfterLink(5, { upForMs: null, cloudRestarted: false }, p, r)).toMatchObject({
      attempt: 5,
      failed: 6,
    });
  });

  it('issue 18.8: after a stable link, the first retry is drawn from the attempt-0 range (10,000 draws)', () => {
    // A terminal that failed 20 times in a row (at the 5 min cap), then was online for three days.
    let failed = 0;
    for (let i = 0; i < 20; i++)
      failed = retryAfterLink(failed, { upForMs: null, cloudRestarted: false }, p, Math.random).failed;
    expect(failed).toBe(20);
    const firstRetries = Array.from({ length: 10_000 }, () =>
      retryAfterLink(failed, { upForMs: 3 * 86_400_000, cloudRestarted: false }, p, Math.random),
    );
    for (const retry of firstRetries) {
      expect(retry.attempt).toBe(0);
      expect(retry.delayMs).toBeGreaterThanOrEqual(0);
      expect(retry.delayMs).toBeLessThan(p.baseMs);
    }
    // …spread over that range, and the next failure goes on from attempt 1.
    expect(Math.max(...firstRetries.map((x) => x.delayMs))).toBeGreaterThan(900);
    expect(retryAfterLink(1, { upForMs: null, cloudRestarted: false }, p, () => 0.999).delayMs).toBe(1998);
  });

  it('issue 23: a retry window is never longer than the outage so far (at least base), up to the cap', () => {
    const top = () => 0.999999;
    // 5 s into an outage, six refused attempts in: 0..5 s, not 0..64 s.
    expect(reconnectDelay({ attempt: 6, cloudRestarted: false, downForMs: 5_000 }, p, top)).toBe(4_999);
    // Early on, at least the base window.
    expect(reconnectDelay({ attempt: 3, cloudRestarted: false, downForMs: 200 }, p, top)).toBe(999);
    // A long outage: the exponential window (then the cap) as before.
    expect(reconnectDelay({ attempt: 3, cloudRestarted: false, downForMs: 3_600_000 }, p, top)).toBe(7_999);
    expect(reconnectDelay({ attempt: 20, cloudRestarted: false, downForMs: 3_600_000 }, p, top)).toBe(
      299_999,
    );
    // The first retry after the cloud's own restart close is still spread over its window.
    expect(reconnectDelay({ attempt: 0, cloudRestarted: true, downForMs: 0 }, p, () => 0.5)).toBe(5000);
    // The link says how long it has been down; a stable link that ended starts a new outage.
    expect(retryAfterLink(6, { upForMs: null, cloudRestarted: false, downForMs: 5_000 }, p, top)).toEqual({
      attempt: 6,
      delayMs: 4_999,
      failed: 7,
    });
    expect(stableLink({ upForMs: 60_000 }, p)).toBe(true);
    expect(stableLink({ upForMs: 59_999 }, p)).toBe(false);
    expect(stableLink({ upForMs: null }, p)).toBe(false);
  });
});
