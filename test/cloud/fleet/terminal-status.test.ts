import { describe, expect, it } from 'vitest';
import { deriveTerminalStatus, statusWithReason } from '../../../cloud/fleet/terminal-status.js';

const day = 86_400_000;
const th = { atRiskAfterMs: 900_000, offlineAfterMs: 1_800_000, expiringWithinMs: 7 * day };
const base = {
  deactivated: false,
  lastSeenMs: 1_000_000,
  connected: true,
  closedCleanly: false,
  certNotAfterMs: 90 * day,
  problem: null,
  clockSkewMs: 0,
};

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
    [
      'deactivated above all',
      { ...base, deactivated: true, problem: 'certificate_revoked' },
      1_000_000,
      'deactivated',
    ],
    ['error when the certificate has expired', base, 90 * day, 'error'],
    [
      'error when the cloud refused its link',
      { ...base, problem: 'certificate_revoked' },
      1_000_001,
      'error',
    ],
    [
      'error when the device clock is off by more than 5 min',
      { ...base, clockSkewMs: 300_001 },
      1_000_001,
      'error',
    ],
    ['not an error within 5 min of clock skew', { ...base, clockSkewMs: -300_000 }, 1_000_001, 'online'],
    ['error when the certificate is about to expire (renewal failing)', base, 83 * day, 'error'],
    [
      'error before provisioning: a revoked certificate that never connected',
      { ...base, lastSeenMs: null, problem: 'auth' },
      5,
      'error',
    ],
  ] as const)('%s', (_name, t, now, expected) => {
    expect(deriveTerminalStatus(t, now, th)).toBe(expected);
  });

  it('each error has its reason; a threshold change says when it was crossed', () => {
    expect(statusWithReason(base, 90 * day + 5, th)).toEqual({
      status: 'error',
      reason: 'certificate_expired',
      sinceMs: 90 * day,
    });
    // A refused link that presented an old, expired copy while the current certificate is good:
    // error/certificate_expired dated when it was refused, never at the current one's future end.
    expect(statusWithReason({ ...base, problem: 'certificate_expired' }, 1_000_001, th)).toEqual({
      status: 'error',
      reason: 'certificate_expired',
      sinceMs: null,
    });
    expect(statusWithReason({ ...base, clockSkewMs: 2 * day }, 1_000_001, th).reason).toBe('clock');
    expect(statusWithReason(base, 84 * day, th).reason).toBe('certificate_expiring');
    expect(statusWithReason({ ...base, problem: 'certificate_revoked' }, 1_000_001, th).reason).toBe(
      'certificate_revoked',
    );
    expect(statusWithReason(base, 1_000_000 + 2_000_000, th)).toEqual({
      status: 'offline',
      reason: 'no_heartbeat',
      sinceMs: 1_000_000 + 1_800_000,
    });
  });
});
