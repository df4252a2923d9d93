import { describe, expect, it } from 'vitest';
import { decideGuard, type GuardFacts } from '../../release/guard-decision.js';
import type { TrialState } from '../../release/layout.js';

const trial: TrialState = {
  actionId: 'act_1',
  from: '1.0.0',
  to: '1.1.0',
  starts: 0,
  maxStarts: 3,
  healthWindowMs: 60_000,
  deadline: null,
};
const base: GuardFacts = { trial, linked: '1.1.0', committed: null, nowMs: 1_000_000 };
const at = (f: Partial<GuardFacts>, t: Partial<TrialState> = {}) =>
  decideGuard({ ...base, ...f, trial: f.trial === null ? null : { ...trial, ...t } });

/** The boot guard's table: one test per transition. */
describe('boot guard decisions', () => {
  it('no trial: start as is', () => {
    expect(at({ trial: null })).toEqual({ do: 'start' });
  });

  it('first start of the release on trial: counted, the window opens now', () => {
    expect(at({})).toEqual({ do: 'count', starts: 1, deadline: 1_060_000 });
  });

  it('a later start inside the window: counted, the window kept', () => {
    expect(at({}, { starts: 2, deadline: 1_030_000 })).toEqual({
      do: 'count',
      starts: 3,
      deadline: 1_030_000,
    });
  });

  it('maxStarts starts and still on trial: roll back, with how the last start ended', () => {
    expect(at({}, { starts: 3, deadline: 2_000_000, lastExit: 'exit-code, exited=1' })).toEqual({
      do: 'rollback',
      reason:
        'version 1.1.0 failed to start: 3 starts without reaching the cloud (last start ended: exit-code, exited=1); the boot guard rolled back to 1.0.0',
    });
  });

  it('the window is over without a commit: roll back', () => {
    expect(at({}, { starts: 1, deadline: 999_999 })).toEqual({
      do: 'rollback',
      reason:
        'version 1.1.0 did not reach the cloud within its health window; the boot guard rolled back to 1.0.0',
    });
  });

  it('committed by the agent: the trial is forgotten, even past its window or its starts', () => {
    const committed = { actionId: 'act_1', version: '1.1.0' };
    expect(at({ committed }, { starts: 3, deadline: 1 }).do).toBe('forget');
    // A commit of another action or version does not end this trial.
    expect(at({ committed: { actionId: 'act_0', version: '1.1.0' } }).do).toBe('count');
  });

  it('current no longer points to the release on trial: forgotten', () => {
    expect(at({ linked: '1.0.0' })).toEqual({ do: 'forget', why: 'current is 1.0.0, not 1.1.0' });
  });
});

/** Issue 24: a rollback across a store migration. */
describe('boot guard decisions across a store migration', () => {
  const over = { starts: 1, deadline: 999_000 }; // the health window is over
  const store = (s: Partial<NonNullable<GuardFacts['store']>> = {}) => ({
    version: 8,
    oldestReader: 8,
    snapshot: null,
    salesSinceSnapshot: false,
    ...s,
  });
  const snapshot = {
    file: 'agent.db.before-schema-8',
    version: 7,
    oldestReader: 0,
    takenAt: '2026-12-02T07:00:00Z',
  };
  const windowOver = 'version 1.1.0 did not reach the cloud within its health window';

  it('the previous release can open the store (its oldest reader is within what it knows): roll back', () => {
    expect(at({ store: store({ oldestReader: 0 }), fromSchema: 7 }, over)).toEqual({
      do: 'rollback',
      reason: `${windowOver}; the boot guard rolled back to 1.0.0`,
    });
  });

  it('nothing known of the store or of the previous release (older releases say nothing): roll back as before', () => {
    expect(at({ store: null, fromSchema: 7 }, over)).toMatchObject({ do: 'rollback' });
    expect(at({ store: store(), fromSchema: null }, over)).toMatchObject({ do: 'rollback' });
  });

  it('it cannot, but the snapshot from before the migration it can and no sale since: roll back and restore it', () => {
    expect(at({ store: store({ snapshot }), fromSchema: 7 }, over)).toEqual({
      do: 'rollback',
      reason: `${windowOver}; the boot guard rolled back to 1.0.0, and the store back to its snapshot from before the migration to schema 8`,
      restoreStore: { snapshot: 'agent.db.before-schema-8', migratedTo: 8 },
    });
  });

  it('it cannot and a sale was taken since the snapshot: keep the release, with the reason', () => {
    expect(at({ store: store({ snapshot, salesSinceSnapshot: true }), fromSchema: 7 }, over)).toEqual({
      do: 'keep',
      reason: `${windowOver}; the boot guard refused to roll back to 1.0.0: the store was migrated to schema 8, which only software of schema 8 or later can open (1.0.0 knows 7), and sales were taken since the snapshot from before the migration, which putting it back would lose; 1.1.0 stays`,
    });
  });

  it('it cannot and there is no snapshot, or the snapshot needs a newer schema too: keep', () => {
    expect(at({ store: store(), fromSchema: 7 }, over)).toMatchObject({
      do: 'keep',
      reason: expect.stringContaining('and there is no snapshot from before the migration; 1.1.0 stays'),
    });
    expect(
      at({ store: store({ snapshot: { ...snapshot, oldestReader: 8 } }), fromSchema: 7 }, over),
    ).toMatchObject({
      do: 'keep',
      reason: expect.stringContaining('its snapshot needs schema 8 too'),
    });
  });

  it('failing to start counts the same way: a store the previous release cannot open is never given to it', () => {
    expect(at({ store: store(), fromSchema: 7 }, { starts: 3 })).toMatchObject({
      do: 'keep',
      reason: expect.stringMatching(
        /^version 1\.1\.0 failed to start: 3 starts without reaching the cloud; the boot guard refused/,
      ),
    });
  });
});
