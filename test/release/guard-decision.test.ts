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
