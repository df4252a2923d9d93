import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentDirs,
  type Cloud,
  cli,
  enrollAgent,
  type Proc,
  startAgent,
  startCloud,
  terminalStatus,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/** Issue 3: enroll + run + Online in the cloud + `status --json` online; key 0600 and never logged. */
describe('enroll, run, online', () => {
  let cloud: Cloud;
  let agent: Proc;
  let enrolled: Awaited<ReturnType<typeof enrollAgent>>;

  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
    enrolled = await enrollAgent(cloud, agentDirs());
    agent = startAgent(enrolled.dirs);
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('goes online in the cloud and in `posagent status --json`', async () => {
    await waitFor(
      async () => (await terminalStatus(cloud, enrolled.terminalId)) === 'online',
      'cloud status online',
    );
    const t = await cloud.api<Record<string, unknown>>('GET', `/v1/terminals/${enrolled.terminalId}`);
    expect(t.body).toMatchObject({
      id: enrolled.terminalId,
      object: 'terminal',
      name: 'Front Register 1',
      connected: true,
      softwareVersion: '0.1.0',
    });
    const status = await waitFor(async () => {
      const r = await cli(['status', '--json', ...enrolled.dirs.flags]);
      const doc = r.json<{ link: { state: string; lastHeartbeatAt: string | null } }>();
      return r.code === 0 && doc.link.state === 'online' && doc.link.lastHeartbeatAt ? doc : undefined;
    }, 'status --json link.state online with a heartbeat');
    expect(status).toMatchObject({
      enrolled: true,
      terminalId: enrolled.terminalId,
      daemon: 'running',
      locked: false,
    });
    const list = await cloud.api<{ uniqueTerminalIds: string[] }>('POST', '/v1/connectedTerminals', {});
    expect(list.body.uniqueTerminalIds).toContain(enrolled.terminalId);
  });

  it('carries health in heartbeats to the cloud', async () => {
    const t = await waitFor(async () => {
      const r = await cloud.api<{
        health: { uptimeSec: number; memory: { agentRssBytes: number }; disk: { totalBytes: number } } | null;
      }>('GET', `/v1/terminals/${enrolled.terminalId}`);
      return r.body.health ?? undefined;
    }, 'a heartbeat with health');
    expect(t.uptimeSec).toBeGreaterThan(0);
    expect(t.memory.agentRssBytes).toBeGreaterThan(0);
    expect(t.disk.totalBytes).toBeGreaterThan(0);
  });

  it('keeps the key 0600 in a 0700 dir, and never writes it to any log or output', () => {
    const { stateDir } = enrolled.dirs;
    const keyFile = join(stateDir, 'keys', 'client.key');
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(stateDir, 'keys')).mode & 0o777).toBe(0o700);
    const keyBody = readFileSync(keyFile, 'utf8').split('\n')[1]!;
    expect(keyBody.length).toBeGreaterThan(40);
    for (const text of [
      agent.output(),
      agent.stderr(),
      cloud.proc.output(),
      cloud.proc.stderr(),
      enrolled.enrollOutput,
    ]) {
      expect(text).not.toContain(keyBody);
      expect(text).not.toContain('PRIVATE KEY');
    }
  });

  it('stops on SIGTERM with exit 0, says goodbye (cloud: offline), and status then reads the store', async () => {
    agent.child.kill('SIGTERM');
    expect((await agent.exited).code).toBe(0);
    await waitFor(
      async () => (await terminalStatus(cloud, enrolled.terminalId)) === 'offline',
      'cloud status offline after a clean close',
    );
    const r = await cli(['status', '--json', ...enrolled.dirs.flags]);
    expect(r.code).toBe(0);
    const doc = r.json<{
      daemon: string;
      link: { state: string; lastHeartbeatAt: string | null };
      terminalId: string;
    }>();
    expect(doc.daemon).toBe('stopped');
    expect(doc.link.state).toBe('offline');
    expect(doc.link.lastHeartbeatAt).not.toBeNull();
    expect(doc.terminalId).toBe(enrolled.terminalId);
    expect(readdirSync(enrolled.dirs.runtimeDir)).not.toContain('api.sock');
  });

  it('status on a terminal that was never enrolled exits 3', async () => {
    const r = await cli(['status', '--json', ...agentDirs().flags]);
    expect(r.code).toBe(3);
    expect(r.json()).toMatchObject({ enrolled: false, daemon: 'stopped' });
  });
});
