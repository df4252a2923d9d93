import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket as WsClient } from 'ws';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import {
  type Cloud,
  configureAndWait,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  restartCloud,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 18.8 and 18.6: the link's lifecycle against the real cloud — the backoff after a stable
 * link, a deactivated terminal, another protocol version, and the pushed agent settings that are
 * applied live (ping interval, renewal check).
 */
interface Status {
  link: { state: string; reason?: string; lastHeartbeatAt: string | null };
  deactivated?: { at: string; reason: string };
  certificate: { renewal?: { nextAttemptAt: string | null } };
}

const retriesLogged = (agent: Proc) =>
  agent
    .output()
    .split('\n')
    .filter((l) => l.includes('link down; reconnecting after backoff'))
    .map((l) => JSON.parse(l) as { attempt: number; delayMs: number; upForMs: number | null });

describe('link lifecycle', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
  });
  afterAll(() => cloud?.stop());

  it('after a link that stayed up, the first retry is drawn from the attempt-0 range, not the capped one', async () => {
    const a = await enrollAgent(cloud);
    const env = {
      POSAGENT_RECONNECT_BASE_MS: '100',
      POSAGENT_RECONNECT_CAP_MS: '60000',
      POSAGENT_STABLE_AFTER_MS: '1500',
    };
    await cloud.stop();
    const agent = startAgent(a.dirs, [], env);
    try {
      // The cloud is away: the attempts climb (0, 1, 2, … — delays up to 100 ms · 2ⁿ).
      await waitFor(() => (retriesLogged(agent).length >= 6 ? true : undefined), 'six failed attempts');
      expect(
        retriesLogged(agent)
          .map((r) => r.attempt)
          .slice(0, 6),
      ).toEqual([0, 1, 2, 3, 4, 5]);
      cloud = await restartCloud(cloud);
      await waitForLink(a.dirs, undefined, 90_000);
      // Online for longer than stableAfterMs: three heartbeats a second apart.
      const socket = `${a.dirs.runtimeDir}/api.sock`;
      const beats = new Set<string>();
      await waitFor(async () => {
        const s = (await localApiRequest<Status>(socket, 'GET', '/v1/status')).body;
        if (s.link.lastHeartbeatAt) beats.add(s.link.lastHeartbeatAt);
        return beats.size >= 3 ? true : undefined;
      }, 'three heartbeats');
      const before = retriesLogged(agent).length;
      // A blip (the cloud dies without a close frame): the first retry is attempt 0 again.
      cloud.proc.child.kill('SIGKILL');
      await cloud.proc.exited;
      const first = await waitFor(() => retriesLogged(agent)[before], 'the first retry after the blip');
      expect(first.upForMs).toBeGreaterThanOrEqual(1500);
      expect(first.attempt).toBe(0);
      expect(first.delayMs).toBeLessThan(100);
    } finally {
      agent.child.kill('SIGKILL');
      cloud = await restartCloud(cloud);
    }
  });

  it('deactivated while online: the agent records it, stops reconnecting and refuses sales with a code (also after a restart)', async () => {
    const a = await enrollAgent(cloud);
    const witness = await enrollAgent(cloud);
    const socket = `${a.dirs.runtimeDir}/api.sock`;
    let agent = startAgent(a.dirs);
    const other = startAgent(witness.dirs);
    try {
      await waitForLink(a.dirs);
      await waitForLink(witness.dirs);
      const sale = { id: randomUUID(), amount: 1200, currency: 'EUR' };
      expect((await localApiRequest(socket, 'POST', '/v1/transactions', sale)).status).toBe(201);
      const r = await cloud.api('POST', `/v1/terminals/${a.terminalId}/deactivate`, { reason: 'stolen' });
      expect(r.status).toBe(200);
      // Recorded before the answer to Deactivate; the link stops right after the answer went out.
      const s = await waitFor(async () => {
        const st = (await localApiRequest<Status>(socket, 'GET', '/v1/status')).body;
        return st.deactivated && st.link.state === 'error' ? st : undefined;
      }, 'the deactivation in status, and the link stopped');
      expect(s.link.state).toBe('error');
      expect(s.link.reason).toMatch(/deactivated this terminal \(stolen\)/);
      expect(s.deactivated?.reason).toBe('stolen');
      // A new sale is refused with a code, nothing stored; a repeat of an earlier one is still answered.
      const refused = await localApiRequest<{ error: { code: string; message: string } }>(
        socket,
        'POST',
        '/v1/transactions',
        { id: randomUUID(), amount: 500, currency: 'EUR' },
      );
      expect(refused.status).toBe(410);
      expect(refused.body.error.code).toBe('terminal_deactivated');
      expect(refused.body.error.message).toMatch(/stolen/);
      expect((await localApiRequest(socket, 'POST', '/v1/transactions', sale)).status).toBe(200);
      const listed = await localApiRequest<{ data: unknown[] }>(socket, 'GET', '/v1/transactions');
      expect(listed.body.data).toHaveLength(1);
      // It stops reconnecting: while the other terminal sends three heartbeats (≥ 2 s, ten
      // retries' worth at this backoff), this one makes no attempt at all.
      const attempts = retriesLogged(agent).length;
      const refusedAtCloud = cloud.proc.stderr().match(/terminal_deactivated/g)?.length ?? 0;
      await heartbeats(witness.dirs.runtimeDir, 3);
      expect(retriesLogged(agent).length).toBe(attempts);
      expect(cloud.proc.stderr().match(/terminal_deactivated/g)?.length ?? 0).toBe(refusedAtCloud);

      // After a restart: still deactivated, no link attempt, sales refused.
      agent.child.kill('SIGTERM');
      await agent.exited;
      agent = startAgent(a.dirs);
      await waitFor(async () => {
        const st = await localApiRequest<Status>(socket, 'GET', '/v1/status').catch(() => null);
        return st?.body.deactivated ? true : undefined;
      }, 'the restarted agent up');
      await heartbeats(witness.dirs.runtimeDir, 2);
      expect(agent.output()).not.toMatch(/link down; reconnecting|link online/);
      expect(cloud.proc.stderr().match(/terminal_deactivated/g)?.length ?? 0).toBe(refusedAtCloud);
      expect(
        (
          await localApiRequest(socket, 'POST', '/v1/transactions', {
            id: randomUUID(),
            amount: 1,
            currency: 'EUR',
          })
        ).status,
      ).toBe(410);
    } finally {
      agent.child.kill('SIGKILL');
      other.child.kill('SIGKILL');
    }
  });

  it('deactivated while the agent was away: the first link is refused (403 terminal_deactivated) and it stops there', async () => {
    const a = await enrollAgent(cloud);
    const witness = await enrollAgent(cloud);
    const other = startAgent(witness.dirs);
    await cloud.api('POST', `/v1/terminals/${a.terminalId}/deactivate`, { reason: 'store closed' });
    const refusedBefore = cloud.proc.stderr().match(/terminal_deactivated/g)?.length ?? 0;
    const agent = startAgent(a.dirs);
    try {
      const socket = `${a.dirs.runtimeDir}/api.sock`;
      const s = await waitFor(async () => {
        const st = await localApiRequest<Status>(socket, 'GET', '/v1/status').catch(() => null);
        return st?.body.deactivated && st.body.link.state === 'error' ? st.body : undefined;
      }, 'the deactivation learnt from the refusal');
      expect(s.link.state).toBe('error');
      expect(s.deactivated?.reason).toMatch(/store closed/);
      await waitForLink(witness.dirs);
      await heartbeats(witness.dirs.runtimeDir, 3);
      // exactly one refused attempt
      expect((cloud.proc.stderr().match(/terminal_deactivated/g)?.length ?? 0) - refusedBefore).toBe(1);
      expect(retriesLogged(agent)).toEqual([]);
    } finally {
      agent.child.kill('SIGKILL');
      other.child.kill('SIGKILL');
    }
  });

  it('the cloud refuses a Hello with another protocolVersion (NotSupported, the versions it speaks) and closes 4002', async () => {
    const a = await enrollAgent(cloud);
    const ws = new WsClient(`${cloud.url.replace('https', 'wss')}/v1/agent`, 'posagent.v1', {
      ca: readFileSync(cloud.caFile, 'utf8'),
      key: readFileSync(join(a.dirs.stateDir, 'keys/client.key'), 'utf8'),
      cert: readFileSync(join(a.dirs.stateDir, 'certs/client.crt'), 'utf8'),
    });
    const got: unknown[][] = [];
    ws.on('message', (d) => got.push(JSON.parse(d.toString()) as unknown[]));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    await new Promise((r) => ws.once('open', r));
    ws.send(
      JSON.stringify([
        2,
        'h1',
        'Hello',
        {
          terminalId: a.terminalId,
          softwareVersion: '9.0.0',
          protocolVersion: 2,
          configVersion: null,
          bootId: 'b',
          queueDepth: 0,
          openActions: [],
          clock: new Date().toISOString(),
        },
      ]),
    );
    const answer = await waitFor(() => got[0], 'the answer to Hello');
    expect(answer.slice(0, 3)).toEqual([4, 'h1', 'NotSupported']);
    expect(answer[3]).toMatch(/protocol version 2 is not supported/);
    expect(answer[4]).toEqual({ supportedVersions: [1] });
    expect(await closed).toBe(4002);
  });

  it('pushed agent.pingIntervalSec applies to the link that is up; agent.renewalCheckHours moves the next check', async () => {
    const a = await enrollAgent(cloud);
    let proxy: FaultProxy | undefined;
    let agent: Proc | undefined;
    try {
      proxy = await startFaultProxy(cloud.port);
      agent = startAgent(a.dirs, ['--cloud-url', proxy.url], FAST_RECONNECT);
      await waitForLink(a.dirs);
      const socket = `${a.dirs.runtimeDir}/api.sock`;
      await configureAndWait(cloud, a.terminalId, { agent: { pingIntervalSec: 1, renewalCheckHours: 1 } });
      const afterPush = proxy.connections.length;
      const renewal = (await localApiRequest<Status>(socket, 'GET', '/v1/status')).body.certificate.renewal;
      const next = Date.parse(renewal?.nextAttemptAt ?? '') - Date.now();
      expect(next).toBeLessThanOrEqual(3_600_000);
      expect(next).toBeGreaterThan(3_500_000);
      // The same link (no reconnect since the push) goes half-open: given up within 2 s, not
      // within the 22 s the Hello answer's 15 s interval would take. (Once it is given up the agent
      // may already be dialling again before the status poll sees it: only "before" is counted.)
      expect(proxy.connections.length).toBe(afterPush);
      proxy.set({ kind: 'blackhole' });
      const t0 = Date.now();
      const down = await waitFor(
        async () => {
          const l = (await localApiRequest<Status>(socket, 'GET', '/v1/status')).body.link;
          return l.state !== 'online' ? l : undefined;
        },
        'the half-open link given up',
        15_000,
        20,
      );
      expect(down.reason).toMatch(/ping interval 1000 ms/);
      expect(Date.now() - t0).toBeLessThanOrEqual(2000);
    } finally {
      agent?.child.kill('SIGKILL');
      await proxy?.close();
    }
  });
});

/** Waits until a running terminal has sent `n` more heartbeats (its clock moving, not ours). */
async function heartbeats(runtimeDir: string, n: number): Promise<void> {
  const socket = `${runtimeDir}/api.sock`;
  const seen = new Set<string>();
  await waitFor(async () => {
    const s = (await localApiRequest<Status>(socket, 'GET', '/v1/status')).body;
    if (s.link.lastHeartbeatAt) seen.add(s.link.lastHeartbeatAt);
    return seen.size > n ? true : undefined;
  }, `${n} heartbeats of another terminal`);
}
