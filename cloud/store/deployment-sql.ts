/**
 * Deployments and log bundles (issue 24): the statements both engines run (named parameters;
 * each engine's table classes prepare them their way). Booleans are 0/1 in both, as elsewhere.
 */
export const DEPLOYMENT_COLUMNS = `id, name, release_version AS releaseVersion, target, groups_spec AS groups, rules, state,
  reason, started_groups AS startedGroups, group_count AS groupCount, switch_now AS now, start_at AS startAt,
  created_at AS createdAt, updated_at AS updatedAt`;

const TARGET_COLUMNS = `deployment_id AS deploymentId, terminal_id AS terminalId, group_index AS groupIndex, state,
  action_id AS actionId, asked_at AS askedAt, reason, updated_at AS updatedAt`;

export const DEPLOYMENT_SQL = {
  insert: `INSERT INTO deployments (id, name, release_version, target, groups_spec, rules, state, reason, started_groups,
      group_count, switch_now, start_at, created_at, updated_at)
    VALUES (@id, @name, @releaseVersion, @target, @groups, @rules, @state, @reason, @startedGroups, @groupCount, @now,
      @startAt, @createdAt, @updatedAt)`,
  insertTarget: `INSERT INTO deployment_targets (deployment_id, terminal_id, group_index, state, updated_at)
    VALUES (@deploymentId, @terminalId, @groupIndex, 'queued', @updatedAt)`,
  get: `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE id = @id`,
  seqOf: 'SELECT seq FROM deployments WHERE id = @id',
  list: `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE seq < @beforeSeq ORDER BY seq DESC LIMIT @limit`,
  active: `SELECT ${DEPLOYMENT_COLUMNS} FROM deployments WHERE state IN ('scheduled', 'running', 'paused') ORDER BY seq`,
  update: `UPDATE deployments SET state = @state, reason = @reason, started_groups = @startedGroups, updated_at = @updatedAt
    WHERE id = @id`,
  counts: `SELECT group_index AS groupIndex, state, count(*) AS n FROM deployment_targets WHERE deployment_id = @id
    GROUP BY group_index, state ORDER BY group_index, state`,
  queued: `SELECT ${TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = @id AND state = 'queued'
    AND group_index < @groupsBelow ORDER BY group_index, terminal_id LIMIT @limit`,
  askedSince: `SELECT count(*) AS n FROM deployment_targets WHERE deployment_id = @id AND asked_at > @since`,
  moveTarget: `UPDATE deployment_targets SET state = @state,
      action_id = CASE WHEN @setAction = 1 THEN @actionId ELSE action_id END,
      asked_at = CASE WHEN @setAsked = 1 THEN @askedAt ELSE asked_at END,
      reason = CASE WHEN @setReason = 1 THEN @reason ELSE reason END, updated_at = @now
    WHERE deployment_id = @id AND terminal_id = @terminalId AND state = @from`,
  skipQueued: `UPDATE deployment_targets SET state = 'skipped', reason = @reason, updated_at = @now
    WHERE deployment_id = @id AND state = 'queued'`,
  stranded: `SELECT ${TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = @id AND state = 'processing'
    AND action_id IS NULL AND asked_at < @before`,
  byAction: `SELECT ${TARGET_COLUMNS} FROM deployment_targets WHERE action_id = @actionId`,
  targets: `SELECT ${TARGET_COLUMNS} FROM deployment_targets WHERE deployment_id = @id
    AND (group_index > @afterGroup OR (group_index = @afterGroup AND terminal_id > @afterTerminal))
    ORDER BY group_index, terminal_id LIMIT @limit`,
};

export const LOG_BUNDLE_SQL = {
  get: `SELECT action_id AS actionId, terminal_id AS terminalId, gzip, size, received_at AS receivedAt
    FROM log_bundles WHERE action_id = @actionId`,
};

/** What the store answers for the JSON-free booleans and the optional page positions. */
export type RawDeployment = Omit<import('./store-types.js').DeploymentRow, 'now'> & { now: number | boolean };
export const fromRaw = (
  r: RawDeployment | undefined,
): import('./store-types.js').DeploymentRow | undefined =>
  r ? { ...r, now: r.now === true || r.now === 1 } : undefined;

/** The parameters of moveTarget: which optional fields are set. */
export function moveParams(
  id: string,
  terminalId: string,
  from: string,
  change: { state: string; actionId?: string | null; askedAt?: number | null; reason?: string | null },
  now: number,
) {
  return {
    id,
    terminalId,
    from,
    state: change.state,
    setAction: change.actionId !== undefined ? 1 : 0,
    actionId: change.actionId ?? null,
    setAsked: change.askedAt !== undefined ? 1 : 0,
    askedAt: change.askedAt ?? null,
    setReason: change.reason !== undefined ? 1 : 0,
    reason: change.reason ?? null,
    now,
  };
}

export const MAX_SEQ = Number.MAX_SAFE_INTEGER;
