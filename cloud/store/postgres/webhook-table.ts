import type {
  Page,
  WebhookAttempt,
  WebhookDeliveryRow,
  WebhookEndpointRow,
  WebhookStore,
} from '../store-types.js';
import { type PgExec, pgStatements } from './pg-statements.js';

const ENDPOINT_COLUMNS = 'id, url, events, secret, created_at AS createdAt';
const DELIVERY_COLUMNS = `d.event_seq AS eventSeq, e.id AS eventId, e.type, e.payload, e.created_at AS createdAt,
  d.endpoint_id AS endpointId, w.url, w.secret, d.attempts, d.next_attempt_at AS nextAttemptAt,
  d.delivered_at AS deliveredAt, d.failed_at AS failedAt, d.last_status AS lastStatus, d.last_error AS lastError`;
const DELIVERIES = `webhook_deliveries d JOIN webhook_events e ON e.seq = d.event_seq
  JOIN webhook_endpoints w ON w.id = d.endpoint_id`;

/** Endpoints, and the outbox: events and one delivery per subscribed endpoint. */
export class PgWebhooks implements WebhookStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('webhooks', {
      insertEndpoint: `INSERT INTO webhook_endpoints (id, url, events, secret, created_at)
        VALUES (@id, @url, @events, @secret, @createdAt)`,
      getEndpoint: `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = @id AND deleted_at IS NULL`,
      listEndpoints: `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE deleted_at IS NULL ORDER BY seq`,
      pageEndpoints: `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE deleted_at IS NULL
        AND (@after IS NULL OR seq > (SELECT seq FROM webhook_endpoints WHERE id = @after)) ORDER BY seq LIMIT @limit`,
      deleteEndpoint: 'UPDATE webhook_endpoints SET deleted_at = @at WHERE id = @id AND deleted_at IS NULL',
      dropPending: `UPDATE webhook_deliveries SET failed_at = @at, last_error = 'endpoint deleted'
        WHERE endpoint_id = @id AND delivered_at IS NULL AND failed_at IS NULL`,
      insertEvent: `INSERT INTO webhook_events (id, type, payload, created_at) VALUES (@id, @type, @payload, @now)
        RETURNING seq`,
      insertDelivery: `INSERT INTO webhook_deliveries (event_seq, endpoint_id, next_attempt_at)
        VALUES (@seq, @endpointId, @now)`,
      due: `SELECT ${DELIVERY_COLUMNS} FROM ${DELIVERIES}
        WHERE d.delivered_at IS NULL AND d.failed_at IS NULL AND d.next_attempt_at <= @now
        ORDER BY d.event_seq LIMIT @limit`,
      next: `SELECT MIN(next_attempt_at) AS at FROM webhook_deliveries
        WHERE delivered_at IS NULL AND failed_at IS NULL`,
      attempt: `UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = @status, last_error = @error,
        delivered_at = @deliveredAt, failed_at = @failedAt, next_attempt_at = COALESCE(@nextAttemptAt, next_attempt_at)
        WHERE event_seq = @eventSeq AND endpoint_id = @endpointId`,
      deliveries: `SELECT ${DELIVERY_COLUMNS} FROM ${DELIVERIES} WHERE d.endpoint_id = @endpointId ORDER BY d.event_seq`,
    });
  }
  async insertEndpoint(row: WebhookEndpointRow): Promise<void> {
    await this.q.run(this.s.insertEndpoint, row);
  }
  async getEndpoint(id: string): Promise<WebhookEndpointRow | undefined> {
    return (await this.q.one(this.s.getEndpoint, { id })) as WebhookEndpointRow | undefined;
  }
  async pageEndpoints(page: Page): Promise<WebhookEndpointRow[]> {
    return (await this.q.all(this.s.pageEndpoints, page)) as WebhookEndpointRow[];
  }
  async deleteEndpoint(id: string, at: number): Promise<boolean> {
    if ((await this.q.run(this.s.deleteEndpoint, { id, at })) !== 1) return false;
    await this.q.run(this.s.dropPending, { id, at });
    return true;
  }
  async listEndpoints(): Promise<WebhookEndpointRow[]> {
    return (await this.q.all(this.s.listEndpoints)) as WebhookEndpointRow[];
  }
  async insertEvent(
    id: string,
    type: string,
    payload: string,
    now: number,
    endpointIds: readonly string[],
  ): Promise<void> {
    const { seq } = (await this.q.one(this.s.insertEvent, { id, type, payload, now })) as { seq: number };
    for (const endpointId of endpointIds) await this.q.run(this.s.insertDelivery, { seq, endpointId, now });
  }
  async due(now: number, limit: number): Promise<WebhookDeliveryRow[]> {
    return (await this.q.all(this.s.due, { now, limit })) as WebhookDeliveryRow[];
  }
  async nextAttemptAt(): Promise<number | null> {
    return ((await this.q.one(this.s.next)) as { at: number | null }).at;
  }
  async recordAttempt(eventSeq: number, endpointId: string, attempt: WebhookAttempt): Promise<void> {
    await this.q.run(this.s.attempt, { eventSeq, endpointId, ...attempt });
  }
  async deliveries(endpointId: string): Promise<WebhookDeliveryRow[]> {
    return (await this.q.all(this.s.deliveries, { endpointId })) as WebhookDeliveryRow[];
  }
}
