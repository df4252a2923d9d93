import { createHash } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { request } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import pgClient from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TempPostgres } from '../../harness/postgres.js';
import {
  installRelease,
  newReleaseKey,
  packRelease,
  publishRelease,
  type ReleaseKey,
  signRelease,
  superviseAgent,
} from '../../harness/releases.js';
import { readClientTls, readIdentity } from '../../identity/identity-store.js';
import { type FakeReboot, fakeReboot } from '../support/fake-reboot.js';
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

/** `GET /v1/agent/releases/{version}/artifact` from one gateway, as the terminal whose state dir is given. */
async function downloadRelease(
  gateway: Cloud,
  stateDir: string,
  version: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const tls = await readClientTls((await readIdentity(stateDir))!);
  return new Promise((resolve, reject) => {
    const req = request(
      new URL(`/v1/agent/releases/${version}/artifact`, gateway.url),
      { ...tls, agent: false, headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** How many times the agent's own log says it received `actionId` for the first time (pino JSON lines). */
function receipts(agent: Proc, actionId: string): number {
  return `${agent.output()}\n${agent.stderr()}`
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { msg?: string; actionId?: string })
    .filter((l) => l.msg === 'action received' && l.actionId === actionId).length;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

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
  let releaseKey: ReleaseKey;
  /** The device's journal, as `collect_logs` reads it (POSAGENT_LOGS_COMMAND): a few pino lines. */
  const journal = join(tempDir('journal'), 'journal.txt');
  writeFileSync(
    journal,
    `${[
      { level: 30, msg: 'link online' },
      { level: 30, msg: 'sale 1 recorded' },
      { level: 40, msg: 'printer paper low' },
    ]
      .map((l) => JSON.stringify(l))
      .join('\n')}\n`,
  );

  beforeAll(async () => {
    pg = await startPostgres();
    database = await pg.createDatabase('fleet');
    releaseKey = await newReleaseKey();
    const flags = ['--database', database, '--release-public-key', releaseKey.publicKeyFile];
    const first = await startCloud(flags);
    gateways.push(first);
    for (const _ of [1, 2]) {
      const dir = tempDir('cloud');
      cpSync(first.dataDir, dir, { recursive: true });
      gateways.push(await startCloud(flags, dir));
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
  /** Per terminal on B and C: its fake reboot command, and the agent process running now. */
  const devices = new Map<string, FakeReboot>();
  const running = new Map<string, Proc>();
  /** Starts (or, after a "reboot", starts again) the agent of a terminal on B or C, behind its relay. */
  const runAgent = (t: Awaited<ReturnType<typeof enrollAgent>>, relayUrl: string): Proc => {
    if (!devices.has(t.terminalId)) devices.set(t.terminalId, fakeReboot());
    const p = startAgent(t.dirs, devices.get(t.terminalId)!.flags, {
      ...FAST_RECONNECT,
      POSAGENT_CLOUD_URL: relayUrl,
      POSAGENT_LOGS_COMMAND: `cat ${journal}`,
      POSAGENT_RELEASE_KEY_FILE: releaseKey.publicKeyFile,
    });
    agents.push(p);
    running.set(t.terminalId, p);
    return p;
  };
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
    runAgent(onB, relayB.url);
    runAgent(onC, relayC.url);
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

  it('every action type issued on A reaches the terminals on B and C: reboot (killed, new boot id, completed) and collect_logs (the bundle read through any gateway)', async () => {
    const [a, b, c] = gateways as [Cloud, Cloud, Cloud];
    for (const [t, relayUrl] of [
      [onB, relayB.url],
      [onC, relayC.url],
    ] as const) {
      const device = devices.get(t.terminalId)!;
      const reboot = await queueAction(a, t.terminalId, { type: 'reboot' });
      await waitFor(() => device.calls().length === 1 || undefined, `the reboot command on ${t.terminalId}`);
      expect(device.calls()[0]).toMatch(/^reboot boot-1 /);
      await waitForAction(a, t.terminalId, reboot.id, (x) => x.step === 'rebooting', 'the rebooting step');
      // The "reboot": the process dies, the boot id changes, the agent starts again behind its relay.
      const before = running.get(t.terminalId)!;
      before.child.kill('SIGKILL');
      await before.exited;
      device.newBoot('boot-2');
      runAgent(t, relayUrl);
      const rebooted = await waitForAction(
        a,
        t.terminalId,
        reboot.id,
        (x) => x.status === 'completed',
        'the reboot completed',
      );
      expect(rebooted.step).toBe('rebooted');
      expect(device.calls()).toHaveLength(1);
      expect(receipts(before, reboot.id)).toBe(1);

      const until = new Date().toISOString();
      const since = new Date(Date.parse(until) - 3_600_000).toISOString();
      const logs = await queueAction(a, t.terminalId, { type: 'collect_logs', params: { since, until } });
      const done = await waitForAction(
        a,
        t.terminalId,
        logs.id,
        (x) => x.status === 'completed',
        'the logs uploaded',
      );
      expect(done.logs).toBe(`/v1/terminals/${t.terminalId}/actions/${logs.id}/logs`);
      // The bundle is in the shared store: the same bytes through A, B and C.
      const bundles = await Promise.all([a, b, c].map((g) => httpsBinary(g, done.logs!)));
      for (const got of bundles) {
        expect(got.status).toBe(200);
        expect(got.contentType).toBe('application/gzip');
        expect(got.body.equals(bundles[0]!.body)).toBe(true);
      }
      const text = gunzipSync(bundles[0]!.body).toString('utf8');
      expect(text).toContain('sale 1 recorded');
      expect(text).toContain('printer paper low');
    }
  }, 90_000);

  it('update: a release published through A is in the shared store; a supervised terminal on B updates through B, downloads through B and C (no file there yet) match; update queued on A reaches both terminals', async () => {
    const [a, b, c] = gateways as [Cloud, Cloud, Cloud];
    const tarball = await packRelease('9.22.0', tempDir('packs'));
    const signed = await signRelease(tarball, releaseKey);
    const bytes = readFileSync(tarball);
    const published = await publishRelease(a, tarball, signed);
    expect(published.status).toBe(201);
    // In PostgreSQL, in pieces of 1 MiB, with its row.
    const pieces = await sql<{ n: number; size: number }>(
      'SELECT count(*)::int AS n, sum(length(bytes))::int AS size FROM release_chunks WHERE version = $1',
      ['9.22.0'],
    );
    expect(pieces).toEqual([{ n: Math.ceil(signed.size / (1024 * 1024)), size: signed.size }]);
    console.log(
      `multi-gateway: release 9.22.0, ${signed.size} bytes, in ${pieces[0]!.n} pieces in PostgreSQL`,
    );
    const cached = (g: Cloud) => join(g.dataDir, 'releases', '9.22.0.tgz');
    expect(existsSync(cached(b))).toBe(false);
    expect(existsSync(cached(c))).toBe(false);
    for (const g of [b, c]) {
      const r = await g.api<{ sha256: string }>('GET', '/v1/releases/9.22.0');
      expect(r.body.sha256).toBe(signed.sha256);
    }

    // A supervised terminal on B updates for real, through B, to what was published through A: B
    // builds its file from the store (sha256 checked), then serves it.
    const sup = await enrollAgent(b);
    const installDir = join(sup.dirs.stateDir, '..', 'install');
    await installRelease(await packRelease('1.0.0', tempDir('packs')), installDir, '1.0.0');
    const supervised = superviseAgent(installDir, sup.dirs, releaseKey.publicKeyFile);
    try {
      await waitForLink(sup.dirs);
      expect(await linkOf(sup.terminalId)).toBe(await linkOf(onB.terminalId));
      const u = await queueAction(a, sup.terminalId, { type: 'update', params: { version: '9.22.0' } });
      const done = await waitForAction(
        a,
        sup.terminalId,
        u.id,
        (x) => x.status === 'completed' || x.status === 'failed',
        'the supervised update to end',
        60_000,
      );
      expect(done).toMatchObject({ status: 'completed', step: 'committed' });
      const view = await a.api<{ softwareVersion: string }>('GET', `/v1/terminals/${sup.terminalId}`);
      expect(view.body.softwareVersion).toBe('9.22.0');
    } finally {
      await supervised.stop();
    }
    expect(b.proc.stderr()).toContain('release artifact cached from the store');
    expect(sha256(readFileSync(cached(b)))).toBe(signed.sha256);
    expect(readdirSync(join(b.dataDir, 'releases'))).toEqual(['9.22.0.tgz']);
    // The same download by hand, as the terminal on B, through B: the whole artifact, sha256 equal.
    const onBGot = await downloadRelease(b, onB.dirs.stateDir, '9.22.0');
    expect(onBGot.status).toBe(200);
    expect(onBGot.body.length).toBe(signed.size);
    expect(sha256(onBGot.body)).toBe(signed.sha256);
    // Range works on C's rebuilt file as on the publisher's.
    const tail = await downloadRelease(c, onC.dirs.stateDir, '9.22.0', { range: 'bytes=1000-' });
    expect(tail.status).toBe(206);
    expect(tail.headers['content-range']).toBe(`bytes 1000-${bytes.length - 1}/${bytes.length}`);
    expect(tail.body.equals(bytes.subarray(1000))).toBe(true);
    expect(sha256(readFileSync(cached(c)))).toBe(signed.sha256);

    // Queued on A, delivered to each unsupervised terminal, which refuses it for a reason of its
    // own: its software was not installed the way an update needs (no `current` link).
    for (const t of [onB, onC]) {
      const u = await queueAction(a, t.terminalId, { type: 'update', params: { version: '9.22.0' } });
      const failed = await waitForAction(
        a,
        t.terminalId,
        u.id,
        (x) => x.status === 'failed',
        'the update refused by the terminal',
      );
      expect(failed.reason).toContain('(no "current" link); install it with systemd/install.sh');
      expect(receipts(running.get(t.terminalId)!, u.id)).toBe(1);
    }
  }, 120_000);

  it('a release whose pieces in the store do not match its row: a gateway rebuilding it refuses (release_not_found), serves nothing and keeps nothing; the same tarball again repairs them; pieces missing: the same tarball again puts them back', async () => {
    const [a, , c] = gateways as [Cloud, Cloud, Cloud];
    const tarball = await packRelease('9.22.1', tempDir('packs'));
    const signed = await signRelease(tarball, releaseKey);
    expect((await publishRelease(a, tarball, signed)).status).toBe(201);
    // One byte of the first piece changed in the database.
    const [first] = await sql<{ bytes: Buffer }>(
      'SELECT bytes FROM release_chunks WHERE version = $1 AND seq = 0',
      ['9.22.1'],
    );
    const bad = Buffer.from(first!.bytes);
    bad[100] = bad[100]! ^ 0xff;
    await sql('UPDATE release_chunks SET bytes = $1 WHERE version = $2 AND seq = 0', [bad, '9.22.1']);
    const before = readdirSync(join(c.dataDir, 'releases'));
    const refused = await downloadRelease(c, onC.dirs.stateDir, '9.22.1');
    expect(refused.status).toBe(404);
    const error = (JSON.parse(refused.body.toString('utf8')) as { error: { code: string; message: string } })
      .error;
    expect(error.code).toBe('release_not_found');
    expect(error.message).toMatch(
      new RegExp(
        `^the artifact of release 9\\.22\\.1 in the store does not match the release \\(sha256 [0-9a-f]{64}, \\d+ pieces; the release is sha256 ${signed.sha256}, ${signed.size} bytes\\): it is not served$`,
      ),
    );
    // Nothing kept on C (no file, no temp file); the release itself is unchanged.
    expect(readdirSync(join(c.dataDir, 'releases'))).toEqual(before);
    expect(before).not.toContain('9.22.1.tgz');
    expect((await c.api<{ sha256: string }>('GET', '/v1/releases/9.22.1')).body.sha256).toBe(signed.sha256);
    // A serves the file it checked when it was published.
    const fromA = await downloadRelease(a, onC.dirs.stateDir, '9.22.1');
    expect(fromA.status).toBe(200);
    expect(sha256(fromA.body)).toBe(signed.sha256);
    // The same tarball published again (checked against the row) writes the damaged pieces whole.
    expect((await publishRelease(a, tarball, signed)).status).toBe(201);
    const repaired = await downloadRelease(c, onC.dirs.stateDir, '9.22.1');
    expect(repaired.status).toBe(200);
    expect(sha256(repaired.body)).toBe(signed.sha256);
    await rm(join(c.dataDir, 'releases', '9.22.1.tgz'));
    // Pieces gone (a release published before the store kept artifacts): refused as not in the
    // store; the same tarball published again, through another gateway, puts them back.
    await sql('DELETE FROM release_chunks WHERE version = $1', ['9.22.1']);
    const gone = await downloadRelease(c, onC.dirs.stateDir, '9.22.1');
    expect(gone.status).toBe(404);
    expect(JSON.parse(gone.body.toString('utf8'))).toEqual({
      error: {
        code: 'release_not_found',
        message:
          'the artifact of release 9.22.1 is missing on the cloud: it is not in the store (publish the same tarball again to put it there)',
      },
    });
    const again = await publishRelease(gateways[1]!, tarball, signed);
    expect(again.body).toMatchObject({ version: '9.22.1', sha256: signed.sha256 });
    const back = await downloadRelease(c, onC.dirs.stateDir, '9.22.1');
    expect(back.status).toBe(200);
    expect(sha256(back.body)).toBe(signed.sha256);
  }, 90_000);

  it('SIGKILL gateway B: its terminal reconnects through the balancer to C, and an action queued for it on A is delivered once', async () => {
    const [a, b, c] = gateways as [Cloud, Cloud, Cloud];
    b.proc.expectFatal = true;
    const killedAt = performance.now();
    b.proc.child.kill('SIGKILL');
    await b.proc.exited;
    relayB.to(c.port);
    // Queued on A while B's lease may still look alive: the rows are durable, the doorbells to B are lost.
    const queued = [];
    for (const type of ['lock', 'unlock', 'lock'])
      queued.push(await queueAction(a, onB.terminalId, { type }));
    await waitForLink(onB.dirs);
    for (const q of queued) {
      const done = await waitForAction(
        a,
        onB.terminalId,
        q.id,
        (x) => x.status === 'completed',
        `${q.type} completed on C`,
      );
      expect(done.status).toBe('completed');
    }
    // Delivered exactly once, as the agent itself counts: its log says "action received" once per
    // action (a repeat would be answered with its status, and logged as such).
    const agent = running.get(onB.terminalId)!;
    expect(queued.map((q) => receipts(agent, q.id))).toEqual([1, 1, 1]);
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
  it('on PostgreSQL a NUL in a path, a query or a body is 400 (it was 500: text cannot hold one); with the database down every gateway answers 503 store_unavailable, and serves again when it is back', async () => {
    // B was SIGKILLed above: A and C.
    const [a, , b] = gateways as [Cloud, Cloud, Cloud];
    for (const path of ['/v1/terminals/%00', '/v1/deployments/%00/terminals', '/v1/releases/9.9.1%00']) {
      const r = await a.api<{ error: { code: string } }>('GET', path);
      expect(r.status, path).toBe(400);
      expect(r.body.error.code, path).toBe('invalid_path');
    }
    expect((await b.api<{ error: { code: string } }>('GET', '/v1/terminals?q=%00')).status).toBe(400);
    const body = await b.api<{ error: { code: string } }>('POST', '/v1/deployments', {
      release: '1.0.0',
      target: { locationIds: ['loc\u0000'] },
    });
    expect(body.status).toBe(400);
    expect(body.body.error.code).toBe('invalid_json');
    expect(a.proc.stderr() + b.proc.stderr()).not.toMatch(/REST handler failed/);

    await pg.kill();
    const down = await waitFor(async () => {
      const r = await a.api<{ error: { code: string; message: string } }>('GET', '/v1/deployments');
      return r.status === 503 ? r : undefined;
    }, 'a 503 while the database is down');
    expect(down.body.error).toEqual({
      code: 'store_unavailable',
      message: 'the store (the database) is not answering; nothing was changed; try again shortly',
    });
    // Ready is "the store answered within the last three seconds": it turns within them.
    await waitFor(
      async () => (await b.api('GET', '/readyz', undefined, null)).status === 503 || undefined,
      'C not ready while the database is down',
    );
    expect(a.proc.stderr()).not.toMatch(/REST handler failed/);
    await pg.restart();
    await waitFor(
      async () => (await a.api('GET', '/v1/deployments')).status === 200 || undefined,
      'A serves again',
    );
    await waitFor(
      async () => (await b.api('GET', '/readyz', undefined, null)).status === 200 || undefined,
      'B ready again',
    );
  });
});
