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
  LogBundleRow,
  LogBundleStore,
  Page,
} from '../store-types.js';
import { type PgExec, pgStatements } from './pg-statements.js';

export class PgDeployments implements DeploymentStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('deployments', {
      ...DEPLOYMENT_SQL,
      // Every target in one statement (a fleet is thousands of rows).
      insertTargets: `INSERT INTO deployment_targets (deployment_id, terminal_id, group_index, state, updated_at)
        SELECT @deploymentId, t, g, 'queued', @updatedAt FROM unnest(@terminalIds::text[], @groupIndexes::int[]) AS x(t, g)`,
      // Two gateways ticking the same deployment: the second waits for the first's transaction.
      lock: `SELECT ${DEPLOYMENT_SQL.get.slice('SELECT '.length)} FOR UPDATE`,
    });
  }
  async insert(
    row: DeploymentRow,
    targets: readonly { terminalId: string; groupIndex: number }[],
  ): Promise<void> {
    await this.q.run(this.s.insert, { ...row, now: row.now ? 1 : 0 });
    await this.q.run(this.s.insertTargets, {
      deploymentId: row.id,
      terminalIds: targets.map((t) => t.terminalId),
      groupIndexes: targets.map((t) => t.groupIndex),
      updatedAt: row.createdAt,
    });
  }
  async get(id: string): Promise<DeploymentRow | undefined> {
    return fromRaw(await this.q.one<RawDeployment>(this.s.get, { id }));
  }
  async list(page: Page): Promise<DeploymentRow[]> {
    const before = page.after
      ? ((await this.q.one<{ seq: number }>(this.s.seqOf, { id: page.after }))?.seq ?? 0)
      : MAX_SEQ;
    return (await this.q.all<RawDeployment>(this.s.list, { beforeSeq: before, limit: page.limit })).map(
      (r) => fromRaw(r)!,
    );
  }
  async active(): Promise<DeploymentRow[]> {
    return (await this.q.all<RawDeployment>(this.s.active)).map((r) => fromRaw(r)!);
  }
  async lock(id: string): Promise<DeploymentRow | undefined> {
    return fromRaw(await this.q.one<RawDeployment>(this.s.lock, { id }));
  }
  async update(
    id: string,
    c: Pick<DeploymentRow, 'state' | 'reason' | 'startedGroups' | 'updatedAt'>,
  ): Promise<void> {
    await this.q.run(this.s.update, { id, ...c });
  }
  async counts(id: string): Promise<{ groupIndex: number; state: DeploymentTargetState; n: number }[]> {
    return await this.q.all(this.s.counts, { id });
  }
  async queued(id: string, groupsBelow: number, limit: number): Promise<DeploymentTargetRow[]> {
    return await this.q.all(this.s.queued, { id, groupsBelow, limit });
  }
  async askedSince(id: string, since: number): Promise<number> {
    return (await this.q.one<{ n: number }>(this.s.askedSince, { id, since }))?.n ?? 0;
  }
  async moveTarget(
    id: string,
    terminalId: string,
    from: DeploymentTargetState,
    change: Parameters<DeploymentStore['moveTarget']>[3],
    now: number,
  ): Promise<boolean> {
    return (await this.q.run(this.s.moveTarget, moveParams(id, terminalId, from, change, now))) === 1;
  }
  async skipQueued(id: string, reason: string, now: number): Promise<number> {
    return await this.q.run(this.s.skipQueued, { id, reason, now });
  }
  async stranded(id: string, before: number): Promise<DeploymentTargetRow[]> {
    return await this.q.all(this.s.stranded, { id, before });
  }
  async byAction(actionId: string): Promise<DeploymentTargetRow | undefined> {
    return await this.q.one(this.s.byAction, { actionId });
  }
  async targets(
    id: string,
    page: { after: { groupIndex: number; terminalId: string } | null; limit: number },
  ): Promise<DeploymentTargetRow[]> {
    return await this.q.all(this.s.targets, {
      id,
      afterGroup: page.after?.groupIndex ?? -1,
      afterTerminal: page.after?.terminalId ?? '',
      limit: page.limit,
    });
  }
}

export class PgLogBundles implements LogBundleStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('log_bundles', {
      ...LOG_BUNDLE_SQL,
      put: `INSERT INTO log_bundles (action_id, terminal_id, gzip, size, received_at)
        VALUES (@actionId, @terminalId, @gzip, @size, @receivedAt) ON CONFLICT (action_id) DO NOTHING`,
    });
  }
  async put(row: LogBundleRow): Promise<boolean> {
    return (await this.q.run(this.s.put, row)) === 1;
  }
  async get(actionId: string): Promise<LogBundleRow | undefined> {
    return await this.q.one(this.s.get, { actionId });
  }
}
