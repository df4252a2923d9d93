import { describe, expect, it } from 'vitest';
import { decideAtStart, type UpdateFacts } from '../../agent/update-state.js';

const base: UpdateFacts = {
  step: 'downloading',
  running: '1.0.0',
  from: '1.0.0',
  to: '1.1.0',
  linked: '1.0.0',
  trialStarts: 0,
  maxTrialStarts: 3,
  deadlineMs: null,
  nowMs: 1_000_000,
};
const at = (f: Partial<UpdateFacts>) => decideAtStart({ ...base, ...f });

/** Every place a power cut can leave an update, and what the next start does with it. */
describe('update decisions at start', () => {
  it.each([null, 'downloading', 'verifying', 'installing', 'waiting'] as const)(
    'before the switch (%s): resume, the running version untouched',
    (step) => {
      expect(at({ step })).toEqual({ do: 'resume' });
    },
  );

  it('switching, the link not yet renamed: resume (the switch is redone)', () => {
    expect(at({ step: 'switching', linked: '1.0.0' })).toEqual({ do: 'resume' });
  });

  it('switching or trial, the link renamed but the old version started: restart into the new one', () => {
    expect(at({ step: 'switching', linked: '1.1.0' })).toEqual({ do: 'restart' });
    expect(at({ step: 'trial', linked: '1.1.0' })).toEqual({ do: 'restart' });
  });

  it('the new version runs within its window: trial with the time left', () => {
    const d = at({ step: 'trial', running: '1.1.0', linked: '1.1.0', trialStarts: 1, deadlineMs: 1_005_000 });
    expect(d).toEqual({ do: 'trial', remainingMs: 5000 });
    // A power cut between the link rename and writing `trial`: the same.
    expect(
      at({ step: 'switching', running: '1.1.0', linked: '1.1.0', trialStarts: 1, deadlineMs: 1_005_000 }).do,
    ).toBe('trial');
  });

  it('the window is over: rollback, naming the window', () => {
    const d = at({ step: 'trial', running: '1.1.0', linked: '1.1.0', trialStarts: 1, deadlineMs: 999_000 });
    expect(d).toEqual({
      do: 'rollback',
      reason: 'version 1.1.0 did not reach the cloud within its health window',
    });
  });

  it('the new version keeps crashing: rollback after maxTrialStarts starts', () => {
    const d = at({ step: 'trial', running: '1.1.0', linked: '1.1.0', trialStarts: 4, deadlineMs: 2_000_000 });
    expect(d).toEqual({
      do: 'rollback',
      reason: 'version 1.1.0 restarted 3 times without reaching the cloud',
    });
    expect(
      at({ step: 'trial', running: '1.1.0', linked: '1.1.0', trialStarts: 3, deadlineMs: 2_000_000 }).do,
    ).toBe('trial');
  });

  it('rolling back: finished when the old version runs from the link, else finished again', () => {
    expect(at({ step: 'rolling_back', running: '1.0.0', linked: '1.0.0' })).toEqual({ do: 'rolled_back' });
    expect(at({ step: 'rolling_back', running: '1.1.0', linked: '1.1.0' })).toEqual({
      do: 'rollback',
      reason: 'finishing an interrupted rollback',
    });
    expect(at({ step: 'rolling_back', running: '1.0.0', linked: '1.1.0' }).do).toBe('rollback');
  });

  it('in trial but the old version runs from the link: someone switched back; rollback', () => {
    expect(at({ step: 'trial', running: '1.0.0', linked: '1.0.0' }).do).toBe('rollback');
  });

  it('final steps: nothing to do', () => {
    expect(at({ step: 'committed' })).toEqual({ do: 'nothing' });
    expect(at({ step: 'rolled_back' })).toEqual({ do: 'nothing' });
  });
});
