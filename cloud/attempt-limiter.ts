/**
 * Counts failed attempts per key (a source address) in a sliding window; pure, clock passed in.
 * Used to rate-limit enrollment code guesses.
 */
export class AttemptLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly maxFailures: number,
    private readonly windowMs: number,
  ) {}

  /** ms until the key may try again; 0 when it may try now. */
  retryAfterMs(key: string, nowMs: number): number {
    const recent = this.prune(key, nowMs);
    if (recent.length < this.maxFailures) return 0;
    return recent[0]! + this.windowMs - nowMs;
  }

  recordFailure(key: string, nowMs: number): void {
    const recent = this.prune(key, nowMs);
    recent.push(nowMs);
    this.failures.set(key, recent);
  }

  private prune(key: string, nowMs: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => nowMs - t < this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    else this.failures.set(key, list);
    return list;
  }
}
