import type { EnrollmentLimitStore } from '../store/store-types.js';

/**
 * How much guessing unauthenticated enrollment tolerates. Every failed attempt is recorded with
 * its method and source (in the store: a restart forgets nothing). A method is refused
 * (`429 rate_limited`, with `Retry-After`) for a source that failed it `perSource` times within
 * the window, and for everyone once it failed `global` times within the window across all
 * sources — a distributed guess is bounded too. Each method has its own budgets: failures of one
 * never refuse another (a pre-registered device retrying cannot lock its store out of codes).
 *
 * Methods: `code` (enrollment and replacement codes, typed or scanned), `auto` (zero-touch),
 * `pair` (pairing polls and activation codes).
 */
export type EnrollMethod = 'code' | 'auto' | 'pair';

export interface BudgetLimits {
  perSource: number;
  global: number;
  windowMs: number;
}

export type BudgetVerdict = { ok: true } | { ok: false; scope: 'source' | 'global'; retryAfterMs: number };

/** Also the portal's sign-in budget (methods of its own: cloud/portal/operator-accounts.ts). */
export class EnrollmentBudget<M extends string = EnrollMethod> {
  constructor(
    private readonly table: Pick<EnrollmentLimitStore, 'recordFailure' | 'failures' | 'nthFailureAt'>,
    private readonly limits: BudgetLimits,
  ) {}

  /** May `source` try `method` now? */
  async check(method: M, source: string, now: number): Promise<BudgetVerdict> {
    const since = now - this.limits.windowMs;
    const global = await this.over(method, null, this.limits.global, since, now);
    if (global !== null) return { ok: false, scope: 'global', retryAfterMs: global };
    const mine = await this.over(method, source, this.limits.perSource, since, now);
    if (mine !== null) return { ok: false, scope: 'source', retryAfterMs: mine };
    return { ok: true };
  }

  async fail(method: M, source: string, now: number): Promise<void> {
    await this.table.recordFailure(method, source, now);
  }

  /** null when under `max`; else ms until the oldest failure that keeps it at `max` leaves the window. */
  private async over(
    method: string,
    source: string | null,
    max: number,
    since: number,
    now: number,
  ): Promise<number | null> {
    if (max <= 0) return null;
    const n = await this.table.failures(method, source, since);
    if (n < max) return null;
    const at = (await this.table.nthFailureAt(method, source, since, n - max)) ?? now;
    return Math.max(1000, at + this.limits.windowMs - now);
  }
}
