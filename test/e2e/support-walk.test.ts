import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentDirs,
  type Cloud,
  cli,
  configureAndWait,
  copyAgentState,
  enrollWithCli,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 20, Must show 1: the PeakPOS support guide walked through the API with real processes —
 * org → store → register (a code with the friendly name) → enroll → Online with last heartbeat
 * and certificate expiry → rename → reprovision with a new code on the same record (heartbeat
 * resumes) → rotate → decommission → replace, the store's active count right at each step, and
 * the escalation document complete. The device learns its organization and store names.
 */
interface Terminal {
  id: string;
  name: string;
  status: string;
  statusReason: string | null;
  lastSeen: number | null;
  locationId: string;
  organizationId: string | null;
  certificate: { notAfter: string; serial: string };
  config: { version: number; appliedVersion: number };
  replaces: string | null;
  replacedBy: string | null;
}
interface Counts {
  active: number;
  online: number;
  provisioning: number;
  deactivated: number;
}

const device = (serial: string) => ({
  POSAGENT_SERIAL_NUMBER: serial,
  POSAGENT_MODEL: 'nexgo_n92',
  POSAGENT_RECONNECT_BASE_MS: '100',
  POSAGENT_RECONNECT_CAP_MS: '1000',
  POSAGENT_RESTART_SPREAD_MS: '500',
});

