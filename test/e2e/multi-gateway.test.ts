import { cpSync, existsSync, readdirSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import pgClient from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TempPostgres } from '../../harness/postgres.js';
import {
  type Cloud,
  cli,
  enrollAgent,
  FAST_RECONNECT,
  getAction,
  httpsBinary,
  POSAGENT_CLOUD,
  type Proc,
  queueAction,
  start,
  startAgent,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * A TCP relay in front of one gateway, the test's load balancer: `to(port)` sends new connections
 * to another gateway (TLS passes through; the agent's certificate reaches the gateway).
 */
async function relay(port: number) {
  let target = port;
  const pairs = new Set<{ client: Socket; upstream: Socket; held: boolean }>();
  const server: Server = createServer((client) => {
    const pair = { client, upstream: connect(target, '127.0.0.1'), held: false };
    pairs.add(pair);
    client.pipe(pair.upstream).pipe(client);
    const drop = () => {
      client.destroy();
      // A held upstream stays open: the gateway behind it sees nothing until it is let go.
      if (!pair.held) {
        pairs.delete(pair);
        pair.upstream.destroy();
      }
    };
    client.on('error', drop).on('close', drop);
    pair.upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
    to(p: number) {
      target = p;
    },
    /** The agents' side of every connection is cut; the gateways' side is held open (a late close to come). */
    cutAgentsHoldGateways() {
      for (const p of pairs) {
        p.held = true;
        p.client.unpipe(p.upstream);
        p.upstream.unpipe(p.client);
        p.client.destroy();
      }
    },
    /** The held gateway sides close now. */
    letGo() {
      for (const p of [...pairs].filter((x) => x.held)) {
        pairs.delete(p);
        p.upstream.destroy();
      }
    },
    close: () => {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/**
 * Issue 22: the cloud on PostgreSQL, as several `posagent-cloud` processes. They share one
 * database and one set of secrets: the first gateway's data dir (CA key, admin token, ticket keys)
 * is copied for the others before they start (docs/operations.md, "Running the cloud on
 * PostgreSQL"). Real binaries, a real temp PostgreSQL cluster, real agents.
 */
describe('the cloud on PostgreSQL, several gateways', () => {
  let pg: TempPostgres;
  let database: string;
  const gateways: Cloud[] = [];
  const agents: Proc[] = [];
  let onA: Awaited<ReturnType<typeof enrollAgent>>;

  beforeAll(async () => {
    pg = await startPostgres();
    database = await pg.createDatabase('fleet');
    const first = await startCloud(['--database', database]);
    gateways.push(first);
    for (const _ of [1, 2]) {
      const dir = tempDir('cloud');
      cpSync(first.dataDir, dir, { recursive: true });
      gateways.push(await startCloud(['--database', database], dir));
    }
  }, 90_000);

  const relays: Awaited<ReturnType<typeof relay>>[] = [];
  afterAll(async () => {
    for (const a of agents) a.child.kill('SIGKILL');
    for (const r of relays) await r.close();
    for (const g of gateways) await g.stop();
    await pg?.stop();
  });

  it('--database takes a PostgreSQL URL only: anything else is a usage error (exit 2) and nothing is created', async () => {
    const dir = `${tempDir('cloud')}/never`;
    const p = start(POSAGENT_CLOUD, [
      'serve',
      '--data-dir',
      dir,
      '--database',
      'mysql://root@127.0.0.1/fleet',
    ]);
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toContain('--database must be a PostgreSQL URL');
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([]);
  });

  it('one store and one set of secrets: a terminal enrolled through A is seen, with the same admin token, on B and C', async () => {
    const [a, b, c] = gateways as [Cloud, Cloud, Cloud];
    expect(b.adminToken).toBe(a.adminToken);
    onA = await enrollAgent(a);
    for (const g of [b, c]) {
      const r = await g.api<{ id: string; name: string }>('GET', `/v1/terminals/${onA.terminalId}`);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ id: onA.terminalId, name: 'Front Register 1' });
    }
    // Bad input is refused the same way on every gateway and stores nothing.
    const bad = await b.api<{ error: { code: string } }>('POST', '/v1/locations', { name: '' });
    expect(bad.status).toBe(400);
    const list = await c.api<{ data: { name: string }[] }>('GET', '/v1/locations?limit=100');
    expect(list.body.data.map((l) => l.name)).not.toContain('');
  });

  it('an agent on a PostgreSQL gateway: online, a config push applied, an action completed', async () => {
    const a = gateways[0]!;
    agents.push(startAgent(onA.dirs));
    await waitForLink(onA.dirs);
    const r = await a.api<{ version: number }>('POST', `/v1/terminals/${onA.terminalId}/configure`, {
      display: { idleMessage: 'Hello from PostgreSQL' },
    });
    expect(r.status).toBe(200);
    await waitFor(async () => {
      const c = await a.api<{ appliedVersion: number | null; version: number }>(
        'GET',
        `/v1/terminals/${onA.terminalId}/config`,
      );
      return c.body.appliedVersion === c.body.version || undefined;
    }, 'the config applied');
    const lock = await queueAction(a, onA.terminalId, { type: 'lock' });
    await waitForAction(a, onA.terminalId, lock.id, (x) => x.status === 'completed', 'lock completed');
    const unlock = await queueAction(a, onA.terminalId, { type: 'unlock' });
    await waitForAction(a, onA.terminalId, unlock.id, (x) => x.status === 'completed', 'unlock completed');
    expect((await getAction(a, onA.terminalId, lock.id)).status).toBe('completed');
    const t = await a.api<{ status: string }>('GET', `/v1/terminals/${onA.terminalId}`);
    expect(t.body.status).toBe('online');
  });

  let onB: Awaited<ReturnType<typeof enrollAgent>>;
  let onC: Awaited<ReturnType<typeof enrollAgent>>;
  let relayB: Awaited<ReturnType<typeof relay>>;
  let relayC: Awaited<ReturnType<typeof relay>>;
  /** Which gateway the terminal's presence names, and the routed calls written, from the database. */
  const sql = async <T>(text: string, values: unknown[] = []): Promise<T[]> => {
    const client = new pgClient.Client({ connectionString: database });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as T[];
    } finally {
      await client.end();
    }
  };
  const linkOf = async (terminalId: string) =>
    (
      await sql<{ link_gateway: string | null }>('SELECT link_gateway FROM terminals WHERE id = $1', [
        terminalId,
      ])
    )[0]!.link_gateway;

  it('calls issued on A reach terminals on B and C: a config push, lock and unlock, diagnostics, check-connection', async () => {
    const [a, b, c] = gateways as [Cloud, Cloud, Cloud];
    onB = await enrollAgent(b);
    onC = await enrollAgent(c);
    relayB = await relay(b.port);
    relayC = await relay(c.port);
    relays.push(relayB, relayC);
    agents.push(startAgent(onB.dirs, [], { ...FAST_RECONNECT, POSAGENT_CLOUD_URL: relayB.url }));
    agents.push(startAgent(onC.dirs, [], { ...FAST_RECONNECT, POSAGENT_CLOUD_URL: relayC.url }));
    await waitForLink(onB.dirs);
    await waitForLink(onC.dirs);
    for (const t of [onB, onC]) {
      const view = await a.api<{ connected: boolean; status: string }>(
        'GET',
        `/v1/terminals/${t.terminalId}`,
      );
      expect(view.body).toMatchObject({ connected: true, status: 'online' });
      const r = await a.api('POST', `/v1/terminals/${t.terminalId}/configure`, {
        display: { idleMessage: `Pushed from A to ${t.terminalId}` },
      });
      expect(r.status).toBe(200);
      await waitFor(async () => {
        const cfg = await a.api<{ appliedVersion: number | null; version: number }>(
          'GET',
          `/v1/terminals/${t.terminalId}/config`,
        );
        return cfg.body.appliedVersion === cfg.body.version || undefined;
      }, `the config applied on ${t.terminalId}`);
      for (const type of ['lock', 'unlock']) {
        const q = await queueAction(a, t.terminalId, { type });
        await waitForAction(a, t.terminalId, q.id, (x) => x.status === 'completed', `${type} completed`);
      }
      const diag = await a.api<{ object: string }>('POST', `/v1/terminals/${t.terminalId}/diagnostics`);
      expect(diag.status).toBe(200);
      expect(diag.body.object).toBe('diagnostics_report');
      const check = await a.api<{ connected: boolean; rttMs: number }>(
        'POST',
        `/v1/terminals/${t.terminalId}/check-connection`,
        {},
      );
      expect(check.body).toMatchObject({ connected: true });
      expect(check.body.rttMs).toBeGreaterThanOrEqual(0);
      const routedAt = performance.now();
      await a.api('POST', `/v1/terminals/${t.terminalId}/check-connection`, {});
      const routedMs = performance.now() - routedAt;
      const localAt = performance.now();
      await (t === onB ? b : c).api('POST', `/v1/terminals/${t.terminalId}/check-connection`, {});
      console.log(
        `multi-gateway: check-connection on ${t === onB ? 'B' : 'C'}'s terminal: through A ${routedMs.toFixed(1)} ms, on its own gateway ${(performance.now() - localAt).toFixed(1)} ms`,
      );
    }
    // They went as rows for the gateways holding the links, each taken once.
    const kinds = await sql<{ kind: string; taken: boolean }>(
      'SELECT kind, taken_at IS NOT NULL AS taken FROM link_calls WHERE terminal_id = ANY($1)',
      [[onB.terminalId, onC.terminalId]],
    );
    expect(new Set(kinds.map((k) => k.kind))).toEqual(new Set(['config', 'actions', 'diagnostics', 'ping']));
    expect(kinds.every((k) => k.taken)).toBe(true);
    expect(await linkOf(onB.terminalId)).not.toBe(await linkOf(onC.terminalId));
    // What the balancer and Prometheus see: every gateway live and ready; A's routed calls by kind,
    // B's and C's doorbell lag; the DB pool. /metrics needs the admin token.
    for (const g of [a, b, c]) {
      expect((await g.api('GET', '/healthz', undefined, null)).body).toEqual({ status: 'ok' });
      expect(await g.api('GET', '/readyz', undefined, null)).toEqual({ status: 200, body: { ready: true } });
      expect((await g.api('GET', '/metrics', undefined, null)).status).toBe(401);
    }
    const metricsOf = async (g: Cloud) => (await httpsBinary(g, '/metrics')).body.toString('utf8');
    const onAMetrics = await metricsOf(a);
    expect(onAMetrics).toMatch(/^posagent_routed_calls_total\{kind="ping"\} \d+$/m);
    expect(onAMetrics).toMatch(/^posagent_routed_request_seconds_count\{kind="diagnostics"\} 2$/m);
    expect(onAMetrics).toMatch(/^posagent_db_pool_connections \d+$/m);
    expect(await metricsOf(b)).toMatch(/^posagent_doorbell_lag_seconds_count [1-9]\d*$/m);
    expect(await metricsOf(c)).toMatch(/^posagent_connected_terminals 1$/m);
    expect(onAMetrics).not.toContain(onB.terminalId);
    // Connected anywhere is what every gateway says.
    const listed = await c.api<{ uniqueTerminalIds: string[] }>('POST', '/v1/connectedTerminals', {});
    expect(listed.status).toBe(200);
    expect(listed.body.uniqueTerminalIds).toEqual(
      expect.arrayContaining([onA.terminalId, onB.terminalId, onC.terminalId]),
    );
    // A terminal with no link anywhere is "not connected", not "not answering".
    agents[0]!.child.kill('SIGKILL');
    await waitFor(async () => {
      const v = await a.api<{ connected: boolean }>('GET', `/v1/terminals/${onA.terminalId}`);
      return v.body.connected === false || undefined;
    }, 'the stopped terminal not connected');
    const none = await b.api<{ connected: boolean; linkOpen?: boolean; reason: string }>(
      'POST',
      `/v1/terminals/${onA.terminalId}/check-connection`,
      {},
    );
    expect(none.body.connected).toBe(false);
    expect(none.body.linkOpen).toBeUndefined();
    expect(none.body.reason).toContain('no link');
  });

  it('SIGKILL gateway B: its terminal reconnects through the balancer to C, and an action queued for it on A is delivered once', async () => {
    const [a, b, c] = gateways as [Cloud, Cloud, Cloud];
    b.proc.expectFatal = true;
    const killedAt = performance.now();
    b.proc.child.kill('SIGKILL');
    await b.proc.exited;
    relayB.to(c.port);
    // Queued on A while B's lease may still look alive: the row is durable, the doorbell to B is lost.
    const q = await queueAction(a, onB.terminalId, { type: 'lock' });
    await waitForLink(onB.dirs);
    const done = await waitForAction(
      a,
      onB.terminalId,
      q.id,
      (x) => x.status === 'completed',
      'lock completed on C',
    );
    expect(done.status).toBe('completed');
    console.log(
      `multi-gateway: SIGKILL of B → its terminal on C and the action queued on A completed in ${Math.round(performance.now() - killedAt)} ms`,
    );
    const view = await a.api<{ connected: boolean; status: string; locked: boolean }>(
      'GET',
      `/v1/terminals/${onB.terminalId}`,
    );
    expect(view.body).toMatchObject({ connected: true, status: 'online', locked: true });
    // The old socket's close never comes (B was killed); B's lease runs out and presence stays C's.
    const check = await a.api<{ connected: boolean }>(
      'POST',
      `/v1/terminals/${onB.terminalId}/check-connection`,
      {},
    );
    expect(check.body.connected).toBe(true);
  });

  it('a late close of an old socket does not mark the reconnected terminal offline', async () => {
    const [a, , c] = gateways as [Cloud, Cloud, Cloud];
    const before = await linkOf(onC.terminalId);
    expect(before).not.toBeNull();
    // The balancer moves the terminal to A; C's socket stays open, as a half-open link would.
    relayC.to(a.port);
    relayC.cutAgentsHoldGateways();
    const moved = await waitFor(async () => {
      const now = await linkOf(onC.terminalId);
      return now !== null && now !== before ? now : undefined;
    }, 'the terminal registered on A');
    await waitForLink(onC.dirs);
    // Now C sees its old socket close.
    const closes = () => c.proc.stderr().split('agent disconnected').length;
    const seen = closes();
    relayC.letGo();
    await waitFor(() => closes() > seen || undefined, 'C saw the old socket close');
    expect(await linkOf(onC.terminalId)).toBe(moved);
    const view = await a.api<{ connected: boolean; status: string }>(
      'GET',
      `/v1/terminals/${onC.terminalId}`,
    );
    expect(view.body).toMatchObject({ connected: true, status: 'online' });
    const check = await c.api<{ connected: boolean }>(
      'POST',
      `/v1/terminals/${onC.terminalId}/check-connection`,
      {},
    );
    expect(check.body.connected).toBe(true);
  });

  it('deactivate through C reaches the terminal, now on A: it is told, its link closes, and it says why', async () => {
    const [a, , c] = gateways as [Cloud, Cloud, Cloud];
    const onAGateway = await linkOf(onC.terminalId);
    expect(onAGateway).not.toBeNull();
    const r = await c.api<{ status: string }>('POST', `/v1/terminals/${onC.terminalId}/deactivate`, {
      reason: 'stolen',
    });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe('deactivated');
    const reason = await waitFor(async () => {
      const s = (await cli(['status', '--json', ...onC.dirs.flags])).json<{
        link: { state: string; reason?: string };
      }>();
      return s.link.state !== 'online' && /deactivated/.test(s.link.reason ?? '') ? s.link.reason : undefined;
    }, 'the deactivation in the agent status');
    expect(reason).toMatch(/deactivated/);
    expect(
      (await a.api<{ connected: boolean }>('GET', `/v1/terminals/${onC.terminalId}`)).body.connected,
    ).toBe(false);
    const routed = await sql<{ kind: string; gateway_id: string }>(
      "SELECT kind, gateway_id FROM link_calls WHERE terminal_id = $1 AND kind = 'deactivate'",
      [onC.terminalId],
    );
    expect(routed).toEqual([{ kind: 'deactivate', gateway_id: onAGateway }]);
  });
});
