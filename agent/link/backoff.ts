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

/**
 * The retry after a link attempt ended: which attempt it is, its delay, and the failure count to
 * carry to the next one. A link that stayed up `stableAfterMs` resets the count *before* this
 * delay is drawn — after a link that was up for days, the first retry after a blip is drawn from
 * the attempt-0 range (0–1 s), never from the capped one (it once was: the reset came one
 * reconnect late).
 */
export function retryAfterLink(
  failedBefore: number,
  ended: { upForMs: number | null; cloudRestarted: boolean },
  p: BackoffPolicy,
  random: () => number,
): { attempt: number; delayMs: number; failed: number } {
  const attempt = ended.upForMs !== null && ended.upForMs >= p.stableAfterMs ? 0 : failedBefore;
  return {
    attempt,
    delayMs: reconnectDelay({ attempt, cloudRestarted: ended.cloudRestarted }, p, random),
    failed: attempt + 1,
  };
}
