/**
 * A deployment's state machine (issue 24), after hawkBit's rollouts and AWS IoT Jobs:
 *
 *   scheduled ──start──▶ running ──advance──▶ running (the next group)
 *       │                  │ ├──finish──▶ completed        (every group done)
 *       │                  │ ├──stop────▶ stopped          (stopWhen reached: no new actions)
 *       │                  │ └──pause───▶ paused ──resume──▶ running
 *       └──cancel──▶ cancelled ◀──cancel── running | paused
 *
 * completed, stopped and cancelled are final. Only `running` creates update actions; actions
 * already created go on to their end in every state (a terminal mid-update is never cut off).
 */
export const DEPLOYMENT_STATES = [
  'scheduled',
  'running',
  'paused',
  'completed',
  'stopped',
  'cancelled',
] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];
export type DeploymentEvent = 'start' | 'advance' | 'finish' | 'stop' | 'pause' | 'resume' | 'cancel';

export const DEPLOYMENT_TRANSITIONS: Readonly<
  Record<DeploymentState, Partial<Record<DeploymentEvent, DeploymentState>>>
> = {
  scheduled: { start: 'running', cancel: 'cancelled' },
  running: { advance: 'running', finish: 'completed', stop: 'stopped', pause: 'paused', cancel: 'cancelled' },
  paused: { resume: 'running', cancel: 'cancelled' },
  completed: {},
  stopped: {},
  cancelled: {},
};

export function isFinalDeployment(s: DeploymentState): boolean {
  return s === 'completed' || s === 'stopped' || s === 'cancelled';
}

/** The next state, or null when the event does not apply (the caller answers 409 with both names). */
export function nextDeploymentState(state: DeploymentState, event: DeploymentEvent): DeploymentState | null {
  return DEPLOYMENT_TRANSITIONS[state][event] ?? null;
}

/**
 * One terminal in a deployment: queued (its group has not reached it, or the rate holds it) →
 * processing (its update action was created) → completed | failed (the action's end); skipped when
 * it could not be asked (deactivated, already on the release) or the deployment ended before its turn.
 */
export const TARGET_STATES = ['queued', 'processing', 'completed', 'failed', 'skipped'] as const;
export type TargetState = (typeof TARGET_STATES)[number];

export const TARGET_TRANSITIONS: Readonly<Record<TargetState, readonly TargetState[]>> = {
  queued: ['processing', 'skipped'],
  processing: ['completed', 'failed'],
  completed: [],
  failed: [],
  skipped: [],
};

export function canMoveTarget(from: TargetState, to: TargetState): boolean {
  return TARGET_TRANSITIONS[from].includes(to);
}
