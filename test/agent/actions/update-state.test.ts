import { describe, expect, it } from 'vitest';
import { decideAtStart, type UpdateFacts } from '../../../agent/actions/update-state.js';

const base: UpdateFacts = {
  step: 'downloading',
  running: '1.0.0',
  from: '1.0.0',
  to: '1.1.0',
  linked: '1.0.0',
  guardReason: null,
  deadlineMs: null,
  healthWindowMs: 300_000,
  nowMs: 1_000_000,
};
const at = (f: Partial<UpdateFacts>) => decideAtStart({ ...base, ...f });

/** Every place a power cut or a rollback can leave an update, and what the next start does with it. */
describe('update decisions at start', () => {
  it.each([null, 'downloading', 'verifying', 'installing', 'waiting'] as const)(
    'before the switch (%s): resume, the running version untouched',
    (step) => {
      expect(at({ step })).toEqual({ do: 'resume' });
    },
  );

  it('switching, the installer never switched: resume (the switch is asked for again)', () => {
    expect(at({ step: 'switching', linked: '1.0.0' })).toEqual({ do: 'resume' });
  });

  it('switching or trial, the link switched but the old version started: restart into the new one', () => {
    expect(at({ step: 'switching', linked: '1.1.0' })).toEqual({ do: 'restart' });
    expect(at({ step: 'trial', linked: '1.1.0' })).toEqual({ do: 'restart' });
  });

  it('the new version runs within the window the boot guard opened: trial with the time left', () => {
    const d = at({ step: 'trial', running: '1.1.0', linked: '1.1.0', deadlineMs: 1_005_000 });
    expect(d).toEqual({ do: 'trial', remainingMs: 5000 });
    // A power cut between the switch and writing `trial`: the same.
    expect(at({ step: 'switching', running: '1.1.0', linked: '1.1.0', deadlineMs: 1_005_000 }).do).toBe(
      'trial',
    );
  });

  it('no guard set a deadline: the whole window from now', () => {
    expect(at({ step: 'trial', running: '1.1.0', linked: '1.1.0' })).toEqual({
      do: 'trial',
      remainingMs: 300_000,
    });
  });

  it('the window is over: end the trial so that the boot guard rolls back (the agent cannot)', () => {
    expect(at({ step: 'trial', running: '1.1.0', linked: '1.1.0', deadlineMs: 999_000 })).toEqual({
      do: 'end_trial',
      reason: 'version 1.1.0 did not reach the cloud within its health window',
    });
  });

  it('the guard rolled back and left its reason: the previous version reports it', () => {
    const reason =
      'version 1.1.0 failed to start: 3 starts without reaching the cloud; the boot guard rolled back to 1.0.0';
    expect(at({ step: 'trial', guardReason: reason })).toEqual({ do: 'report_failed', reason });
    expect(at({ step: 'switching', guardReason: reason })).toEqual({ do: 'report_failed', reason });
    // A note left for an old run of the new version means nothing to the new version itself.
    expect(
      at({ step: 'trial', running: '1.1.0', linked: '1.1.0', guardReason: reason, deadlineMs: 1_005_000 }).do,
    ).toBe('trial');
  });

  it('in trial but the old version runs from the link, no note: switched back by hand; failed', () => {
    expect(at({ step: 'trial', running: '1.0.0', linked: '1.0.0' })).toEqual({
      do: 'report_failed',
      reason: 'version 1.0.0 was started again during the trial of 1.1.0',
    });
  });

  it('an interrupted rollback of an earlier version: reported failed', () => {
    expect(at({ step: 'rolling_back', running: '1.0.0', linked: '1.0.0' }).do).toBe('report_failed');
  });

  it('final steps: nothing to do', () => {
    expect(at({ step: 'committed' })).toEqual({ do: 'nothing' });
    expect(at({ step: 'rolled_back' })).toEqual({ do: 'nothing' });
  });

  it('issue 24: the guard refused the rollback (the previous version could not open the store): the new version reports it, once', () => {
    const reason =
      'version 1.1.0 did not reach the cloud within its health window; the boot guard refused to roll back to 1.0.0: …; 1.1.0 stays';
    expect(
      at({ step: 'trial', running: '1.1.0', linked: '1.1.0', guardReason: reason, guardKept: true }),
    ).toEqual({
      do: 'report_kept',
      reason,
    });
    expect(
      at({
        step: 'rollback_refused',
        running: '1.1.0',
        linked: '1.1.0',
        guardReason: reason,
        guardKept: true,
      }),
    ).toEqual({
      do: 'nothing',
    });
  });
});
