/**
 * How the cloud derives a terminal's status — pure, from its record and the clock.
 *
 * - `deactivated`: deactivated by an operator; nothing else matters.
 * - `provisioning`: enrolled but never heard from.
 * - `offline`: no heartbeat for `offlineAfterMs`, or the agent said goodbye (closed its link on purpose).
 * - `needs_attention`: no heartbeat for `atRiskAfterMs` (the PeakPOS "at risk" threshold).
 * - `online`: heard from recently.
 *
 * An abrupt drop (no close frame) keeps the heartbeat-derived status: Wi-Fi blips are common and a
 * status that flaps on every blip makes alerts worthless. `connected` tells the live link apart.
 */
export type TerminalStatus = 'online' | 'needs_attention' | 'offline' | 'provisioning' | 'deactivated';

export interface StatusInputs {
  deactivated: boolean;
  /** ms since epoch of the last frame from the terminal; null if never. */
  lastSeenMs: number | null;
  connected: boolean;
  /** The last link ended with the agent's own close frame. */
  closedCleanly: boolean;
}

export interface StatusThresholds {
  atRiskAfterMs: number;
  offlineAfterMs: number;
}

export function deriveTerminalStatus(t: StatusInputs, nowMs: number, th: StatusThresholds): TerminalStatus {
  if (t.deactivated) return 'deactivated';
  if (t.lastSeenMs === null) return 'provisioning';
  if (!t.connected && t.closedCleanly) return 'offline';
  const age = nowMs - t.lastSeenMs;
  if (age >= th.offlineAfterMs) return 'offline';
  if (age >= th.atRiskAfterMs) return 'needs_attention';
  return 'online';
}
