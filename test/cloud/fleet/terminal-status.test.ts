import { describe, expect, it } from 'vitest';
import { deriveTerminalStatus } from '../../../cloud/fleet/terminal-status.js';

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
