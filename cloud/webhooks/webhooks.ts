import { createHmac, randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Type } from '@sinclair/typebox';
import { Refusal } from '../../protocol/refusal.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import type { ActionView } from '../actions/action-service.js';
import { parseBody } from '../body-validation.js';
import {
  DEPLOYMENT_WEBHOOKS,
  type DeploymentView,
  type DeploymentWebhook,
} from '../deployments/deployment-service.js';
import { newId } from '../fleet-ids.js';
import { checkCursor, type ListOf, listPage, pageOf } from '../list-page.js';
import { unixSeconds } from '../rest-time.js';
import type { CloudStore, WebhookDeliveryRow, WebhookEndpointRow } from '../store/store-types.js';
import { WebhookTargetRefused, type WebhookTargets } from './webhook-targets.js';

/**
 * Webhooks (VINR): endpoints subscribe to terminal events; every event is written to a durable
 * outbox in the transaction that caused it, then delivered with an HMAC-SHA256 signature over
 * `timestamp.body`, retried with exponential backoff, and each attempt's answer recorded.
 */
export const WEBHOOK_EVENTS = [
  'terminal.enrolled',
  'terminal.online',
  'terminal.needs_attention',
  'terminal.offline',
  'terminal.error',
  'terminal.deactivated',
  'terminal_action.completed',
  'terminal_action.failed',
  ...DEPLOYMENT_WEBHOOKS,
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];
/** Filters an endpoint may subscribe with: an event, or a category (VINR's `terminal.*`). */
export const WEBHOOK_FILTERS = [
  ...WEBHOOK_EVENTS,
  'terminal.*',
  'terminal_action.*',
  'deployment.*',
  '*',
] as const;

/** Whether an endpoint subscribed with `filters` gets `type`. */
export function subscribes(filters: readonly string[], type: string): boolean {
  return filters.some(
    (f) => f === type || f === '*' || (f.endsWith('.*') && type.startsWith(f.slice(0, -1))),
  );
}

/** A terminal's derived status changed (cloud/fleet/status-announcer.ts). */
export interface TerminalStatusChange {
  /** The terminal's id (VINR's \`data.id\`); \`terminalId\` says the same. */
  id: string;
  terminalId: string;
  name: string;
  locationId: string;
  status: string;
  previousStatus: string | null;
  /** Why (`certificate_expired`, `clock`, `no_heartbeat`, …), null when there is nothing to say. */
  statusReason: string | null;
  /** Unix seconds. */
  lastSeen: number | null;
}

/** Every webhook event's `data`, by type: a payload of the wrong shape does not compile. */
export type WebhookPayloads = {
  'terminal.enrolled': {
    id: string;
    terminalId: string;
    name: string;
    locationId: string;
    method: 'code' | 'auto' | 'pair';
    replaces: string | null;
  };
  'terminal.online': TerminalStatusChange;
  'terminal.needs_attention': TerminalStatusChange;
  'terminal.offline': TerminalStatusChange;
  'terminal.error': TerminalStatusChange;
  'terminal.deactivated': TerminalStatusChange;
  'terminal_action.completed': ActionView;
  'terminal_action.failed': ActionView;
} & { [K in DeploymentWebhook]: DeploymentView };

/** The header carrying `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`. */
export const SIGNATURE_HEADER = 'posagent-signature';

export function signWebhook(secret: string, timestamp: number, body: string): string {
  const mac = createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
  return `t=${timestamp},v1=${mac}`;
}

const EndpointCreate = Type.Object(
  {
    url: Type.String({ minLength: 1, maxLength: 2000, pattern: '^https?://' }),
    events: Type.Array(Type.Union(WEBHOOK_FILTERS.map((e) => Type.Literal(e))), {
      minItems: 1,
      uniqueItems: true,
    }),
  },
  { additionalProperties: false },
);
const endpointValidator = compileValidator(EndpointCreate);

export interface WebhookOptions {
  store: CloudStore;
  now(): number;
  /** First retry after this; doubles each attempt up to an hour. */
  retryBaseMs: number;
  maxAttempts: number;
  timeoutMs: number;
  /** Where webhooks may go (public addresses only, unless --allow-private-webhooks). */
  targets: WebhookTargets;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
}

function endpointView(row: WebhookEndpointRow, withSecret: boolean) {
  return {
    id: row.id,
    object: 'webhook_endpoint' as const,
    url: row.url,
    events: JSON.parse(row.events) as string[],
    createdAt: Math.floor(row.createdAt / 1000),
    ...(withSecret ? { secret: row.secret } : {}),
  };
}

function deliveryView(d: WebhookDeliveryRow) {
  return {
    eventId: d.eventId,
    type: d.type,
    attempts: d.attempts,
    status: d.deliveredAt !== null ? 'delivered' : d.failedAt !== null ? 'failed' : 'pending',
    lastResponse: d.lastStatus,
    lastError: d.lastError,
    nextAttemptAt: d.deliveredAt === null && d.failedAt === null ? unixSeconds(d.nextAttemptAt) : null,
  };
}

export class Webhooks {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(private readonly o: WebhookOptions) {}

