/**
 * Reconnect delays — pure. Full jitter: delay = random(0, min(cap, base · 2ⁿ)); the jitter
 * applies at the cap too, so a fleet that lost the cloud together never retries in lock-step.
 * A link's retry window is also never longer than the outage so far (at least base): a fleet
 * that lost its cloud for 5 s comes back within seconds of its return, instead of sitting in
 * the 32–64 s windows its refused attempts (ECONNREFUSED, 503 cloud_busy) reached meanwhile;
 * over a long outage the exponential windows, up to the cap, apply as before.
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
  /** How long the link has been down (since the last stable link ended, or since the first attempt); none: no bound. */
  downForMs?: number;
}

export function reconnectDelay(ctx: ReconnectContext, p: BackoffPolicy, random: () => number): number {
  if (ctx.cloudRestarted && ctx.attempt === 0) return Math.floor(random() * p.restartSpreadMs);
  if (ctx.downForMs === undefined) return fullJitterDelay(ctx.attempt, p, random);
  const ceiling = Math.min(
    p.capMs,
    p.baseMs * 2 ** Math.min(ctx.attempt, 30),
    Math.max(p.baseMs, ctx.downForMs),
  );
  return Math.floor(random() * ceiling);
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
  ended: { upForMs: number | null; cloudRestarted: boolean; downForMs?: number },
  p: BackoffPolicy,
  random: () => number,
): { attempt: number; delayMs: number; failed: number } {
  const attempt = stableLink(ended, p) ? 0 : failedBefore;
  return {
    attempt,
    delayMs: reconnectDelay(
      {
        attempt,
        cloudRestarted: ended.cloudRestarted,
        ...(ended.downForMs === undefined ? {} : { downForMs: ended.downForMs }),
      },
      p,
      random,
    ),
    failed: attempt + 1,
  };
}

/** The link that just ended stayed up long enough to reset the backoff (and to start a new outage). */
export function stableLink(ended: { upForMs: number | null }, p: BackoffPolicy): boolean {
  return ended.upForMs !== null && ended.upForMs >= p.stableAfterMs;
}
