import type { AuditRow, AuditStore } from '../store/store-types.js';

/** Who did what to what, when, and how it went: every portal action lands here, refused ones too. */
export class AuditTrail {
  constructor(private readonly o: { audit: AuditStore; now(): number }) {}

  async record(
    operator: string,
    action: string,
    target: string | null,
    outcome: AuditRow['outcome'],
    detail: string | null = null,
  ): Promise<void> {
    await this.o.audit.record({
      at: Math.floor(this.o.now() / 1000),
      operator,
      action,
      target,
      outcome,
      detail: detail === null ? null : detail.slice(0, 500),
    });
  }

  async forTarget(target: string, limit = 50): Promise<AuditRow[]> {
    return await this.o.audit.forTarget(target, limit);
  }

  async recent(limit = 100): Promise<AuditRow[]> {
    return await this.o.audit.recent(limit);
  }
}
