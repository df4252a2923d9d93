import type Database from 'better-sqlite3';

/**
 * SQL for what bounds unauthenticated enrollment, in the cloud's store so that a restart resets
 * nothing: failed attempts per method and source (the budgets of cloud/enrollment-budget.ts),
 * the source of each pairing (its rate), and the indexes the expiry sweep uses.
 */
export const ENROLLMENT_LIMITS_MIGRATION = `
  CREATE TABLE enrollment_failures (
    method TEXT NOT NULL,
    source TEXT NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX enrollment_failures_by_method ON enrollment_failures(method, at);
  CREATE INDEX enrollment_failures_by_source ON enrollment_failures(method, source, at);
  ALTER TABLE pairings ADD COLUMN source TEXT;
  CREATE INDEX pairings_by_source ON pairings(source, created_at);
  CREATE INDEX pairings_by_expiry ON pairings(expires_at);
  CREATE INDEX enrollment_codes_unused_by_expiry ON enrollment_codes(expires_at) WHERE used_at IS NULL;
`;

export class EnrollmentLimitsTable {
  private readonly st;

  constructor(db: Database.Database) {
    this.st = {
      record: db.prepare('INSERT INTO enrollment_failures (method, source, at) VALUES (?, ?, ?)'),
      countAll: db.prepare('SELECT COUNT(*) AS n FROM enrollment_failures WHERE method = ? AND at > ?'),
      countSource: db.prepare(
        'SELECT COUNT(*) AS n FROM enrollment_failures WHERE method = ? AND source = ? AND at > ?',
      ),
      nthAll: db.prepare(
        'SELECT at FROM enrollment_failures WHERE method = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?',
      ),
      nthSource: db.prepare(
        'SELECT at FROM enrollment_failures WHERE method = ? AND source = ? AND at > ? ORDER BY at LIMIT 1 OFFSET ?',
      ),
      pruneFailures: db.prepare('DELETE FROM enrollment_failures WHERE at <= ?'),
      pairingsFrom: db.prepare('SELECT COUNT(*) AS n FROM pairings WHERE source = ? AND created_at > ?'),
      pendingPairings: db.prepare(
        'SELECT COUNT(*) AS n FROM pairings WHERE activated_at IS NULL AND expires_at > ?',
      ),
      nthPairingFrom: db.prepare(
        'SELECT created_at AS at FROM pairings WHERE source = ? AND created_at > ? ORDER BY created_at LIMIT 1 OFFSET ?',
      ),
      prunePairings: db.prepare('DELETE FROM pairings WHERE expires_at <= ?'),
      pruneCodes: db.prepare('DELETE FROM enrollment_codes WHERE used_at IS NULL AND expires_at <= ?'),
    };
  }

  recordFailure(method: string, source: string, at: number): void {
    this.st.record.run(method, source, at);
  }

  /** Failures of `method` after `since`, from `source` (or from everywhere when null). */
  failures(method: string, source: string | null, since: number): number {
    const r =
      source === null ? this.st.countAll.get(method, since) : this.st.countSource.get(method, source, since);
    return (r as { n: number }).n;
  }

  /** When the `n`-th (0-based) failure after `since` happened. */
  nthFailureAt(method: string, source: string | null, since: number, n: number): number | null {
    const r =
      source === null
        ? this.st.nthAll.get(method, since, n)
        : this.st.nthSource.get(method, source, since, n);
    return (r as { at: number } | undefined)?.at ?? null;
  }

  pairingsStartedFrom(source: string, since: number): number {
    return (this.st.pairingsFrom.get(source, since) as { n: number }).n;
  }

  nthPairingFromAt(source: string, since: number, n: number): number | null {
    return (this.st.nthPairingFrom.get(source, since, n) as { at: number } | undefined)?.at ?? null;
  }

  pendingPairings(now: number): number {
    return (this.st.pendingPairings.get(now) as { n: number }).n;
  }

  /** Deletes failures older than `failuresBefore`, pairings expired before `pairingsBefore`, unused codes expired before `codesBefore`. */
  prune(failuresBefore: number, pairingsBefore: number, codesBefore: number) {
    return {
      failures: this.st.pruneFailures.run(failuresBefore).changes,
      pairings: this.st.prunePairings.run(pairingsBefore).changes,
      codes: this.st.pruneCodes.run(codesBefore).changes,
    };
  }
}
