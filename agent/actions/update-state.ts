/**
 * The software update's steps (after OCPP's firmware states and Mender's commit/rollback), and
 * what a starting agent does with an update it finds in the store. Pure: every decision about a
 * power cut or a crash in the middle of an update is made here, from data, and tested here.
 *
 *   downloading → verifying → installing (the privileged installer stages it) → waiting (busy
 *   lease) → switching (the installer switches `current`) → trial
 *     trial + Online within the health window                     → committed (completed)
 *     trial fails (it cannot start, or never reaches the cloud)    → the boot guard rolls back
 *       → the previous version starts and reports it              → rolled_back (failed)
 *       the guard refuses (the previous version cannot open the migrated store)
 *       → the new version stays and reports it                    → rollback_refused (failed)
 *   any step before switching fails                               → failed, the running version untouched
 *
 * The agent cannot write the release tree: rolling back is the boot guard's (release/
 * guard-decision.ts), which runs as root before every start, outside the release on trial. The
 * agent's part after a switch is to commit, or — when its window is over — to end so that the
 * guard decides. Each step is written to the store before the work it names; the moves between
 * steps are the table in agent/actions/update-steps.ts, which the action store enforces.
 */
export const UPDATE_STEPS = [
  'downloading',
  'verifying',
  'installing',
  'waiting',
  'switching',
  'trial',
  'committed',
  'rolling_back',
  'rolled_back',
  'rollback_refused',
] as const;
export type UpdateStep = (typeof UPDATE_STEPS)[number];

/** Steps before the `current` link is touched: the running version is the only one in use. */
const BEFORE_SWITCH: readonly (UpdateStep | null)[] = [
  null,
  'downloading',
  'verifying',
  'installing',
  'waiting',
];

export interface UpdateFacts {
  step: UpdateStep | null;
  /** The version this process runs. */
  running: string;
  /** The version the update started from, and the one it installs. */
  from: string;
  to: string;
  /** The release `current` points to now (null when there is no link). */
  linked: string | null;
  /** The boot guard rolled this update back, and why (its note in the state dir), or null. */
  guardReason: string | null;
  /** The boot guard refused that rollback (the previous version could not open the store): this version stays. */
  guardKept?: boolean;
  /** When the trial's health window ends, as the boot guard set it at the first start (ms), or null. */
  deadlineMs: number | null;
  /** The window from now, when no guard set a deadline. */
  healthWindowMs: number;
  nowMs: number;
}

export type StartDecision =
  /** Nothing switched yet: run the pipeline again (the download resumes; verification is always redone). */
  | { do: 'resume' }
  /** `current` points to the new version but the old one is running: restart into the new one. */
  | { do: 'restart' }
  /** The new version runs within its window: wait for Online, then commit. */
  | { do: 'trial'; remainingMs: number }
  /** The new version's window is over: end, so that the boot guard rolls it back. */
  | { do: 'end_trial'; reason: string }
  /** The guard refused to roll back: this (new) version stays; report the update failed with the guard's reason. */
  | { do: 'report_kept'; reason: string }
  /** The previous version runs again: report the update failed with this reason. */
  | { do: 'report_failed'; reason: string }
  /** Already final (committed or rolled back). */
  | { do: 'nothing' };

export function decideAtStart(f: UpdateFacts): StartDecision {
  if (f.step === 'committed' || f.step === 'rolled_back' || f.step === 'rollback_refused')
    return { do: 'nothing' };
  if (BEFORE_SWITCH.includes(f.step)) return { do: 'resume' };
  if (f.guardReason !== null && f.running === f.from) return { do: 'report_failed', reason: f.guardReason };
  if (f.guardReason !== null && f.guardKept === true && f.running === f.to)
    return { do: 'report_kept', reason: f.guardReason };
  if (f.running === f.to) {
    const remainingMs = (f.deadlineMs ?? f.nowMs + f.healthWindowMs) - f.nowMs;
    if (remainingMs <= 0)
      return { do: 'end_trial', reason: `version ${f.to} did not reach the cloud within its health window` };
    return { do: 'trial', remainingMs };
  }
  if (f.linked === f.to) return { do: 'restart' };
  // switching: the installer never switched (the power went first): do it again.
  if (f.step === 'switching') return { do: 'resume' };
  if (f.step === 'rolling_back')
    return { do: 'report_failed', reason: `the update to ${f.to} was rolled back` };
  // In trial, yet the old version runs from the link and the guard left no note: switched back by hand.
  return { do: 'report_failed', reason: `version ${f.from} was started again during the trial of ${f.to}` };
}
