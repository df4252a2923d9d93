import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import { signWebhook } from '../../cloud/webhooks/webhooks.js';
import {
  agentDirs,
  type Cloud,
  cli,
  configureAndWait,
  enrollAgent,
  enrollWithCli,
  restartCloud,
  startAgent,
  startCloud,
  terminalStatus,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

interface Received {
  type: string;
  data: { terminalId: string; status?: string };
  signatureValid: boolean;
}

/** A real HTTP receiver; `failFirst` answers 500 to that many requests before accepting. */
async function receiver(secretOf: () => string, failFirst = 0) {
  const got: Received[] = [];
  let requests = 0;
  let down = false;
  const server: Server = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c));
    req.on('end', () => {
      requests++;
      if (requests <= failFirst || down) {
        res.writeHead(500).end('not yet');
        return;
      }
      const header = String(req.headers['posagent-signature'] ?? '');
      const t = Number(/t=(\d+)/.exec(header)?.[1]);
      const event = JSON.parse(body) as Omit<Received, 'signatureValid'>;
      got.push({ ...event, signatureValid: header === signWebhook(secretOf(), t, body) });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    got,
    requests: () => requests,
    setDown: (v: boolean) => {
      down = v;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('terminal lifecycle and webhooks', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud([
      '--heartbeat-interval',
      '1',
      '--webhook-retry-base-ms',
      '100',
      '--status-sweep-ms',
      '200',
    ]);
  });
  afterAll(async () => cloud.stop());

  it('webhooks: terminal.enrolled, .online and .offline arrive signed; a failing receiver gets them on retry; a cloud restart loses none', async () => {
    let okSecret = '';
    let flakySecret = '';
    const ok = await receiver(() => okSecret);
    const flaky = await receiver(() => flakySecret, 2);
    const events = ['terminal.enrolled', 'terminal.online', 'terminal.offline'];
    const e1 = await cloud.api<{ id: string; secret: string }>('POST', '/v1/webhook-endpoints', {
      url: ok.url,
      events,
    });
    expect(e1.status).toBe(201);
    okSecret = e1.body.secret;
    const e2 = await cloud.api<{ id: string; secret: string }>('POST', '/v1/webhook-endpoints', {
      url: flaky.url,
      events,
    });
    flakySecret = e2.body.secret;
    const bad = await cloud.api<{ error: { code: string } }>('POST', '/v1/webhook-endpoints', {
      url: ok.url,
      events: ['terminal.exploded'],
    });
    expect(bad.status).toBe(400);

    const a = await enrollAgent(cloud);
    const agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
    agent.child.kill('SIGTERM'); // a clean stop: offline at once
    await agent.exited;
    const types = (r: { got: Received[] }) =>
      r.got.filter((g) => g.data.terminalId === a.terminalId).map((g) => g.type);
    await waitFor(() => types(ok).includes('terminal.offline'), 'terminal.offline at the receiver');
    expect(types(ok)).toEqual(['terminal.enrolled', 'terminal.online', 'terminal.offline']);
    expect(ok.got.every((g) => g.signatureValid)).toBe(true);
    // Each event is retried on its own (no order between events is promised, as with Stripe's).
    await waitFor(
      () => events.every((e) => types(flaky).includes(e)),
      'the flaky receiver to get everything',
    );
    expect(flaky.requests()).toBeGreaterThanOrEqual(5); // 2 refused + 3 accepted
    const view = await cloud.api<{ deliveries: { status: string; attempts: number }[] }>(
      'GET',
      `/v1/webhook-endpoints/${e2.body.id}`,
    );
    expect(view.body.deliveries.some((d) => d.attempts >= 2 && d.status === 'delivered')).toBe(true);

    // Durable: an event recorded while the receiver is down survives a cloud crash and is
    // delivered after the restart.
    ok.setDown(true);
    const b = await enrollAgent(cloud);
    const pending = async () =>
      (
        await cloud.api<{ deliveries: { status: string; attempts: number; type: string }[] }>(
          'GET',
          `/v1/webhook-endpoints/${e1.body.id}`,
        )
      ).body.deliveries.filter(
        (d) => d.type === 'terminal.enrolled' && d.status === 'pending' && d.attempts >= 1,
      );
    await waitFor(async () => (await pending()).length > 0, 'a failed attempt');
    cloud.proc.child.kill('SIGKILL');
    await cloud.proc.exited;
    ok.setDown(false);
    cloud = await restartCloud(cloud);
    await waitFor(
      () => ok.got.some((g) => g.data.terminalId === b.terminalId && g.type === 'terminal.enrolled'),
      'the event after the restart',
    );
    expect(ok.got.find((g) => g.data.terminalId === b.terminalId)?.signatureValid).toBe(true);
    await Promise.all([ok.close(), flaky.close()]);
  });

  it('deactivate: the connected agent is told, cannot connect again and says why', async () => {
    const a = await enrollAgent(cloud);
    const agent = startAgent(a.dirs);
    try {
      await waitForLink(a.dirs);
      const r = await cloud.api<{ status: string }>('POST', `/v1/terminals/${a.terminalId}/deactivate`, {
        reason: 'stolen',
      });
      expect(r.status).toBe(200);
      expect(r.body.status).toBe('deactivated');
      const reason = await waitFor(async () => {
        const s = (await cli(['status', '--json', ...a.dirs.flags])).json<{
          link: { state: string; reason?: string };
        }>();
        return s.link.state !== 'online' && /deactivated/.test(s.link.reason ?? '')
          ? s.link.reason
          : undefined;
      }, 'the refusal in status');
      expect(reason).toMatch(/deactivated/);
      expect(agent.output()).toMatch(/the cloud deactivated this terminal/);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    const again = startAgent(a.dirs);
    try {
      const reason = await waitFor(async () => {
        const s = (await cli(['status', '--json', ...a.dirs.flags])).json<{
          link: { state: string; reason?: string };
        }>();
        return s.link.state === 'error' ? s.link.reason : undefined;
      }, 'a refused link after restart');
      // Issue 18.8: the deactivation is remembered; the restarted agent does not try the link again.
      expect(reason).toMatch(/deactivated this terminal/);
      expect(reason).toMatch(/stolen/);
    } finally {
      again.child.kill('SIGTERM');
      await again.exited;
    }
  });

  it('decommission refuses while transactions are unsent (exit 5, nothing wiped), then wipes with --force; with an empty queue it tells the cloud', async () => {
    const a = await enrollAgent(cloud);
    let agent = startAgent(a.dirs);
    await waitForLink(a.dirs);
    await configureAndWait(cloud, a.terminalId, {
      offlineMode: { enabled: true, maxAmount: 5000, maxQueue: 10 },
    });
    // The cloud goes away; a sale is taken offline and cannot be forwarded.
    cloud.proc.child.kill('SIGKILL');
    await cloud.proc.exited;
    await waitForLink(a.dirs, (s) => s !== 'online');
    const sale = await localApiRequest(`${a.dirs.runtimeDir}/api.sock`, 'POST', '/v1/transactions', {
      id: randomUUID(),
      amount: 250,
      currency: 'EUR',
    });
    expect(sale.status).toBe(201);
    const running = await cli(['decommission', '--json', ...a.dirs.flags]);
    expect(running.code).toBe(5);
    expect(running.json<{ error: { code: string } }>().error.code).toBe('daemon_running');
    agent.child.kill('SIGTERM');
    await agent.exited;

    const refused = await cli(['decommission', '--json', ...a.dirs.flags]);
    expect(refused.code).toBe(5);
    expect(refused.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'unsent_transactions',
    });
    expect(refused.json<{ error: { message: string } }>().error.message).toMatch(/^1 transaction/);
    expect(existsSync(`${a.dirs.stateDir}/keys/client.key`)).toBe(true);
    expect((await cli(['queue', '--json', ...a.dirs.flags])).json<{ data: unknown[] }>().data).toHaveLength(
      1,
    );

    const forced = await cli(['decommission', '--force', '--json', ...a.dirs.flags]);
    expect(forced.code, forced.stdout).toBe(0);
    expect(forced.json()).toMatchObject({
      decommissioned: true,
      discardedTransactions: 1,
      cloud: { deactivated: false },
    });
    expect(existsSync(`${a.dirs.stateDir}/keys`)).toBe(false);
    expect(existsSync(`${a.dirs.stateDir}/identity.json`)).toBe(false);
    expect((await cli(['status', '--json', ...a.dirs.flags])).code).toBe(3);

    cloud = await restartCloud(cloud);
    const b = await enrollAgent(cloud);
    agent = startAgent(b.dirs);
    await waitForLink(b.dirs);
    agent.child.kill('SIGTERM');
    await agent.exited;
    const told = await cli(['decommission', '--json', ...b.dirs.flags]);
    expect(told.json()).toMatchObject({
      decommissioned: true,
      discardedTransactions: 0,
      cloud: { deactivated: true },
    });
    expect(await terminalStatus(cloud, b.terminalId)).toBe('deactivated');
  });

  it("replace: a new device takes the old one's name, location and config; the old one is deactivated; rename and move", async () => {
    const old = await enrollAgent(cloud);
    await cloud.api('POST', `/v1/terminals/${old.terminalId}/configure`, {
      display: { idleMessage: 'Till 3 — welcome' },
    });
    const oldView = (
      await cloud.api<{ name: string; locationId: string }>('GET', `/v1/terminals/${old.terminalId}`)
    ).body;
    const rep = await cloud.api<{ code: string; replaces: string }>(
      'POST',
      `/v1/terminals/${old.terminalId}/replace`,
      {},
    );
    expect(rep.status).toBe(201);
    expect(rep.body.replaces).toBe(old.terminalId);
    // A second replacement code made before the first is used (asked twice):
    const twice = await cloud.api<{ code: string }>('POST', `/v1/terminals/${old.terminalId}/replace`, {});
    expect(twice.status).toBe(201);
    const dirs = agentDirs();
    const r = await enrollWithCli(cloud, rep.body.code, dirs);
    expect(r.code, r.stderr).toBe(0);
    const newId = r.json<{ terminalId: string; name: string; locationId: string }>();
    expect(newId).toMatchObject({ name: oldView.name, locationId: oldView.locationId });
    expect(newId.terminalId).not.toBe(old.terminalId);
    expect(await terminalStatus(cloud, old.terminalId)).toBe('deactivated');
    // …is void now: one old terminal never gets two successors, and the store's count stays.
    const before = (
      await cloud.api<{ counts: { active: number } }>('GET', `/v1/locations/${oldView.locationId}`)
    ).body.counts.active;
    const second = await enrollWithCli(cloud, twice.body.code, agentDirs());
    expect(second.code).toBe(1);
    expect(second.json<{ error: { code: string; message: string } }>().error).toMatchObject({
      code: 'code_revoked',
      message: expect.stringContaining(`replaced terminal ${old.terminalId}, which is deactivated already`),
    });
    expect(
      (await cloud.api<{ counts: { active: number } }>('GET', `/v1/locations/${oldView.locationId}`)).body
        .counts.active,
    ).toBe(before);
    const cfg = (
      await cloud.api<{ desired: { display: { idleMessage: string } } }>(
        'GET',
        `/v1/terminals/${newId.terminalId}/config`,
      )
    ).body;
    expect(cfg.desired.display.idleMessage).toBe('Till 3 — welcome');

    const loc2 = (await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Store 9' })).body.id;
    const moved = await cloud.api<{ name: string; locationId: string }>(
      'POST',
      `/v1/terminals/${newId.terminalId}`,
      { name: 'Till 3b', locationId: loc2 },
    );
    expect(moved.body).toMatchObject({ name: 'Till 3b', locationId: loc2 });
    const nowhere = await cloud.api<{ error: { code: string } }>(
      'POST',
      `/v1/terminals/${newId.terminalId}`,
      { locationId: 'loc_nope' },
    );
    expect(nowhere.status).toBe(404);
    expect(
      (await cloud.api<{ locationId: string }>('GET', `/v1/terminals/${newId.terminalId}`)).body.locationId,
    ).toBe(loc2);
    expect(readFileSync(`${dirs.stateDir}/identity.json`, 'utf8')).toContain(newId.terminalId);
  });

  it('a rename or move reaches the device within seconds while online, and at the next Hello while offline: status and the support bundle (issue 16)', async () => {
    const a = await enrollAgent(cloud);
    let agent = startAgent(a.dirs);
    const status = async () =>
      (await cli(['status', '--json', ...a.dirs.flags])).json<{
        name: string;
        locationId: string;
        locationName?: string;
        daemon: string;
      }>();
    try {
      await waitForLink(a.dirs);
      const store2 = (
        await cloud.api<{ id: string }>('POST', '/v1/locations', { name: 'Acme Coffee — Pier 39' })
      ).body.id;
      await cloud.api('POST', `/v1/terminals/${a.terminalId}`, { name: 'Counter 3', locationId: store2 });
      const seen = await waitFor(async () => {
        const s = await status();
        return s.name === 'Counter 3' && s.locationId === store2 ? s : undefined;
      }, 'the rename and move in the daemon status');
      expect(seen.locationName).toBe('Acme Coffee — Pier 39');
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    // Down: the daemon-less status reads identity.json, which the daemon updated.
    expect(await status()).toMatchObject({
      daemon: 'stopped',
      name: 'Counter 3',
      locationName: 'Acme Coffee — Pier 39',
    });
    await cloud.api('POST', `/v1/terminals/${a.terminalId}`, { name: 'Counter 4' });
    expect((await status()).name).toBe('Counter 3');
    agent = startAgent(a.dirs);
    try {
      await waitForLink(a.dirs);
      await waitFor(
        async () => ((await status()).name === 'Counter 4' ? true : undefined),
        'the rename at the next Hello',
      );
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }
    const bundleFile = `${a.dirs.stateDir}/../support.tar.gz`;
    const d = await cli([
      'diagnostics',
      '--json',
      '--timeout-ms',
      '2000',
      '--bundle',
      bundleFile,
      ...a.dirs.flags,
    ]);
    expect(d.stdout).toContain('"checks"');
    const out = `${a.dirs.stateDir}/../bundle-out`;
    const tar = await import('tar');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(out, { recursive: true });
    await tar.x({ file: bundleFile, cwd: out });
    const escalation = JSON.parse(readFileSync(`${out}/escalation.json`, 'utf8')) as Record<string, unknown>;
    expect(escalation).toMatchObject({
      terminalId: a.terminalId,
      terminalName: 'Counter 4',
      storeName: 'Acme Coffee — Pier 39',
    });
  });
});
