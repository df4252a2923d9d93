import { describe, expect, it } from 'vitest';
import {
  CODE_MOVES,
  codeState,
  PAIRING_MOVES,
  pairingState,
} from '../../../cloud/enrollment/enrollment-lifecycle.js';

/** Each transition of both machines, one test each: [machine, what happens, when the row says, at, state]. */
const code = (usedAt: number | null, now: number, revokedAt: number | null = null) =>
  codeState({ usedAt, expiresAt: 1000, revokedAt }, now);
const pairing = (activatedAt: number | null, now: number) =>
  pairingState({ activatedAt, expiresAt: 1000 }, now);
const TRANSITIONS: [string, string, () => string, string][] = [
  ['code', 'unused while not used and not yet expired', () => code(null, 999), 'unused'],
  ['code', 'unused --use--> used', () => code(500, 600), 'used'],
  ['code', 'unused --time--> expired, at expiresAt exactly', () => code(null, 1000), 'expired'],
  ['code', 'used is final: it stays used after it would have expired', () => code(500, 5000), 'used'],
  ['code', 'unused --revoke--> revoked', () => code(null, 600, 550), 'revoked'],
  [
    'code',
    'revoked is final: it stays revoked after it would have expired',
    () => code(null, 5000, 550),
    'revoked',
  ],
  ['pairing', 'pending while not activated and not yet expired', () => pairing(null, 999), 'pending'],
  ['pairing', 'pending --activate--> activated', () => pairing(500, 600), 'activated'],
  ['pairing', 'pending --time--> expired, at expiresAt exactly', () => pairing(null, 1000), 'expired'],
  [
    'pairing',
    'activated is final: the device may still collect after the code expired',
    () => pairing(500, 5000),
    'activated',
  ],
];

describe('enrollment lifecycles (cloud/enrollment/enrollment-lifecycle.ts)', () => {
  it('the allowed moves, and none out of a final state', () => {
    expect(CODE_MOVES).toEqual({
      unused: { use: 'used', revoke: 'revoked', expire: 'expired' },
      used: {},
      revoked: {},
      expired: {},
    });
    expect(PAIRING_MOVES).toEqual({
      pending: { activate: 'activated', expire: 'expired' },
      activated: {},
      expired: {},
    });
  });
  for (const [machine, title, state, expected] of TRANSITIONS)
    it(`${machine}: ${title}`, () => {
      expect(state()).toBe(expected);
    });
});
