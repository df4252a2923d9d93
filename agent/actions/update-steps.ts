import type { UpdateStep } from './update-state.js';

/**
 * The software update's forward steps as a table, like agent/link/link-state.ts: from each step
 * (or from none, a new update), the steps it may move to. The action store refuses any other move
 * of an update's step, so the order below is the order the cloud hears.
 *
 *   none → downloading → verifying → installing → (waiting)* → switching → trial → committed
 *   before the switch, a restart resumes the pipeline from the start (→ downloading); a version
 *   that already runs completes at once (→ committed); after the switch, a rollback by the boot
 *   guard ends it (→ rolled_back), or its refusal to roll back (→ rollback_refused: the previous
 *   release could not open the migrated store). committed, rolled_back and rollback_refused are final.
 */
export const UPDATE_STEP_TRANSITIONS: Readonly<Record<UpdateStep | 'none', readonly UpdateStep[]>> = {
  none: ['downloading', 'committed'],
  downloading: ['downloading', 'verifying', 'committed'],
  verifying: ['installing', 'downloading', 'committed'],
  installing: ['waiting', 'switching', 'downloading', 'committed'],
  waiting: ['waiting', 'switching', 'downloading', 'committed'],
  switching: ['trial', 'rolled_back', 'rollback_refused', 'downloading', 'committed'],
  trial: ['trial', 'committed', 'rolled_back', 'rollback_refused'],
  rolling_back: ['trial', 'rolled_back'],
  committed: [],
  rolled_back: [],
  rollback_refused: [],
};

/** True when an update at step `from` (null: none yet) may move to step `to`. */
export function canTakeUpdateStep(from: string | null, to: string): boolean {
  const key = from ?? 'none';
  const allowed = Object.hasOwn(UPDATE_STEP_TRANSITIONS, key)
    ? UPDATE_STEP_TRANSITIONS[key as UpdateStep | 'none']
    : undefined;
  return allowed?.includes(to as UpdateStep) ?? false;
}
