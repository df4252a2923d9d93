import type { ConfigStatus, TerminalConfigRow } from '../store/store-types.js';

/**
 * A terminal's config rollout, the one state machine of `terminal_configs.status`:
 *
 *   (none) ──desired──▶ pending ──applied──▶ applied
 *                          │   ◀──desired──  (any)
 *                          └────rejected──▶ rejected
 *
 * A new desired config (a new version) makes it pending whatever it was; the terminal's answer
 * about the version it was sent (`ConfigApplied`) moves it to applied or rejected. An answer about
 * another version — one pushed before the latest — changes only what the terminal says it runs.
 */
export type RolloutEvent = 'desired' | 'applied' | 'rejected';

export const ROLLOUT: Readonly<Record<ConfigStatus, Readonly<Record<RolloutEvent, ConfigStatus>>>> = {
  pending: { desired: 'pending', applied: 'applied', rejected: 'rejected' },
  applied: { desired: 'pending', applied: 'applied', rejected: 'rejected' },
  rejected: { desired: 'pending', applied: 'applied', rejected: 'rejected' },
};

/** A new desired config: its own version, pending, no errors; what the terminal runs stays. */
export function withDesired(
  row: TerminalConfigRow | undefined,
  terminalId: string,
  next: { overrides: string; desired: string; version: number },
  now: number,
): TerminalConfigRow {
  return {
    terminalId,
    ...next,
    appliedVersion: row?.appliedVersion ?? null,
    status: row ? ROLLOUT[row.status].desired : 'pending',
    errors: null,
    updatedAt: now,
  };
}

export interface ConfigAnswer {
  version: number;
  status: 'applied' | 'rejected';
  /** JSON text of the reasons, for a rejection. */
  errors: string | null;
  appliedVersion: number | null;
}

/** The terminal's answer to a push; undefined when the terminal has no config row to answer about. */
export function withAnswer(
  row: TerminalConfigRow | undefined,
  answer: ConfigAnswer,
  now: number,
): TerminalConfigRow | undefined {
  if (!row) return undefined;
  if (answer.version !== row.version)
    return { ...row, appliedVersion: answer.appliedVersion, updatedAt: now };
  return {
    ...row,
    status: ROLLOUT[row.status][answer.status],
    errors: answer.errors,
    appliedVersion: answer.appliedVersion,
    updatedAt: now,
  };
}
