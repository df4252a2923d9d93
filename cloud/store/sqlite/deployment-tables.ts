import {
  DEPLOYMENT_SQL,
  fromRaw,
  LOG_BUNDLE_SQL,
  MAX_SEQ,
  moveParams,
  type RawDeployment,
} from '../deployment-sql.js';
import type {
  DeploymentRow,
  DeploymentStore,
  DeploymentTargetRow,
  DeploymentTargetState,
  Immediate,
  LogBundleRow,
  LogBundleStore,
  Page,
} from '../store-types.js';
import { bit, type Db, prepareAll } from './statements.js';

export class SqliteDeployments implements Immediate<DeploymentStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, DEPLOYMENT_SQL);
  }
  insert(row: DeploymentRow, targets: readonly { terminalId: string; groupIndex: number }[]): void {
    this.s.insert.run({ ...row, now: bit(row.now) });
    for (const t of targets)
      this.s.insertTarget.run({
        deploymentId: row.id,
        terminalId: t.terminalId,
        groupIndex: t.groupIndex,
        updatedAt: row.createdAt,
      });
  }
  get(id: string): DeploymentRow | undefined {
    return fromRaw(this.s.get.get({ id }) as RawDeployment | undefined);
  }
  list(page: Page): DeploymentRow[] {
    const before = page.after
      ? ((this.s.seqOf.get({ id: page.after }) as { seq: number } | undefined)?.seq ?? 0)
      : MAX_SEQ;
    return (this.s.list.all({ beforeSeq: before, limit: page.limit }) as RawDeployment[]).map(
      (r) => fromRaw(r)!,
    );
  }
  active(): DeploymentRow[] {
    return (this.s.active.all() as RawDeployment[]).map((r) => fromRaw(r)!);
  }
  lock(id: string): DeploymentRow | undefined {
    return this.get(id); // one writer at a time already (the store's lock)
  }
  update(id: string, c: Pick<DeploymentRow, 'state' | 'reason' | 'startedGroups' | 'updatedAt'>): void {
    this.s.update.run({ id, ...c });
  }
  counts(id: string): { groupIndex: number; state: DeploymentTargetState; n: number }[] {
    return this.s.counts.all({ id }) as { groupIndex: number; state: DeploymentTargetState; n: number }[];
  }
  queued(id: string, groupsBelow: number, limit: number): DeploymentTargetRow[] {
    return this.s.queued.all({ id, groupsBelow, limit }) as DeploymentTargetRow[];
  }
  askedSince(id: string, since: number): number {
    return (this.s.askedSince.get({ id, since }) as { n: number }).n;
  }
  moveTarget(
    id: string,
    terminalId: string,
    from: DeploymentTargetState,
    change: Parameters<DeploymentStore['moveTarget']>[3],
    now: number,
  ): boolean {
    return this.s.moveTarget.run(moveParams(id, terminalId, from, change, now)).changes === 1;
  }
  skipQueued(id: string, reason: string, now: number): number {
    return this.s.skipQueued.run({ id, reason, now }).changes;
  }
  stranded(id: string, before: number): DeploymentTargetRow[] {
    return this.s.stranded.all({ id, before }) as DeploymentTargetRow[];
  }
  byAction(actionId: string): DeploymentTargetRow | undefined {
    return this.s.byAction.get({ actionId }) as DeploymentTargetRow | undefined;
  }
  targets(
    id: string,
    page: { after: { groupIndex: number; terminalId: string } | null; limit: number },
  ): DeploymentTargetRow[] {
    return this.s.targets.all({
      id,
      afterGroup: page.after?.groupIndex ?? -1,
      afterTerminal: page.after?.terminalId ?? '',
      limit: page.limit,
    }) as DeploymentTargetRow[];
  }
}

export class SqliteLogBundles implements Immediate<LogBundleStore> {
  private readonly s;
  constructor(db: Db) {
    this.s = prepareAll(db, {
      ...LOG_BUNDLE_SQL,
      put: `INSERT OR IGNORE INTO log_bundles (action_id, terminal_id, gzip, size, received_at)
        VALUES (@actionId, @terminalId, @gzip, @size, @receivedAt)`,
    });
  }
  put(row: LogBundleRow): boolean {
    return this.s.put.run(row).changes === 1;
  }
  get(actionId: string): LogBundleRow | undefined {
    return this.s.get.get({ actionId }) as LogBundleRow | undefined;
  }
}
