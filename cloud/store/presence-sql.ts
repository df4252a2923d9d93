/**
 * Presence and routed calls: the same statements in both engines (named parameters; each engine's
 * table classes prepare them their way).
 */
export const LINK_SQL = {
  registerLink: `UPDATE terminals SET link_gateway = @gatewayId, link_version = @version
    WHERE id = @id AND (link_version IS NULL OR link_version < @version)`,
  releaseLink: `UPDATE terminals SET link_gateway = NULL
    WHERE id = @id AND link_version = @version AND link_gateway IS NOT NULL`,
};

export const GATEWAY_SQL = {
  renewLease: `INSERT INTO gateway_leases (gateway_id, lease_until) VALUES (@gatewayId, @until)
    ON CONFLICT (gateway_id) DO UPDATE SET lease_until = excluded.lease_until`,
  live: 'SELECT gateway_id AS gatewayId FROM gateway_leases WHERE lease_until > @now ORDER BY gateway_id',
  clearDead: `UPDATE terminals SET link_gateway = NULL WHERE link_gateway IS NOT NULL
    AND link_gateway NOT IN (SELECT gateway_id FROM gateway_leases WHERE lease_until > @now)`,
  dropDead: 'DELETE FROM gateway_leases WHERE lease_until <= @now',
  nextLinkVersion: "UPDATE counters SET value = value + 1 WHERE name = 'link_version' RETURNING value",
  connectedIds: `SELECT t.id FROM terminals t JOIN gateway_leases g ON g.gateway_id = t.link_gateway
    WHERE g.lease_until > @now ORDER BY t.seq`,
};

const CALL_COLUMNS = `id, terminal_id AS terminalId, gateway_id AS gatewayId, kind, payload,
  from_gateway AS fromGateway, created_at AS createdAt, expires_at AS expiresAt, answer`;

export const LINK_CALL_SQL = {
  insert: `INSERT INTO link_calls (id, terminal_id, gateway_id, kind, payload, from_gateway, created_at, expires_at)
    VALUES (@id, @terminalId, @gatewayId, @kind, @payload, @fromGateway, @createdAt, @expiresAt)`,
  take: `UPDATE link_calls SET taken_at = @now WHERE id IN (SELECT id FROM link_calls
    WHERE gateway_id = @gatewayId AND taken_at IS NULL AND expires_at > @now ORDER BY created_at, id LIMIT @limit)
    RETURNING ${CALL_COLUMNS}`,
  answer: 'UPDATE link_calls SET answer = @answer WHERE id = @id',
  get: `SELECT ${CALL_COLUMNS} FROM link_calls WHERE id = @id`,
  prune: 'DELETE FROM link_calls WHERE expires_at < @before',
};