describe('the PeakPOS support walk, through the API', () => {
  let cloud: Cloud;
  const agents: Proc[] = [];
  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1', '--status-sweep-ms', '200']);
  });
  afterAll(async () => {
    for (const a of agents)
      if (a.child.exitCode === null) {
        a.child.kill('SIGTERM');
        await a.exited;
      }
    await cloud.stop();
  });

  const terminal = async (id: string) => (await cloud.api<Terminal>('GET', `/v1/terminals/${id}`)).body;
  const counts = async (locationId: string) =>
    (await cloud.api<{ counts: Counts }>('GET', `/v1/locations/${locationId}`)).body.counts;
  const stop = async (p: Proc) => {
    p.child.kill('SIGTERM');
    await p.exited;
  };
  const run = (dirs: ReturnType<typeof agentDirs>, serial: string) => {
    const p = startAgent(dirs, [], device(serial));
    agents.push(p);
    return p;
  };

  it('org → store → register → enroll → online → rename → reprovision → rotate → decommission → replace; escalation', async () => {
    // Org exists.
    const org = await cloud.api<{ id: string; slug: string; object: string }>('POST', '/v1/organizations', {
      name: 'Demo Coffee Roasters',
      slug: 'demo-coffee',
    });
    expect(org.status).toBe(201);
    expect(org.body).toMatchObject({ object: 'organization', slug: 'demo-coffee' });
    // Store exists and is active.
    const store = await cloud.api<{ id: string; active: boolean; counts: Counts }>('POST', '/v1/locations', {
      name: 'Downtown',
      organizationId: org.body.id,
      timezone: 'Europe/Berlin',
    });
    expect(store.status).toBe(201);
    expect(store.body).toMatchObject({
      active: true,
      organizationId: org.body.id,
      timezone: 'Europe/Berlin',
    });
    expect(store.body.counts).toMatchObject({ active: 0 });
    const storeId = store.body.id;
    const listed = await cloud.api<{ data: { id: string }[] }>(
      'GET',
      `/v1/locations?organizationId=${org.body.id}`,
    );
    expect(listed.body.data.map((l) => l.id)).toEqual([storeId]);

    // Register: a code with the friendly name that matches the store layout.
    const code = await cloud.api<{ code: string; terminalName: string }>('POST', '/v1/enrollment-codes', {
      locationId: storeId,
      terminalName: 'Front Register 1',
    });
    expect(code.status).toBe(201);
    const dirs = agentDirs();
    const enrolled = await enrollWithCli(cloud, code.body.code, dirs, { env: device('SN-00482910') });
    expect(enrolled.code).toBe(0);
    const id = enrolled.json<{ terminalId: string }>().terminalId;
    expect((await terminal(id)).status).toBe('provisioning'); // never heartbeated yet
    expect(await counts(storeId)).toMatchObject({ active: 1, provisioning: 1 });

    // Enroll → Online, last heartbeat, certificate expiry in the future.
    let agent = run(dirs, 'SN-00482910');
    await waitForLink(dirs);
    const online = await waitFor(async () => {
      const t = await terminal(id);
      return t.status === 'online' && t.lastSeen !== null ? t : undefined;
    }, 'online with a heartbeat');
    expect(Date.parse(online.certificate.notAfter)).toBeGreaterThan(Date.now());
    expect(online).toMatchObject({
      name: 'Front Register 1',
      locationId: storeId,
      organizationId: org.body.id,
    });
    expect(await counts(storeId)).toMatchObject({ active: 1, online: 1 });
    // The device learns its organization and store names (status, and so the menu and the bundle).
    const deviceStatus = await waitFor(async () => {
      const s = (await cli(['status', '--json', ...dirs.flags])).json<{
        organizationSlug?: string;
        locationName?: string;
      }>();
      return s.organizationSlug ? s : undefined;
    }, 'the org slug on the device');
    expect(deviceStatus).toMatchObject({ organizationSlug: 'demo-coffee', locationName: 'Downtown' });
    // Search by serial and by POIID.
    for (const q of ['SN-00482910', 'nexgo_n92-SN-00482910', 'front register 1']) {
      const found = await cloud.api<{ data: { id: string }[] }>(
        'GET',
        `/v1/terminals?q=${encodeURIComponent(q)}`,
      );
      expect(found.body.data.map((t) => t.id)).toEqual([id]);
    }

    // Rename to match the store layout (VINR's displayName); the device follows.
    const renamed = await cloud.api<Terminal>('POST', `/v1/terminals/${id}`, { displayName: 'Counter 3' });
    expect(renamed.body.name).toBe('Counter 3');
    await waitFor(
      async () =>
        (await cli(['status', '--json', ...dirs.flags])).json<{ name: string }>().name === 'Counter 3',
      'the new name on the device',
    );
    const configVersion = await configureAndWait(cloud, id, { display: { idleMessage: 'Welcome' } });

    // Reprovision: a new code bound to the same record; the device (factory reset) enrolls with it.
    const before = await terminal(id);
    const re = await cloud.api<{ code: string; reprovisions: string; terminalName: string }>(
      'POST',
      `/v1/terminals/${id}/reprovision`,
    );
    expect(re.status).toBe(201);
    expect(re.body).toMatchObject({ reprovisions: id, terminalName: 'Counter 3' });
    await stop(agent);
    const oldIdentity = copyAgentState(dirs, 'old-identity');
    const again = await enrollWithCli(cloud, re.body.code, dirs, {
      env: device('SN-00482910'),
      extraArgs: ['--force'],
    });
    expect(again.code).toBe(0);
    expect(again.json<{ terminalId: string }>().terminalId).toBe(id);
    agent = run(dirs, 'SN-00482910');
    const lastSeenBefore = (await terminal(id)).lastSeen ?? 0;
    const resumed = await waitFor(async () => {
      const t = await terminal(id);
      return t.status === 'online' &&
        (t.lastSeen ?? 0) > lastSeenBefore &&
        t.certificate.serial !== before.certificate.serial
        ? t
        : undefined;
    }, 'heartbeat resumes with the new certificate');
    // The same record: id, name, store, config, history.
    expect(resumed).toMatchObject({ id, name: 'Counter 3', locationId: storeId });
    expect(resumed.config.appliedVersion).toBeGreaterThanOrEqual(configVersion);
    const total = await cloud.api<{ data: unknown[] }>('GET', '/v1/terminals?limit=100');
    expect(total.body.data).toHaveLength(1);
    // The old certificate is superseded: a copy of the old identity is refused.
    const old = startAgent(oldIdentity, [], device('SN-00482910'));
    agents.push(old);
    const refused = await waitFor(async () => {
      const s = (await cli(['status', '--json', ...oldIdentity.flags])).json<{
        link: { state: string; reason?: string };
      }>();
      return s.link.state === 'error' ? s.link.reason : undefined;
    }, 'the old certificate refused');
    expect(refused).toMatch(/no longer the current one/);
    await stop(old);
    expect((await terminal(id)).status).toBe('online'); // the old device does not make the new one an error

    // Rotate: the online terminal renews now; heartbeat goes on with the new certificate.
    const rotate = await cloud.api<{ status: string }>('POST', `/v1/terminals/${id}/rotate-certificate`);
    expect(rotate.status).toBe(200);
    expect(rotate.body.status).toBe('requested');
    const rotated = await waitFor(async () => {
      const t = await terminal(id);
      return t.certificate.serial !== resumed.certificate.serial && t.status === 'online' ? t : undefined;
    }, 'the rotated certificate in use');
    expect(rotated.id).toBe(id);

    // Decommission a retired terminal: a second one in the same store.
    const code2 = await cloud.api<{ code: string }>('POST', '/v1/enrollment-codes', {
      locationId: storeId,
      terminalName: 'Back Office',
    });
    const dirs2 = agentDirs();
    const e2 = await enrollWithCli(cloud, code2.body.code, dirs2, { env: device('SN-2') });
    const retired = e2.json<{ terminalId: string }>().terminalId;
    expect(await counts(storeId)).toMatchObject({ active: 2 });
    const deact = await cloud.api<Terminal>('POST', `/v1/terminals/${retired}/deactivate`, {
      reason: 'retired',
    });
    expect(deact.body.status).toBe('deactivated');
    expect(await counts(storeId)).toMatchObject({ active: 1, deactivated: 1 });

    // Replace the device: a new record for new hardware, the old one decommissioned, linked both ways.
    const replace = await cloud.api<{ code: string; replaces: string }>(
      'POST',
      `/v1/terminals/${id}/replace`,
    );
    expect(replace.status).toBe(201);
    const dirs3 = agentDirs();
    const e3 = await enrollWithCli(cloud, replace.body.code, dirs3, { env: device('SN-3') });
    expect(e3.code).toBe(0);
    const newId = e3.json<{ terminalId: string }>().terminalId;
    expect(newId).not.toBe(id);
    await stop(agent);
    const replacement = run(dirs3, 'SN-3');
    await waitForLink(dirs3);
    const fresh = await waitFor(async () => {
      const t = await terminal(newId);
      return t.status === 'online' ? t : undefined;
    }, 'the replacement online');
    expect(fresh).toMatchObject({ replaces: id, name: 'Counter 3', locationId: storeId });
    expect(await terminal(id)).toMatchObject({ status: 'deactivated', replacedBy: newId });
    // After replacement, the store has the expected count of active terminals.
    expect(await counts(storeId)).toMatchObject({ active: 1, online: 1, deactivated: 2 });

    // Escalation: org slug, store name, terminal name and identifiers, last heartbeat, certificate expiry.
    const esc = await cloud.api<Record<string, unknown>>('GET', `/v1/terminals/${newId}/escalation`);
    expect(esc.status).toBe(200);
    expect(esc.body).toMatchObject({
      object: 'escalation',
      organization: { slug: 'demo-coffee', name: 'Demo Coffee Roasters' },
      store: { id: storeId, name: 'Downtown', counts: { active: 1 } },
      terminal: {
        id: newId,
        name: 'Counter 3',
        serialNumber: 'SN-3',
        model: 'nexgo_n92',
        poiid: 'nexgo_n92-SN-3',
        replaces: id,
      },
      status: 'online',
      certificate: { notAfter: fresh.certificate.notAfter, expired: false },
    });
    expect(typeof esc.body.lastHeartbeat).toBe('number');
    expect((esc.body.recentEvents as { status: string }[]).map((e) => e.status)).toContain('online');
    // The device's support bundle carries the same org slug and store name.
    const bundleFile = `${dirs3.stateDir}/../bundle.tar.gz`;
    const diag = await cli(['diagnostics', '--bundle', bundleFile, '--json', ...dirs3.flags]);
    expect(diag.stdout + diag.stderr).not.toMatch(/TypeError/);
    const { execFileSync } = await import('node:child_process');
    const listing = execFileSync('tar', ['-xzOf', bundleFile], {
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(listing).toMatch(/"organizationSlug": ?"demo-coffee"/);
    expect(listing).toMatch(/"storeName": ?"Downtown"/);
    await stop(replacement);
  });
});
