import type { TrialState } from './layout.js';

/**
 * The boot guard's decision before each start of the service — pure, so every case is a test.
 * It runs as root outside the release (systemd ExecStartPre=+), so a release that cannot start,
 * or that never reaches the cloud, is rolled back without its help.
 *
 *   no trial                                        → start as is
 *   trial, `current` no longer the release on trial → forget the trial (rolled back or switched by hand)
 *   trial, the agent committed it                   → forget the trial: it proved itself
 *   trial, starts so far ≥ maxStarts                → roll back (it keeps failing to start)
 *   trial, health window over (it opens at the first start) → roll back (it never reached the cloud)
 *   otherwise                                       → count this start, start it
 */
export type GuardDecision =
  | { do: 'start' }
  | { do: 'forget'; why: string }
  | { do: 'count'; starts: number; deadline: number }
  | { do: 'rollback'; reason: string };

export interface GuardFacts {
  trial: TrialState | null;
  /** The release `current` points to. */
  linked: string | null;
  /** The version the agent marked committed, if any. */
  committed: { actionId: string; version: string } | null;
  nowMs: number;
}

export function decideGuard(f: GuardFacts): GuardDecision {
  const t = f.trial;
  if (!t) return { do: 'start' };
  if (f.linked !== t.to) return { do: 'forget', why: `current is ${f.linked ?? 'unset'}, not ${t.to}` };
  if (f.committed && f.committed.actionId === t.actionId && f.committed.version === t.to)
    return { do: 'forget', why: `${t.to} was committed` };
  const exit = t.lastExit ? ` (last start ended: ${t.lastExit})` : '';
  if (t.starts >= t.maxStarts)
    return {
      do: 'rollback',
      reason: `version ${t.to} failed to start: ${t.starts} starts without reaching the cloud${exit}; the boot guard rolled back to ${t.from}`,
    };
  if (t.deadline !== null && f.nowMs > t.deadline)
    return {
      do: 'rollback',
      reason: `version ${t.to} did not reach the cloud within its health window${exit}; the boot guard rolled back to ${t.from}`,
    };
  // The window opens at the first start, not at the switch: a terminal switched off right after
  // the switch still gives the new release its full window.
  return { do: 'count', starts: t.starts + 1, deadline: t.deadline ?? f.nowMs + t.healthWindowMs };
}
