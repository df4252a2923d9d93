import { describe, expect, it } from 'vitest';
import {
  budgetNow,
  type DeploymentRules,
  decide,
  emptyCounts,
  type GroupCounts,
  planGroups,
} from '../../../cloud/deployments/deployment-plan.js';
import {
  canMoveTarget,
  DEPLOYMENT_STATES,
  DEPLOYMENT_TRANSITIONS,
  type DeploymentEvent,
  nextDeploymentState,
  TARGET_STATES,
} from '../../../cloud/deployments/deployment-state.js';

const ids = Array.from({ length: 50 }, (_, i) => `term_${String(i).padStart(2, '0')}`);
const rules: DeploymentRules = {
  advanceWhen: { successPercent: 80 },
  stopWhen: { failurePercent: 20 },
  maxPerMinute: 60,
};
const g = (c: Partial<GroupCounts>): GroupCounts => ({ ...emptyCounts(), ...c });

/** Issue 24: the deployment's state machine and its plan, one test per rule. */
describe('deployment state machine', () => {
  const EVENTS: DeploymentEvent[] = ['start', 'advance', 'finish', 'stop', 'pause', 'resume', 'cancel'];
  const allowed: [string, DeploymentEvent, string][] = [
    ['scheduled', 'start', 'running'],
    ['scheduled', 'cancel', 'cancelled'],
    ['running', 'advance', 'running'],
    ['running', 'finish', 'completed'],
    ['running', 'stop', 'stopped'],
    ['running', 'pause', 'paused'],
    ['running', 'cancel', 'cancelled'],
    ['paused', 'resume', 'running'],
    ['paused', 'cancel', 'cancelled'],
  ];
  it.each(allowed)('%s --%s--> %s', (from, event, to) => {
    expect(nextDeploymentState(from as never, event)).toBe(to);
  });
  it('every other move is refused (null), and the final states take none', () => {
    for (const from of DEPLOYMENT_STATES)
      for (const event of EVENTS)
        if (!allowed.some(([f, e]) => f === from && e === event))
          expect(nextDeploymentState(from, event)).toBeNull();
    for (const s of ['completed', 'stopped', 'cancelled'] as const)
      expect(DEPLOYMENT_TRANSITIONS[s]).toEqual({});
  });
  it('a terminal in a deployment: queued → processing → completed | failed; queued → skipped; nothing else', () => {
    const ok = ['queued>processing', 'queued>skipped', 'processing>completed', 'processing>failed'];
    for (const a of TARGET_STATES)
      for (const b of TARGET_STATES) expect(canMoveTarget(a, b)).toBe(ok.includes(`${a}>${b}`));
  });
});

describe('deployment plan', () => {
  it('groups: a stable shuffle of the terminals, cut by percent or count, the last taking the rest', () => {
    const groups = planGroups('dep_1', ids, [{ percent: 10 }, { count: 15 }, { percent: 100 }]);
    expect(groups.map((x) => x.length)).toEqual([5, 15, 30]);
    expect(new Set(groups.flat()).size).toBe(50);
    expect(
      planGroups('dep_1', [...ids].reverse(), [{ percent: 10 }, { count: 15 }, { percent: 100 }]),
    ).toEqual(groups);
    expect(planGroups('dep_2', ids, [{ percent: 10 }])[0]).not.toEqual(groups[0]); // another deployment, another order
    expect(groups[0]).not.toEqual(ids.slice(0, 5)); // not the first ids
    // Fewer terminals than the groups ask for: the first takes them all, an empty group is dropped.
    expect(planGroups('dep_1', ids.slice(0, 3), [{ count: 5 }, { count: 5 }]).map((x) => x.length)).toEqual([
      3,
    ]);
  });

  it('asks the queued terminals of the started groups, within the rate budget', () => {
    const facts = {
      state: 'running' as const,
      startedGroups: 1,
      groups: [g({ queued: 5 }), g({ queued: 15 })],
      rules,
    };
    expect(decide({ ...facts, budget: 3 })).toEqual({ do: 'ask', count: 3 });
    expect(decide({ ...facts, budget: 0 })).toEqual({ do: 'wait' });
    expect(decide({ ...facts, state: 'paused', budget: 9 })).toEqual({ do: 'wait' });
  });

  it('group 2 starts only when group 1 reaches its success share (terminals still updating count as not yet)', () => {
    const at = (first: Partial<GroupCounts>) =>
      decide({
        state: 'running',
        startedGroups: 1,
        groups: [g(first), g({ queued: 15 })],
        rules,
        budget: 60,
      });
    expect(at({ processing: 2, completed: 3 })).toEqual({ do: 'wait' }); // 60 %
    expect(at({ processing: 1, completed: 4 })).toEqual({ do: 'advance', group: 1 }); // 80 %
    expect(at({ completed: 4, skipped: 1 })).toEqual({ do: 'advance', group: 1 }); // skipped do not count
  });

  it('a group that finished below the share stops the deployment: the next never starts', () => {
    expect(
      decide({
        state: 'running',
        startedGroups: 1,
        groups: [g({ completed: 3, failed: 2 }), g({ queued: 15 })],
        rules: { ...rules, stopWhen: {} },
        budget: 60,
      }),
    ).toEqual({
      do: 'stop',
      reason: 'group 1 finished with 60 % completed, below advanceWhen.successPercent 80',
    });
  });

  it('stops at the failure share once enough finished, or at a number of failures', () => {
    const groups = [
      g({ completed: 4, failed: 1 }),
      g({ completed: 4, failed: 2, processing: 5, queued: 4 }),
      g({ queued: 30 }),
    ];
    expect(decide({ state: 'running', startedGroups: 2, groups, rules, budget: 60 })).toEqual({
      do: 'stop',
      reason: '3 of 11 terminals finished failed the update (27 %, stopWhen.failurePercent 20)',
    });
    // One failure of the first two finished does not stop a fleet (judged from 10 finished).
    expect(
      decide({
        state: 'running',
        startedGroups: 1,
        groups: [g({ completed: 1, failed: 1, processing: 3 }), g({ queued: 45 })],
        rules,
        budget: 0,
      }),
    ).toEqual({ do: 'wait' });
    expect(
      decide({
        state: 'running',
        startedGroups: 1,
        groups: [g({ failed: 2, processing: 3 })],
        rules: { ...rules, stopWhen: { failures: 2 } },
        budget: 0,
      }),
    ).toEqual({ do: 'stop', reason: '2 terminals failed the update (stopWhen.failures 2)' });
  });

  it('finishes when every group started and no terminal is still updating', () => {
    const last = [g({ completed: 5 }), g({ completed: 15 }), g({ completed: 28, processing: 2 })];
    expect(decide({ state: 'running', startedGroups: 3, groups: last, rules, budget: 60 })).toEqual({
      do: 'wait',
    });
    last[2] = g({ completed: 30 });
    expect(decide({ state: 'running', startedGroups: 3, groups: last, rules, budget: 60 })).toEqual({
      do: 'finish',
    });
  });

  it('the rate: at most maxPerMinute in any minute, and a share of it per look', () => {
    expect(budgetNow(2, 3, 5)).toBe(1); // the minute's rest
    expect(budgetNow(0, 600, 10)).toBe(10); // this look's share
    expect(budgetNow(61, 60, 1)).toBe(0);
  });
});
