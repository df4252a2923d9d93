/**
 * The software update's steps (after OCPP's firmware states and Mender's commit/rollback), and
 * what a starting agent does with an update it finds in the store. Pure: every decision about a
 * power cut or a crash in the middle of an update is made here, from data, and tested here.
 *
 *   downloading → verifying → installing → waiting (busy lease) → switching → trial
 *     trial + Online within the health window          → committed  (completed)
 *     trial + window over, or the new version keeps crashing → rolling_back (failed) → rolled_back
 *   any step before switching fails                        → failed, the running version untouched
 *
 * Each step is written to the store *before* the work it names, so a start finds the step that
 * was under way and either resumes it (nothing switched yet) or finishes or undoes the switch.
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
  /** How often the new version has started during its trial, this start included. */
  trialStarts: number;
  maxTrialStarts: number;
  /** When the health window ends (ms since epoch), once the switch was made. */
  deadlineMs: number | null;
  nowMs: number;
}

export type StartDecision =
  /** Nothing switched yet: run the pipeline again (the download resumes; verification is always redone). */
  | { do: 'resume' }
  /** `current` points to the new version but the old one is running: restart into the new one. */
  | { do: 'restart' }
  /** The new version runs within its window: wait for Online, then commit. */
  | { do: 'trial'; remainingMs: number }
  /** Undo: report failed (first), point `current` back to the old version, restart. */
  | { do: 'rollback'; reason: string }
  /** The old version runs again after a rollback: note it, nothing else to do. */
  | { do: 'rolled_back' }
  /** Already final (committed or rolled back). */
  | { do: 'nothing' };

export function decideAtStart(f: UpdateFacts): StartDecision {
  if (f.step === 'committed' || f.step === 'rolled_back') return { do: 'nothing' };
  if (BEFORE_SWITCH.includes(f.step)) return { do: 'resume' };
  if (f.step === 'rolling_back') {
    if (f.running === f.from && f.linked === f.from) return { do: 'rolled_back' };
    return { do: 'rollback', reason: 'finishing an interrupted rollback' };
  }
  // switching or trial: the link may or may not have been switched before the power went.
  if (f.running === f.to) {
    if (f.trialStarts > f.maxTrialStarts)
      return {
        do: 'rollback',
        reason: `version ${f.to} restarted ${f.trialStarts - 1} times without reaching the cloud`,
      };
    const remainingMs = (f.deadlineMs ?? f.nowMs) - f.nowMs;
    if (remainingMs <= 0)
      return { do: 'rollback', reason: `version ${f.to} did not reach the cloud within its health window` };
    return { do: 'trial', remainingMs };
  }
  if (f.linked === f.to) return { do: 'restart' };
  if (f.step === 'switching') return { do: 'resume' };
  // In trial, yet the old version runs and the link points elsewhere: someone switched back by hand.
  return { do: 'rollback', reason: `version ${f.from} was started again during the trial of ${f.to}` };
}
