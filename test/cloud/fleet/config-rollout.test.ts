import { describe, expect, it } from 'vitest';
import { ROLLOUT, withAnswer, withDesired } from '../../../cloud/fleet/config-rollout.js';
import type { ConfigStatus, TerminalConfigRow } from '../../../cloud/store/store-types.js';

const row = (status: ConfigStatus, version = 7): TerminalConfigRow => ({
  terminalId: 't1',
  overrides: '{}',
  desired: '{"a":1}',
  version,
  appliedVersion: 5,
  status,
  errors: status === 'rejected' ? '[{"path":"/x","message":"no"}]' : null,
  updatedAt: 1,
});
const desired = { overrides: '{"tip":{}}', desired: '{"b":2}', version: 8 };
const answer = (status: 'applied' | 'rejected', version = 7) => ({
  version,
  status,
  errors: status === 'rejected' ? '[{"path":"/y","message":"bad"}]' : null,
  appliedVersion: status === 'applied' ? version : 5,
});

describe('config rollout: pending → applied | rejected (cloud/fleet/config-rollout.ts)', () => {
  it('the table has every state and event', () => {
    expect(Object.keys(ROLLOUT).sort()).toEqual(['applied', 'pending', 'rejected']);
    for (const moves of Object.values(ROLLOUT))
      expect(Object.keys(moves).sort()).toEqual(['applied', 'desired', 'rejected']);
  });

  it('(none) --desired--> pending, with nothing applied yet', () => {
    expect(withDesired(undefined, 't1', desired, 99)).toEqual({
      terminalId: 't1',
      ...desired,
      appliedVersion: null,
      status: 'pending',
      errors: null,
      updatedAt: 99,
    });
  });

  for (const from of ['pending', 'applied', 'rejected'] as const)
    it(`${from} --desired--> pending: the new version, errors cleared, what the terminal runs kept`, () => {
      const next = withDesired(row(from), 't1', desired, 99);
      expect(next).toMatchObject({
        status: 'pending',
        version: 8,
        errors: null,
        appliedVersion: 5,
        desired: '{"b":2}',
      });
    });

  for (const from of ['pending', 'applied', 'rejected'] as const)
    for (const to of ['applied', 'rejected'] as const)
      it(`${from} --${to} (the version it was sent)--> ${to}`, () => {
        const next = withAnswer(row(from), answer(to), 99)!;
        expect(next.status).toBe(to);
        expect(next.errors).toBe(answer(to).errors);
        expect(next.appliedVersion).toBe(answer(to).appliedVersion);
        expect(next.version).toBe(7);
        expect(next.updatedAt).toBe(99);
      });

  it('an answer about another version changes only what the terminal says it runs', () => {
    const before = row('pending', 9);
    const next = withAnswer(before, { ...answer('rejected', 7), appliedVersion: 6 }, 99)!;
    expect(next).toEqual({ ...before, appliedVersion: 6, updatedAt: 99 });
  });

  it('an answer for a terminal without a config changes nothing', () => {
    expect(withAnswer(undefined, answer('applied'), 99)).toBeUndefined();
  });
});
