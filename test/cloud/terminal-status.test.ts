import { describe, expect, it } from 'vitest';
import { AttemptLimiter } from '../../cloud/attempt-limiter.js';
import { deriveTerminalStatus } from '../../cloud/terminal-status.js';

const th = { atRiskAfterMs: 900_000, offlineAfterMs: 1_800_000 };
const base = { deactivated: false, lastSeenMs: 1_000_000, connected: true, closedCleanly: false };

describe('terminal status', () => {
  it.each([
    ['online when heard from recently', base, 1_000_000 + 899_999, 'online'],
    ['needs_attention after the at-risk threshold', base, 1_000_000 + 900_000, 'needs_attention'],
    ['offline after the offline threshold', base, 1_000_000 + 1_800_000, 'offline'],
    [
      'still heartbeat-derived after an abrupt drop',
      { ...base, connected: false },
      1_000_000 + 1000,
      'online',
    ],
    [
      'offline at once after a clean goodbye',
      { ...base, connected: false, closedCleanly: true },
      1_000_000 + 1000,
      'offline',
    ],
    ['provisioning when never heard from', { ...base, lastSeenMs: null }, 5, 'provisioning'],
    ['deactivated above all', { ...base, deactivated: true }, 1_000_000, 'deactivated'],
  ] as const)('%s', (_name, t, now, expected) => {
    expect(deriveTerminalStatus(t, now, th)).toBe(expected);
  });
});

describe('attempt limiter', () => {
  it('allows maxFailures in a window, then says how long to wait, then forgets', () => {
    const l = new AttemptLimiter(3, 1000);
    for (const t of [0, 10, 20]) {
      expect(l.retryAfterMs('a', t)).toBe(0);
      l.recordFailure('a', t);
    }
    expect(l.retryAfterMs('a', 30)).toBe(970);
    expect(l.retryAfterMs('b', 30)).toBe(0);
    expect(l.retryAfterMs('a', 1000)).toBe(0);
  });
});
