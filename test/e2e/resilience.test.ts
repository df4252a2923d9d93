import { afterAll, describe, expect, it } from 'vitest';
import {
  type Cloud,
  cli,
  enrollAgent,
  type Proc,
  restartCloud,
  startAgent,
  startCloud,
  terminalStatus,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/** Issue 3: the agent comes back by itself after a cloud restart; the cloud notices a dead agent per its thresholds. */
describe('resilience', () => {
  const cleanup: (() => unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('cloud restarted → agent online again without help', async () => {
    let cloud: Cloud = await startCloud(['--heartbeat-interval', '1']);
    cleanup.push(() => cloud.stop());
    const a = await enrollAgent(cloud);
    const agent: Proc = startAgent(a.dirs);
    cleanup.push(() => agent.child.kill('SIGKILL'));
    await waitFor(
      async () => (await terminalStatus(cloud, a.terminalId)) === 'online',
      'online before the restart',
    );

    await cloud.stop();
    await waitFor(async () => {
      const r = await cli(['status', '--json', ...a.dirs.flags]);
      return r.json<{ link: { state: string } }>().link.state !== 'online';
    }, 'the agent to notice the cloud went away');
    cloud = await restartCloud(cloud);
    const connected = await waitFor(async () => {
      const t = await cloud.api<{ connected: boolean; status: string }>(
        'GET',
        `/v1/terminals/${a.terminalId}`,
      );
      return t.body.connected && t.body.status === 'online' ? t.body : undefined;
    }, 'online again after the restart');
    expect(connected.status).toBe('online');
    expect(agent.output()).toMatch(/cloud closed the link \(1012: cloud restarting\)/);
  });

  it('agent killed → cloud status needs_attention, then offline, per the thresholds', async () => {
    const cloud = await startCloud([
      '--heartbeat-interval',
      '1',
      '--at-risk-after',
      '3',
      '--offline-after',
      '6',
    ]);
    cleanup.push(() => cloud.stop());
    const a = await enrollAgent(cloud);
    const agent = startAgent(a.dirs);
    await waitFor(async () => (await terminalStatus(cloud, a.terminalId)) === 'online', 'online');
    agent.child.kill('SIGKILL');
    await agent.exited;
    const seen: string[] = [];
    await waitFor(
      async () => {
        const s = await terminalStatus(cloud, a.terminalId);
        if (seen.at(-1) !== s) seen.push(s);
        return s === 'offline';
      },
      'offline after --offline-after',
      20_000,
    );
    // online (until 3 s without a heartbeat) → needs_attention (3 s) → offline (6 s); never offline first.
    expect(seen.filter((s) => s !== 'online')).toEqual(['needs_attention', 'offline']);
    const t = await cloud.api<{ connected: boolean }>('GET', `/v1/terminals/${a.terminalId}`);
    expect(t.body.connected).toBe(false);
  });
});
