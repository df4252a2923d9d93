/**
 * How many new agent links the cloud admits per second — a token bucket, pure (the clock is
 * passed in). After a cloud restart the whole fleet comes back at once; the agents' full jitter
 * spreads their attempts, and this spreads what the cloud takes on: beyond the rate a link is
 * answered `503 cloud_busy` and the agent backs off and retries, instead of every handshake
 * slowing every other one down. The bucket holds a fifth of a second's worth (at least one): a
 * fleet back after a restart is taken at the rate from its first second, not at twice it (a full
 * second's burst on top of the rate was the storm's peak: issue 23).
 */
const BURST_SEC = 0.2;
export class LinkAdmission {
  private tokens: number;
  private last: number;
  private readonly burst: number;

  constructor(
    /** Links per second; 0 admits everything. */
    private readonly perSecond: number,
    now: number,
  ) {
    this.burst = Math.max(1, perSecond * BURST_SEC);
    this.tokens = this.burst;
    this.last = now;
  }

  /** Takes one token if there is one. */
  admit(now: number): boolean {
    if (this.perSecond <= 0) return true;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
