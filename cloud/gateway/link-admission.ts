/**
 * How many new agent links the cloud admits per second — a token bucket, pure (the clock is
 * passed in). After a cloud restart the whole fleet comes back at once; the agents' full jitter
 * spreads their attempts, and this spreads what the cloud takes on: beyond the rate a link is
 * answered `503 cloud_busy` and the agent backs off and retries, instead of every handshake
 * slowing every other one down.
 */
export class LinkAdmission {
  private tokens: number;
  private last: number;

  constructor(
    /** Links per second; 0 admits everything. */
    private readonly perSecond: number,
    now: number,
  ) {
    this.tokens = perSecond;
    this.last = now;
  }

  /** Takes one token if there is one. */
  admit(now: number): boolean {
    if (this.perSecond <= 0) return true;
    this.tokens = Math.min(this.perSecond, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
