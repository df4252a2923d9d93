import { randomUUID } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import type { ActionProgress, ActionStatus } from '../../protocol/actions.js';
import { fakeReboot } from '../support/fake-reboot.js';
import {
  type Cloud,
  type CloudAction,
  cli,
  enrollAgent,
  FAST_RECONNECT,
  getAction,
  type Proc,
  queueAction,
  startAgent,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../support/processes.js';
import { serverTime, startScriptedCloud } from '../support/scripted-cloud.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 7: lock / unlock, reboot and busy leases through the real cloud and agent. The reboot
 * command is a fake that records its calls (the one thing a test cannot own); the boot id comes
 * from a file the test changes, as a real reboot would.
 */
describe('remote actions', () => {
  let cloud: Cloud;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  let agent: Proc;
  const device = fakeReboot();
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;
  // The recorded calls without their times: `reboot <boot id>`.
  const reboots = () => device.calls().map((c) => c.split(' ').slice(0, 2).join(' '));

  const run = () => startAgent(a.dirs, device.flags, FAST_RECONNECT);
  const act = async (type: string) => {
    const queued = await queueAction(cloud, a.terminalId, { type });
    expect(queued).toMatchObject({ object: 'terminal_action', type, status: 'queued' });
    return queued.id;
  };
  const action = (id: string) => getAction(cloud, a.terminalId, id);
  const until = (id: string, ok: (x: CloudAction) => boolean, what: string) =>
    waitForAction(cloud, a.terminalId, id, ok, what);
  const sale = () =>
    localApiRequest<{ state?: string; error?: { code: string; message: string } }>(
      socket(),
      'POST',
      '/v1/transactions',
      { id: randomUUID(), amount: 1250, currency: 'EUR' },
    );
  const kill = async () => {
    agent.child.kill('SIGKILL');
    await agent.exited;
  };

  beforeAll(async () => {
    cloud = await startCloud();
    a = await enrollAgent(cloud);
    agent = run();
    await waitForLink(a.dirs);
  });
  afterAll(async () => {
    agent.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('lock persists across kill -9 and restart; sales are refused while locked; unlock restores them', async () => {
    const lockId = await act('lock');
    await until(lockId, (x) => x.status === 'completed', 'the lock completed');
    expect((await cloud.api<{ locked: boolean }>('GET', `/v1/terminals/${a.terminalId}`)).body.locked).toBe(
      true,
    );
    const refused = await sale();
    expect(refused.status).toBe(423);
    expect(refused.body.error?.code).toBe('terminal_locked');

    await kill();
    // Locked with the daemon down too (read from the store)…
    expect((await cli(['status', '--json', ...a.dirs.flags])).json<{ locked: boolean }>().locked).toBe(true);
    agent = run();
    await waitForLink(a.dirs);
    // …and after the restart.
    expect((await localApiRequest<{ locked: boolean }>(socket(), 'GET', '/v1/status')).body.locked).toBe(
      true,
    );
    expect((await sale()).status).toBe(423);
    const before = (
      await cloud.api<{ data: unknown[] }>('GET', `/v1/transactions?terminalId=${a.terminalId}`)
    ).body.data.length;
    expect(before).toBe(0); // nothing refused was stored or forwarded

    const unlockId = await act('unlock');
    await until(unlockId, (x) => x.status === 'completed', 'the unlock completed');
    const ok = await sale();
    expect(ok.status).toBe(201);
    expect((await cloud.api<{ locked: boolean }>('GET', `/v1/terminals/${a.terminalId}`)).body.locked).toBe(
      false,
    );
  });

  it('reboot: processing → (killed, new boot id) → completed; same boot id → failed', async () => {
    const id = await act('reboot');
    await waitFor(() => reboots().length === 1, 'the reboot command to run');
    expect(reboots()).toEqual(['reboot boot-1']);
    const during = await until(id, (x) => x.step === 'rebooting', 'the rebooting step');
    expect(during.status).toBe('processing');

    // The "reboot": the process dies, the boot id changes, the agent starts again.
    await kill();
    device.newBoot('boot-2');
    agent = run();
    const done = await until(id, (x) => x.status === 'completed', 'the reboot completed');
    expect(done.step).toBe('rebooted');

    // A reboot command that did not reboot: the agent comes back under the same boot id.
    const second = await act('reboot');
    await waitFor(() => reboots().length === 2, 'the second reboot command');
    await until(second, (x) => x.step === 'rebooting', 'the rebooting step');
    await kill();
    agent = run();
    const failed = await until(second, (x) => x.status === 'failed', 'the reboot failed');
    expect(failed.reason).toMatch(/did not reboot.*same boot id/);
    expect(reboots()).toHaveLength(2); // never run again by the restart
  });

  it('a held busy lease defers a reboot; releasing it lets the reboot run', async () => {
    await waitForLink(a.dirs);
    const lease = await localApiRequest<{ leaseId: string; expiresAt: string; error?: { code: string } }>(
      socket(),
      'POST',
      '/v1/busy',
      { ttlSeconds: 600, reason: 'sale in progress' },
    );
    expect(lease.status).toBe(201);
    const bad = await localApiRequest<{ error: { code: string; message: string } }>(
      socket(),
      'POST',
      '/v1/busy',
      {
        ttlSeconds: 0,
      },
    );
    expect(bad.status).toBe(422);
    expect(bad.body.error).toMatchObject({
      code: 'invalid_lease',
      message: expect.stringMatching(/ttlSeconds/),
    });

    const n = reboots().length;
    const id = await act('reboot');
    const waiting = await until(id, (x) => x.step === 'waiting', 'the reboot waiting for the lease');
    expect(waiting.status).toBe('processing');
    expect(waiting.reason).toMatch(/busy lease: sale in progress/);
    expect(reboots()).toHaveLength(n);

    const released = await localApiRequest(socket(), 'DELETE', `/v1/busy/${lease.body.leaseId}`);
    expect(released.status).toBe(200);
    await waitFor(() => reboots().length === n + 1, 'the reboot after the lease was released');
    await until(id, (x) => x.step === 'rebooting', 'the rebooting step');
    const again = await localApiRequest<{ error: { code: string } }>(
      socket(),
      'DELETE',
      `/v1/busy/${lease.body.leaseId}`,
    );
    expect(again.status).toBe(404);
    expect(again.body.error.code).toBe('lease_not_found');
    await kill();
    device.newBoot(`boot-${n + 3}`);
    agent = run();
    await until(id, (x) => x.status === 'completed', 'the deferred reboot completed');
  });

  it('unknown action types and params are refused by the cloud with nothing queued', async () => {
    const before = (await cloud.api<{ data: unknown[] }>('GET', `/v1/terminals/${a.terminalId}/actions`)).body
      .data;
    const r = await cloud.api<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/terminals/${a.terminalId}/actions`,
      { type: 'selfdestruct' },
    );
    expect(r.status).toBe(400);
    expect(r.body.error.code).toBe('invalid_action');
    const u = await cloud.api<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/terminals/${a.terminalId}/actions`,
      { type: 'update', params: { version: '9.9.9' } },
    );
    expect(u.status).toBe(404);
    expect(u.body.error).toMatchObject({
      code: 'release_not_found',
      message: expect.stringContaining('9.9.9'),
    });
    const after = (await cloud.api<{ data: unknown[] }>('GET', `/v1/terminals/${a.terminalId}/actions`)).body
      .data;
    expect(after).toHaveLength(before.length);
  });

  it('an action for an offline terminal waits for its Hello; one never delivered expires', async () => {
    await kill();
    const lockId = await act('lock');
    const expiring = (await queueAction(cloud, a.terminalId, { type: 'unlock', ttlSeconds: 1 })).id;
    const expired = await until(expiring, (x) => x.status === 'failed', 'the unlock to expire');
    expect(expired.reason).toMatch(/expired/);
    expect((await action(lockId)).status).toBe('queued');
    agent = run();
    await until(lockId, (x) => x.status === 'completed', 'the lock delivered after Hello');
    const unlock = await act('unlock');
    await until(unlock, (x) => x.status === 'completed', 'unlocked');
  });
});

describe('remote actions: idempotency', () => {
  it('the same action id sent twice runs once and the repeat is answered with its status', async () => {
    const cloud = await startCloud();
    const a = await enrollAgent(cloud);
    const fakes = tempDir('fakes');
    const log = join(fakes, 'reboots.log');
    const cmd = join(fakes, 'fake-reboot');
    writeFileSync(cmd, `#!/bin/sh\necho reboot >> ${log}\n`);
    chmodSync(cmd, 0o755);
    const statuses: ActionStatus[] = [];
    const answers: ActionProgress[] = [];
    const peer = await startScriptedCloud(cloud.dataDir, (link) => ({
      Hello: () => {
        const run = {
          actionId: 'act_same',
          type: 'reboot' as const,
          params: {},
          expiresAt: '2099-01-01T00:00:00.000Z',
        };
        setImmediate(async () => {
          answers.push(await link().session.call('RunAction', run));
          answers.push(await link().session.call('RunAction', run));
        });
        return { serverTime: serverTime(), heartbeatIntervalSec: 30, pingIntervalSec: 15 };
      },
      Heartbeat: () => ({ serverTime: serverTime() }),
      ActionStatus: (s) => {
        statuses.push(s);
        return {};
      },
    }));
    const agent = startAgent(
      a.dirs,
      ['--cloud-url', peer.url, '--reboot-command', cmd, '--boot-id-file', join(fakes, 'none')],
      FAST_RECONNECT,
    );
    try {
      await waitFor(() => statuses.some((s) => s.step === 'rebooting'), 'the reboot to start');
      await waitFor(() => answers.length === 2, 'both answers');
      expect(answers[0]!.status).toBe('processing');
      expect(answers[1]!.status).toBe('processing');
      expect(readFileSync(log, 'utf8').trim().split('\n')).toEqual(['reboot']);
      // One status per step, not one per delivery.
      expect(statuses.filter((s) => s.step === null && s.status === 'processing')).toHaveLength(1);
    } finally {
      agent.child.kill('SIGKILL');
      peer.close();
      await cloud.stop();
    }
  });
});
