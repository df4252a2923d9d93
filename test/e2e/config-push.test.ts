import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigDocument } from '../../agent/config/config-document.js';
import { localApiRequest, subscribeEvents } from '../../agent/local-api/local-api-client.js';
import { BROKEN_LIMITS } from '../support/config-fixtures.js';
import { type Cloud, cli, enrollAgent, type Proc, startAgent, startCloud } from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

interface CloudConfig {
  version: number;
  desired: {
    display: { idleMessage: string };
    tip: { suggestions: number[] };
    agent: { heartbeatIntervalSec: number };
  };
  appliedVersion: number | null;
  status: string;
  error?: string;
  errors?: { path: string; message: string }[];
}

/** Issue 4: pushed configuration, end to end through the real cloud and agent. */
describe('configuration push', () => {
  let cloud: Cloud;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;
  const cloudConfig = async () =>
    (await cloud.api<CloudConfig>('GET', `/v1/terminals/${a.terminalId}/config`)).body;
  const localConfig = async () => (await localApiRequest<ConfigDocument>(socket(), 'GET', '/v1/config')).body;
  const appliedInCloud = (version: number) =>
    waitFor(async () => {
      const c = await cloudConfig();
      return c.appliedVersion === version && c.status === 'applied' ? c : undefined;
    }, `version ${version} applied in the cloud`);

  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '30']);
    a = await enrollAgent(cloud);
    agent = startAgent(a.dirs);
    // The first Hello gets the terminal its initial config (defaults ← its location's template).
    const first = await waitFor(
      async () => ((await cloudConfig()).status === 'applied' ? await cloudConfig() : undefined),
      'initial config applied',
    );
    expect((await localConfig()).version).toBe(first.version);
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('push → applied ack in the cloud, the new value in GET /v1/config and on the event stream', async () => {
    const stream = await subscribeEvents(socket());
    try {
      const r = await cloud.api<{ config: { version: number } }>(
        'POST',
        `/v1/terminals/${a.terminalId}/configure`,
        {
          display: { idleMessage: 'Welcome to Acme Coffee' },
        },
      );
      expect(r.status).toBe(200);
      const pushed = await cloudConfig();
      await appliedInCloud(pushed.version);
      const local = await localConfig();
      expect(local.version).toBe(pushed.version);
      expect(local.config.display.idleMessage).toBe('Welcome to Acme Coffee');
      const ev = await waitFor(() => stream.events.find((e) => e.event === 'config'), 'a config event');
      expect(ev.data).toMatchObject({
        status: 'applied',
        version: pushed.version,
        config: { display: { idleMessage: 'Welcome to Acme Coffee' } },
      });
      const viaCli = await cli(['config', '--json', ...a.dirs.flags]);
      expect(viaCli.json<ConfigDocument>().version).toBe(pushed.version);
      const status = await cli(['status', '--json', ...a.dirs.flags]);
      expect(status.json<{ config: { version: number } }>().config.version).toBe(pushed.version);
    } finally {
      stream.close();
    }
  });

  it('template + override precedence, including removing an override', async () => {
    const put = await cloud.api('PUT', `/v1/locations/${a.locationId}/terminal-config`, {
      tip: { mode: 'percentage', suggestions: [10, 15, 20] },
      display: { idleMessage: 'Welcome (location)' },
    });
    expect(put.status).toBe(200);
    // the terminal override from the previous test still wins over the template
    let c = await appliedInCloud((await cloudConfig()).version);
    expect(c.desired.display.idleMessage).toBe('Welcome to Acme Coffee');
    expect(c.desired.tip.suggestions).toEqual([10, 15, 20]);
    // remove the override (JSON merge patch: null) → the template shows through
    await cloud.api('POST', `/v1/terminals/${a.terminalId}/configure`, { display: null });
    c = await appliedInCloud((await cloudConfig()).version);
    expect(c.desired.display.idleMessage).toBe('Welcome (location)');
    expect((await localConfig()).config.display.idleMessage).toBe('Welcome (location)');
  });

  it.each(BROKEN_LIMITS)(
    'refuses %s at the REST API (400 with the field path), nothing changes',
    async (_name, layer, path) => {
      const before = await cloudConfig();
      const r = await cloud.api<{ error: { code: string; message: string } }>(
        'POST',
        `/v1/terminals/${a.terminalId}/configure`,
        layer,
      );
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe('invalid_config');
      expect(r.body.error.message).toContain(path);
      expect((await cloudConfig()).version).toBe(before.version);
    },
  );

  it('an invalid config that reaches the agent is refused with reasons visible in the cloud; the agent keeps the previous one', async () => {
    for (const [name, layer, path] of BROKEN_LIMITS) {
      const good = await localConfig();
      const r = await cloud.api('POST', `/v1/terminals/${a.terminalId}/configure?validate=false`, layer);
      expect(r.status, name).toBe(200);
      const refused = await waitFor(async () => {
        const c = await cloudConfig();
        return c.status === 'rejected' ? c : undefined;
      }, `the agent to refuse ${name}`);
      expect(refused.appliedVersion, name).toBe(good.version);
      expect(refused.error, name).toContain(path);
      expect(refused.errors?.[0]?.path, name).toContain(path.split('/')[1]);
      const local = await localConfig();
      expect(local.version, name).toBe(good.version);
      expect(local.config, name).toEqual(good.config);
      expect(local.lastRejected?.version, name).toBe(refused.version);
      // undo the bad override so the next case breaks only its own limit
      await cloud.api(
        'POST',
        `/v1/terminals/${a.terminalId}/configure?validate=false`,
        Object.fromEntries(Object.keys(layer as object).map((k) => [k, null])),
      );
      await appliedInCloud((await cloudConfig()).version);
    }
  });

  it('settings take effect live: a new heartbeat interval without a restart', async () => {
    const sentAts = new Set<string>();
    await cloud.api('POST', `/v1/terminals/${a.terminalId}/configure`, {
      agent: { heartbeatIntervalSec: 1 },
    });
    await appliedInCloud((await cloudConfig()).version);
    await waitFor(
      async () => {
        const t = await cloud.api<{ health: { sentAt: string } }>('GET', `/v1/terminals/${a.terminalId}`);
        sentAts.add(t.body.health.sentAt);
        return sentAts.size >= 3;
      },
      'three heartbeats at the new 1 s interval (the old one was 30 s)',
      10_000,
    );
    expect(agent.child.exitCode).toBeNull();
  });

  it('a terminal offline during the push gets it on reconnect; versions never go backwards', async () => {
    agent.child.kill('SIGTERM');
    await agent.exited;
    const before = (await localConfigFromCli()).version!;
    await cloud.api('POST', `/v1/terminals/${a.terminalId}/configure`, {
      display: { idleMessage: 'Pushed while offline' },
    });
    const pushed = await cloudConfig();
    expect(pushed.version).toBeGreaterThan(before);
    expect(pushed.status).toBe('pending');
    agent = startAgent(a.dirs);
    await appliedInCloud(pushed.version);
    const local = await localConfig();
    expect(local.config.display.idleMessage).toBe('Pushed while offline');
    expect(local.version).toBeGreaterThan(before);
  });

  async function localConfigFromCli(): Promise<ConfigDocument> {
    const r = await cli(['config', '--json', ...a.dirs.flags]);
    expect(r.code).toBe(0);
    return r.json<ConfigDocument>();
  }
});
