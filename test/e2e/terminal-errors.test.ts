import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expiredCopy } from '../support/expired-certificate.js';
import {
  type AgentDirs,
  type Cloud,
  cli,
  enrollAgent,
  enrollWithCli,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 20, Must show 2: `error` with the right reason for an expired certificate, a revoked
 * certificate and a device clock two days off, each seen by the real cloud from a real agent's
 * link; the status history (`GET /v1/terminals/{id}/events`) shows each change.
 */
interface Terminal {
  status: string;
  statusReason: string | null;
  statusSince: number | null;
  connected: boolean;
  lastSeen: number | null;
}
interface Event {
  id: string;
  status: string;
  previousStatus: string | null;
  reason: string | null;
  at: number;
}

describe('status error with its reason, and the status history', () => {
  let cloud: Cloud;
  const running: Proc[] = [];
  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1', '--status-sweep-ms', '200']);
  });
  afterAll(async () => {
    for (const p of running)
      if (p.child.exitCode === null) {
        p.child.kill('SIGTERM');
        await p.exited;
      }
    await cloud.stop();
  });
  const run = (dirs: AgentDirs) => {
    const p = startAgent(dirs);
    running.push(p);
    return p;
  };
  const stop = async (p: Proc) => {
    p.child.kill('SIGTERM');
    await p.exited;
  };
  const view = async (c: Cloud, id: string) => (await c.api<Terminal>('GET', `/v1/terminals/${id}`)).body;
  const events = async (c: Cloud, id: string) =>
    (await c.api<{ data: Event[]; has_more: boolean }>('GET', `/v1/terminals/${id}/events?limit=100`)).body
      .data;
  const statusIs = (c: Cloud, id: string, status: string, reason?: string) =>
    waitFor(
      async () => {
        const t = await view(c, id);
        return t.status === status && (reason === undefined || t.statusReason === reason) ? t : undefined;
      },
      `${status}${reason ? ` (${reason})` : ''}`,
    );

  it('an expired certificate: the refused link makes the terminal error/certificate_expired; reprovisioning ends it', async () => {
    const a = await enrollAgent(cloud);
    let agent = run(a.dirs);
    await waitForLink(a.dirs);
    await statusIs(cloud, a.terminalId, 'online');
    await stop(agent);
    // The device's certificate has expired (a copy from the test CA, same key and subject).
    const certFile = join(a.dirs.stateDir, 'certs/client.crt');
    writeFileSync(
      certFile,
      expiredCopy(
        readFileSync(certFile, 'utf8'),
        readFileSync(join(cloud.dataDir, 'ca.crt'), 'utf8'),
        readFileSync(join(cloud.dataDir, 'ca.key'), 'utf8'),
      ),
    );
    const before = Math.floor(Date.now() / 1000);
    agent = run(a.dirs);
    const t = await statusIs(cloud, a.terminalId, 'error', 'certificate_expired');
    expect(t.statusSince).toBeGreaterThanOrEqual(before);
    const esc = await cloud.api<{ statusReason: string; status: string }>(
      'GET',
      `/v1/terminals/${a.terminalId}/escalation`,
    );
    expect(esc.body).toMatchObject({ status: 'error', statusReason: 'certificate_expired' });
    const reason = await waitFor(async () => {
      const s = (await cli(['status', '--json', ...a.dirs.flags])).json<{
        link: { state: string; reason?: string };
      }>();
      return s.link.state === 'error' ? s.link.reason : undefined;
    }, 'the agent told why');
    expect(reason).toMatch(/expired/);
    await stop(agent);
    // Reprovision (PeakPOS: "certificate is expired and refresh is not available"): heartbeat resumes.
    const re = await cloud.api<{ code: string }>('POST', `/v1/terminals/${a.terminalId}/reprovision`);
    const again = await enrollWithCli(cloud, re.body.code, a.dirs, { extraArgs: ['--force'] });
    expect(again.json<{ terminalId: string }>().terminalId).toBe(a.terminalId);
    run(a.dirs);
    await statusIs(cloud, a.terminalId, 'online');
    const history = (await events(cloud, a.terminalId)).map((e) => [e.previousStatus, e.status, e.reason]);
    expect(history).toEqual([
      ['error', 'online', 'heartbeat'],
      ['offline', 'error', 'certificate_expired'],
      ['online', 'offline', 'link_closed'],
      ['provisioning', 'online', 'heartbeat'],
      [null, 'provisioning', null],
    ]);
  });

  it('a revoked certificate: the link closes at once, the certificate is refused, error/certificate_revoked', async () => {
    const a = await enrollAgent(cloud);
    run(a.dirs);
    await waitForLink(a.dirs);
    await statusIs(cloud, a.terminalId, 'online');
    const r = await cloud.api<Terminal>('POST', `/v1/terminals/${a.terminalId}/revoke-certificate`, {
      reason: 'key suspected leaked',
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'error', statusReason: 'certificate_revoked' });
    await waitFor(async () => !(await view(cloud, a.terminalId)).connected, 'the link closed');
    const reason = await waitFor(async () => {
      const s = (await cli(['status', '--json', ...a.dirs.flags])).json<{
        link: { state: string; reason?: string };
      }>();
      return s.link.state === 'error' && /revoked/.test(s.link.reason ?? '') ? s.link.reason : undefined;
    }, 'the agent refused with the reason');
    expect(reason).toMatch(/revoked/);
    expect((await view(cloud, a.terminalId)).status).toBe('error'); // its retries do not clear it
    const history = (await events(cloud, a.terminalId)).map((e) => [e.previousStatus, e.status, e.reason]);
    expect(history).toEqual([
      ['online', 'error', 'certificate_revoked'],
      ['provisioning', 'online', 'heartbeat'],
      [null, 'provisioning', null],
    ]);
    // Revoking again, or a deactivated terminal, is refused with a code; nothing changes.
    const again = await cloud.api<{ error: { code: string } }>(
      'POST',
      `/v1/terminals/${a.terminalId}/revoke-certificate`,
      { reason: 'x'.repeat(501) },
    );
    expect([again.status, again.body.error.code]).toEqual([400, 'invalid_request']);
    expect(await events(cloud, a.terminalId)).toHaveLength(3);
  });

  it('a device clock two days off: error/clock while its link is up; the history has it', async () => {
    // The device runs two days ahead of its cloud: a cloud whose clock runs two days behind (no faketime).
    const behind = await startCloud([
      '--heartbeat-interval',
      '1',
      '--status-sweep-ms',
      '200',
      '--clock-offset-sec',
      String(-2 * 86_400),
    ]);
    try {
      const a = await enrollAgent(behind);
      run(a.dirs);
      await waitForLink(a.dirs);
      const t = await statusIs(behind, a.terminalId, 'error', 'clock');
      expect(t.connected).toBe(true);
      expect(t.lastSeen).not.toBeNull(); // it heartbeats: the clock, not the link, is the problem
      const esc = await behind.api<{ clockSkewSec: number }>(
        'GET',
        `/v1/terminals/${a.terminalId}/escalation`,
      );
      expect(Math.abs(esc.body.clockSkewSec - 2 * 86_400)).toBeLessThan(60);
      const history = (await events(behind, a.terminalId)).map((e) => [e.previousStatus, e.status, e.reason]);
      expect(history).toEqual([
        ['provisioning', 'error', 'clock'],
        [null, 'provisioning', null],
      ]);
    } finally {
      await behind.stop();
    }
  });
});
