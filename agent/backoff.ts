/**
 * Reconnect delays — pure. Full jitter: delay = random(0, min(cap, base · 2ⁿ)); the jitter
 * applies at the cap too, so a fleet that lost the cloud together never retries in lock-step.
 */
export interface BackoffPolicy {
  baseMs: number;
  capMs: number;
  /** First retry after the cloud closed on purpose (restart) is spread over random(0, this). */
  restartSpreadMs: number;
  /** A link up at least this long resets the attempt count. */
  stableAfterMs: number;
}

export function fullJitterDelay(attempt: number, p: BackoffPolicy, random: () => number): number {
  const ceiling = Math.min(p.capMs, p.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

export interface ReconnectContext {
  /** Failed attempts since the last stable link. */
  attempt: number;
  /** The last link ended with the cloud's own restart close (1012 / 1001). */
  cloudRestarted: boolean;
}

export function reconnectDelay(ctx: ReconnectContext, p: BackoffPolicy, random: () => number): number {
  if (ctx.cloudRestarted && ctx.attempt === 0) return Math.floor(random() * p.restartSpreadMs);
  return fullJitterDelay(ctx.attempt, p, random);
}

/** Attempt count after a link ended: reset to 0 only if it stayed up long enough. */
export function attemptAfterLink(attempt: number, upForMs: number | null, p: BackoffPolicy): number {
  if (upForMs !== null && upForMs >= p.stableAfterMs) return 0;
  return attempt + 1;
}
