import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { UPDATE_STEPS, type UpdateStep } from '../../../agent/actions/update-state.js';
import { canTakeUpdateStep, UPDATE_STEP_TRANSITIONS } from '../../../agent/actions/update-steps.js';
import { AgentStore } from '../../../agent/agent-store.js';
import { tempDir } from '../../support/processes.js';

const AT = '2026-11-23T10:00:00.000Z';
const FROM: (UpdateStep | 'none')[] = ['none', ...UPDATE_STEPS];
const update = (id: string) => ({
  actionId: id,
  type: 'update' as const,
  params: { release: { version: '1.2.0', sha256: 'a'.repeat(64), size: 1024, signature: 'c2ln' } },
  expiresAt: '2099-01-01T00:00:00.000Z',
});

const allowed: [UpdateStep | 'none', UpdateStep][] = [
  ['none', 'downloading'],
  ['none', 'committed'],
  ['downloading', 'downloading'],
  ['downloading', 'verifying'],
  ['downloading', 'committed'],
  ['verifying', 'installing'],
  ['verifying', 'downloading'],
  ['verifying', 'committed'],
  ['installing', 'waiting'],
  ['installing', 'switching'],
  ['installing', 'downloading'],
  ['installing', 'committed'],
  ['waiting', 'waiting'],
  ['waiting', 'switching'],
  ['waiting', 'downloading'],
  ['waiting', 'committed'],
  ['switching', 'trial'],
  ['switching', 'rolled_back'],
  ['switching', 'rollback_refused'],
  ['switching', 'downloading'],
  ['switching', 'committed'],
  ['trial', 'trial'],
  ['trial', 'committed'],
  ['trial', 'rolled_back'],
  ['trial', 'rollback_refused'],
  ['rolling_back', 'trial'],
  ['rolling_back', 'rolled_back'],
];
const isAllowed = (from: string, to: string) => allowed.some(([a, b]) => a === from && b === to);
const forbidden = FROM.flatMap((from) =>
  UPDATE_STEPS.filter((to) => !isAllowed(from, to)).map(
    (to) => [from, to] as [UpdateStep | 'none', UpdateStep],
  ),
);

/** Issue 19.7: the software update's forward steps, a table with a test per transition, on a real store. */
describe('update steps', () => {
  let dir: string;
  let store: AgentStore;
  beforeEach(() => {
    dir = tempDir('update-steps');
    store = new AgentStore(join(dir, 'agent.db'));
  });
  afterEach(() => store.close());

  /** An update action whose stored step is `step` (written directly: the table is what is under test). */
  const updateAt = (step: UpdateStep | 'none') => {
    const id = `act_${step}`;
    store.actions.receive(update(id), AT);
    if (step !== 'none') {
      const db = new Database(join(dir, 'agent.db'));
      db.prepare('UPDATE actions SET step = ? WHERE id = ?').run(step, id);
      db.close();
    }
    return id;
  };

  it('the table is the list above, and every step has a row', () => {
    const listed = Object.entries(UPDATE_STEP_TRANSITIONS).flatMap(([from, tos]) =>
      tos.map((to) => [from, to]),
    );
    expect(listed.sort()).toEqual([...allowed].sort());
    expect(Object.keys(UPDATE_STEP_TRANSITIONS).sort()).toEqual([...FROM].sort());
    expect(canTakeUpdateStep('committed', 'downloading')).toBe(false);
    expect(canTakeUpdateStep('no_such_step', 'downloading')).toBe(false);
    expect(canTakeUpdateStep(null, 'downloading')).toBe(true);
  });

  it.each(allowed)('%s → %s is taken and recorded', (from, to) => {
    const id = updateAt(from);
    expect(store.actions.progress(id, { step: to }, AT).step).toBe(to);
    expect(store.actions.get(id)?.step).toBe(to);
  });

  it.each(forbidden)('%s → %s is refused; nothing changes', (from, to) => {
    const id = updateAt(from);
    const before = store.actions.get(id);
    expect(() => store.actions.progress(id, { step: to }, AT)).toThrow(/cannot move from step/);
    expect(() => store.actions.note(id, { step: to }, AT)).toThrow(/cannot move from step/);
    expect(store.actions.get(id)).toEqual(before);
  });

  it('another action type keeps its own steps (a reboot waits, reboots, is rebooted)', () => {
    store.actions.receive(
      { actionId: 'act_reboot', type: 'reboot', params: {}, expiresAt: '2099-01-01T00:00:00.000Z' },
      AT,
    );
    for (const step of ['waiting', 'rebooting', 'rebooted'])
      expect(store.actions.progress('act_reboot', { step }, AT).step).toBe(step);
  });
});