  async createEndpoint(body: unknown) {
    const req = parseBody(endpointValidator, body);
    let url: URL;
    // A URL as it will be requested: no control characters or spaces (stored as given, they would
    // reach logs and the request line), no credentials in it (they would be stored and shown).
    if ([...req.url].some((c) => c.charCodeAt(0) <= 0x20 || c.charCodeAt(0) === 0x7f))
      throw new Refusal(
        'invalid_request',
        'url must not contain spaces or control characters (percent-encode them)',
      );
    try {
      url = new URL(req.url);
    } catch {
      throw new Refusal('invalid_request', `url ${req.url.slice(0, 200)} is not a URL`);
    }
    if (url.username !== '' || url.password !== '')
      throw new Refusal(
        'invalid_request',
        'url must not carry credentials (user:password@); the endpoint checks the Posagent-Signature instead',
      );
    try {
      await this.o.targets.check(url);
    } catch (err) {
      if (err instanceof WebhookTargetRefused) throw new Refusal('webhook_target_refused', err.message);
      throw err;
    }
    const row: WebhookEndpointRow = {
      id: newId('we'),
      url: req.url,
      events: JSON.stringify(req.events),
      secret: `whsec_${randomBytes(24).toString('base64url')}`,
      createdAt: this.o.now(),
    };
    await this.o.store.webhooks.insertEndpoint(row);
    return endpointView(row, true);
  }

  async listEndpoints(query: URLSearchParams): Promise<ListOf<ReturnType<typeof endpointView>>> {
    const page = pageOf(query);
    await checkCursor(page, async (id) => (await this.o.store.webhooks.getEndpoint(id)) !== undefined);
    return await listPage(
      page,
      async (p) => await this.o.store.webhooks.pageEndpoints(p),
      (r) => endpointView(r, false),
    );
  }

  /** \`DELETE /v1/webhook-endpoints/{id}\`: nothing more is sent to it; what was sent stays on record. */
  async deleteEndpoint(id: string): Promise<{ id: string; object: 'webhook_endpoint'; deleted: true }> {
    if (!(await this.o.store.webhooks.deleteEndpoint(id, this.o.now())))
      throw new Refusal('not_found', `no webhook endpoint ${id}`);
    return { id, object: 'webhook_endpoint', deleted: true };
  }

  async getEndpoint(id: string) {
    const row = await this.o.store.webhooks.getEndpoint(id);
    if (!row) throw new Refusal('not_found', `no webhook endpoint ${id}`);
    return {
      ...endpointView(row, false),
      deliveries: (await this.o.store.webhooks.deliveries(id)).map(deliveryView),
    };
  }

  /** Records an event for every subscribed endpoint. Call inside the transaction that caused it. */
  async emit<K extends WebhookEvent>(type: K, data: WebhookPayloads[K]): Promise<void> {
    const id = newId('evt');
    const now = this.o.now();
    const payload = JSON.stringify({ id, object: 'event', type, created: Math.floor(now / 1000), data });
    const subscribed = (await this.o.store.webhooks.listEndpoints())
      .filter((ep) => subscribes(JSON.parse(ep.events) as string[], type))
      .map((ep) => ep.id);
    await this.o.store.webhooks.insertEvent(id, type, payload, now, subscribed);
    setImmediate(() => this.kick());
  }

  start(): void {
    if (this.o.targets.allowPrivate)
      this.o.log.warn(
        {},
        'webhooks may be sent to loopback and private addresses (--allow-private-webhooks): for development only',
      );
    this.kick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Delivers what is due now, then sleeps until the next retry is due. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.deliverDue().finally(async () => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.kick();
        return;
      }
      await this.schedule();
    });
  }

  private async schedule(): Promise<void> {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const next = await this.o.store.webhooks.nextAttemptAt();
    if (next === null) return;
    this.timer = setTimeout(() => this.kick(), Math.max(0, next - this.o.now()));
    this.timer.unref();
  }

  private async deliverDue(): Promise<void> {
    for (;;) {
      const due = await this.o.store.webhooks.due(this.o.now(), 20);
      if (due.length === 0 || this.stopped) return;
      await Promise.all(due.map((d) => this.deliver(d)));
    }
  }

  private async deliver(d: WebhookDeliveryRow): Promise<void> {
    const timestamp = Math.floor(this.o.now() / 1000);
    let status: number | null = null;
    let error: string | null = null;
    try {
      status = await this.post(d, timestamp);
      if (status >= 300 && status < 400)
        error = `endpoint answered HTTP ${status}; redirects are not followed`;
      else if (status < 200 || status >= 300) error = `endpoint answered HTTP ${status}`;
    } catch (err) {
      error = (err as Error).message;
    }
    const delivered = error === null;
    const attempt = d.attempts + 1;
    const nextAttemptAt =
      delivered || attempt >= this.o.maxAttempts
        ? null
        : this.o.now() + Math.min(3_600_000, this.o.retryBaseMs * 2 ** (attempt - 1));
    const at = this.o.now();
    await this.o.store.webhooks.recordAttempt(d.eventSeq, d.endpointId, {
      status,
      error,
      deliveredAt: delivered ? at : null,
      // Not delivered and no next attempt: given up.
      failedAt: !delivered && nextAttemptAt === null ? at : null,
      nextAttemptAt,
    });
    if (!delivered)
      this.o.log.warn(
        { endpointId: d.endpointId, eventId: d.eventId, attempt, error },
        nextAttemptAt === null ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry',
      );
  }

  /**
   * One POST to the endpoint, to the addresses its name resolves to now and that the target
   * policy accepts (the connection goes to exactly those); redirects are not followed.
   */
  private async post(d: WebhookDeliveryRow, timestamp: number): Promise<number> {
    const url = new URL(d.url);
    const addresses = await this.o.targets.check(url);
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<number>((resolve, reject) => {
      const req = send(
        url,
        {
          method: 'POST',
          agent: false,
          lookup: this.o.targets.pinnedLookup(addresses),
          signal: AbortSignal.timeout(this.o.timeoutMs),
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(d.payload),
            [SIGNATURE_HEADER]: signWebhook(d.secret, timestamp, d.payload),
            'posagent-event-id': d.eventId,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(err.name === 'AbortError' ? new Error(`no answer within ${this.o.timeoutMs} ms`) : err),
      );
      req.end(d.payload);
    });
  }
}
