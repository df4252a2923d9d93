import pg from 'pg';
import { GATEWAY_SQL, LINK_CALL_SQL } from '../presence-sql.js';
import type { Doorbell, GatewayStore, LinkCallRow, LinkCallStore } from '../store-types.js';
import type { TransactionScopes } from '../transaction-scope.js';
import { type PgExec, pgStatements } from './pg-statements.js';

/** The advisory lock the leading gateway holds on its own connection. */
export const LEADER_LOCK = 22_0002;

export class PgGateways implements GatewayStore {
  private readonly s;
  private leader: pg.Client | undefined;
  private asking: Promise<boolean> | undefined;
  constructor(
    private readonly q: PgExec,
    private readonly url: string,
  ) {
    this.s = pgStatements('gateways', GATEWAY_SQL);
  }
  lead(): Promise<boolean> {
    if (this.leader) return Promise.resolve(true);
    this.asking ??= (async () => {
      const c = new pg.Client({ connectionString: this.url });
      c.on('error', () => {
        if (this.leader === c) this.leader = undefined;
      });
      await c.connect();
      const { rows } = await c.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [LEADER_LOCK]);
      if (rows[0]?.ok) {
        this.leader = c;
        return true;
      }
      await c.end();
      return false;
    })()
      .catch(() => false)
      .finally(() => {
        this.asking = undefined;
      });
    return this.asking;
  }
  /** Gives the lead up (the lock goes with the connection). */
  async close(): Promise<void> {
    await this.leader?.end().catch(() => undefined);
    this.leader = undefined;
  }
  async renewLease(gatewayId: string, until: number): Promise<void> {
    await this.q.run(this.s.renewLease, { gatewayId, until });
  }
  async live(now: number): Promise<string[]> {
    return (await this.q.all<{ gatewayId: string }>(this.s.live, { now })).map((r) => r.gatewayId);
  }
  async expire(now: number): Promise<number> {
    const n = await this.q.run(this.s.clearDead, { now });
    await this.q.run(this.s.dropDead, { now });
    return n;
  }
  async nextLinkVersion(): Promise<number> {
    return (await this.q.one<{ value: number }>(this.s.nextLinkVersion))!.value;
  }
  async connectedIds(now: number): Promise<string[]> {
    return (await this.q.all<{ id: string }>(this.s.connectedIds, { now })).map((r) => r.id);
  }
}

export class PgLinkCalls implements LinkCallStore {
  private readonly s;
  constructor(private readonly q: PgExec) {
    this.s = pgStatements('linkcalls', LINK_CALL_SQL);
  }
  async insert(row: Omit<LinkCallRow, 'answer'>): Promise<void> {
    await this.q.run(this.s.insert, row);
  }
  async take(gatewayId: string, now: number, limit: number): Promise<LinkCallRow[]> {
    const rows = await this.q.all<LinkCallRow>(this.s.take, { gatewayId, now, limit });
    return rows.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
  async answer(id: string, answer: string): Promise<void> {
    await this.q.run(this.s.answer, { id, answer });
  }
  async get(id: string): Promise<LinkCallRow | undefined> {
    return await this.q.one<LinkCallRow>(this.s.get, { id });
  }
  async prune(before: number): Promise<number> {
    return await this.q.run(this.s.prune, { before });
  }
}

const CHANNEL = 'posagent_doorbell';

/**
 * The doorbell over PostgreSQL's LISTEN/NOTIFY: one channel, the payload names the gateway rung.
 * The listening connection is its own (not the pool's); if it drops, rings are lost until it is
 * back, and the gateways' sweeps make up for them.
 */
export class PgDoorbell implements Doorbell {
  private client: pg.Client | undefined;
  private readonly listeners = new Map<string, ((message: string) => void)[]>();
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly url: string,
    private readonly scopes: TransactionScopes<pg.PoolClient>,
  ) {}

  /** Rung inside a transaction, the ring goes out when it commits (NOTIFY is transactional): never before its rows. */
  async ring(gatewayId: string, message: string): Promise<void> {
    const on = this.scopes.current()?.conn ?? this.pool;
    await on.query('SELECT pg_notify($1, $2)', [CHANNEL, `${gatewayId}\n${message}`]);
  }

  async listen(gatewayId: string, onRing: (message: string) => void): Promise<void> {
    this.listeners.set(gatewayId, [...(this.listeners.get(gatewayId) ?? []), onRing]);
    if (!this.client) await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    client.on('notification', (n) => {
      const payload = n.payload ?? '';
      const cut = payload.indexOf('\n');
      const to = payload.slice(0, cut);
      for (const l of this.listeners.get(to) ?? []) l(payload.slice(cut + 1));
    });
    client.on('error', () => {
      this.client = undefined;
      if (!this.closed) setTimeout(() => void this.connect().catch(() => undefined), 1000).unref();
    });
    await client.connect();
    await client.query(`LISTEN ${CHANNEL}`);
    this.client = client;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.client?.end().catch(() => undefined);
  }
}
