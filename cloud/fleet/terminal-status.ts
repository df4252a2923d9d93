/**
 * How the cloud derives a terminal's status — pure, from its record and the clock.
 *
 * - `deactivated`: deactivated by an operator; nothing else matters.
 * - `error`: something keeps it from working that a reconnect will not fix (PeakPOS "Error:
 *   certificate, time sync, or auth failure"), with a `reason` — see `problemOf`.
 * - `provisioning`: enrolled but never heard from.
 * - `offline`: no heartbeat for `offlineAfterMs`, or the agent said goodbye (closed its link on purpose).
 * - `needs_attention`: no heartbeat for `atRiskAfterMs` (the PeakPOS "at risk" threshold).
 * - `online`: heard from recently.
 *
 * An abrupt drop (no close frame) keeps the heartbeat-derived status: Wi-Fi blips are common and a
 * status that flaps on every blip makes alerts worthless. `connected` tells the live link apart.
 */
export type TerminalStatus =
  | 'online'
  | 'needs_attention'
  | 'offline'
  | 'provisioning'
  | 'error'
  | 'deactivated';

export const TERMINAL_STATUSES: readonly TerminalStatus[] = [
  'online',
  'needs_attention',
  'offline',
  'provisioning',
  'error',
  'deactivated',
];

/**
 * Why a terminal is in `error`:
 * - `certificate_expired`: its certificate's notAfter has passed (the cloud refuses it);
 * - `certificate_revoked`, `certificate_superseded`, `certificate_not_yet_valid`, `auth`: the
 *   cloud refused its link for that (recorded when it was refused, cleared by an accepted Hello);
 * - `renewal_failing`: the cloud refused the agent's last renewal (`RenewCertificate`), cleared by
 *   the next accepted Hello;
 * - `clock`: the device's clock is off from the cloud's by more than `clockToleranceMs`;
 * - `certificate_expiring`: its certificate expires within `expiringWithinMs` — the agent renews
 *   it well before, so renewal is failing.
 */
export type StatusReason =
  | 'certificate_expired'
  | 'certificate_revoked'
  | 'certificate_superseded'
  | 'certificate_not_yet_valid'
  | 'auth'
  | 'clock'
  | 'certificate_expiring'
  | 'renewal_failing'
  | 'deactivated'
  | 'no_heartbeat'
  | 'link_closed'
  | 'heartbeat';

export interface StatusInputs {
  deactivated: boolean;
  /** ms since epoch of the last frame from the terminal; null if never. */
  lastSeenMs: number | null;
  connected: boolean;
  /** The last link ended with the agent's own close frame. */
  closedCleanly: boolean;
  certNotAfterMs: number;
  /** What the cloud recorded (a refused link, a revocation); null when nothing. */
  problem: string | null;
  /** Device clock minus the cloud's at the last Hello or heartbeat. */
  clockSkewMs: number | null;
}

export interface StatusThresholds {
  atRiskAfterMs: number;
  offlineAfterMs: number;
  /** A device clock off by more than this is an error (default 5 min). */
  clockToleranceMs?: number;
  /** A certificate this close to expiry is an error (renewal is failing); 0 never. */
  expiringWithinMs?: number;
}

export const DEFAULT_CLOCK_TOLERANCE_MS = 5 * 60_000;

/** The problem that puts a terminal in `error`, or null. */
export function problemOf(t: StatusInputs, nowMs: number, th: StatusThresholds): StatusReason | null {
  if (nowMs >= t.certNotAfterMs) return 'certificate_expired';
  if (t.problem !== null) return t.problem as StatusReason;
  if (t.clockSkewMs !== null && Math.abs(t.clockSkewMs) > (th.clockToleranceMs ?? DEFAULT_CLOCK_TOLERANCE_MS))
    return 'clock';
  const expiring = th.expiringWithinMs ?? 0;
  if (expiring > 0 && t.certNotAfterMs - nowMs <= expiring) return 'certificate_expiring';
  return null;
}

export function deriveTerminalStatus(t: StatusInputs, nowMs: number, th: StatusThresholds): TerminalStatus {
  return statusWithReason(t, nowMs, th).status;
}

/** The status, why, and since when when the clock alone made it (a threshold crossed). */
export function statusWithReason(
  t: StatusInputs,
  nowMs: number,
  th: StatusThresholds,
): { status: TerminalStatus; reason: StatusReason | null; sinceMs: number | null } {
  if (t.deactivated) return { status: 'deactivated', reason: 'deactivated', sinceMs: null };
  const problem = problemOf(t, nowMs, th);
  if (problem !== null)
    return {
      status: 'error',
      reason: problem,
      // Since its current certificate's end when that is what expired; a refused link that
      // presented another (an old copy) is dated when it was refused.
      sinceMs: problem === 'certificate_expired' && nowMs >= t.certNotAfterMs ? t.certNotAfterMs : null,
    };
  if (t.lastSeenMs === null) return { status: 'provisioning', reason: null, sinceMs: null };
  if (!t.connected && t.closedCleanly) return { status: 'offline', reason: 'link_closed', sinceMs: null };
  const age = nowMs - t.lastSeenMs;
  if (age >= th.offlineAfterMs)
    return { status: 'offline', reason: 'no_heartbeat', sinceMs: t.lastSeenMs + th.offlineAfterMs };
  if (age >= th.atRiskAfterMs)
    return { status: 'needs_attention', reason: 'no_heartbeat', sinceMs: t.lastSeenMs + th.atRiskAfterMs };
  return { status: 'online', reason: 'heartbeat', sinceMs: null };
}
