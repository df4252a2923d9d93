import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import { prepareCrashLoopTerminal, runCrashLoop } from '../../harness/crash-loop.js';
import {
  type Cloud,
  configureAndWait,
  enrollAgent,
  restartCloud,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const CYCLES = Number(process.env.CRASH_CYCLES ?? 200);

/** Issue 5: never lost, never twice — under SIGKILL of the agent and of the cloud. */
describe('transactions under crashes', () => {
  const cleanup: (() => unknown)[] = [];
  afterAll(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it(`SIGKILL of the agent at random points, ${CYCLES} cycles: every acknowledged id in the cloud exactly once, in seq order`, async () => {
    const cloud = await startCloud(['--heartbeat-interval', '30']);
    cleanup.push(() => cloud.stop());
    const a = await prepareCrashLoopTerminal(cloud);
    const { report } = await runCrashLoop(cloud, a.terminalId, a.dirs, CYCLES);
    process.stderr.write(
      `crash loop: ${JSON.stringify({ ...report, lost: report.lost.length, duplicated: report.duplicated.length })}\n`,
    );
    expect(report.cycles).toBe(CYCLES);
    expect(report.acknowledged).toBeGreaterThan(CYCLES);
    expect(report.lost).toEqual([]);
    expect(report.duplicated).toEqual([]);
    expect(report.outOfOrder).toBe(0);
  }, 600_000);

  it(
    `with the cloud SIGKILLed too, configs pushed and actions queued each cycle (${Math.ceil(CYCLES / 5)} cycles): nothing lost, twice or unreported`,
    async () => {
      const cloud = await startCloud(['--heartbeat-interval', '30']);
      const a = await prepareCrashLoopTerminal(cloud);
      const run = await runCrashLoop(cloud, a.terminalId, a.dirs, Math.ceil(CYCLES / 5), { chaos: true });
      cleanup.push(() => run.cloud.stop());
      const r = run.report;
      process.stderr.write(
        `chaos loop: ${JSON.stringify({ ...r, lost: r.lost.length, duplicated: r.duplicated.length })}\n`,
      );
      expect(r.cloudKills).toBeGreaterThan(0);
      expect(r.lost).toEqual([]);
      expect(r.duplicated).toEqual([]);
      expect(r.outOfOrder).toBe(0);
      expect(r.configAcked).toBe(true);
      expect(r.actions.unfinished).toBe(0);
      expect(r.actions.completed).toBe(r.actions.queued);
      // The identity is still good: a fresh start goes online.
      const agent = startAgent(a.dirs);
      cleanup.push(() => agent.child.kill('SIGKILL'));
      await waitForLink(a.dirs);
    },
    Math.max(600_000, CYCLES * 2_000),
  );

  it('the cloud killed mid-batch: no loss, no duplicate', async () => {
    let cloud: Cloud = await startCloud(['--heartbeat-interval', '30']);
    cleanup.push(() => cloud.stop());
    const a = await enrollAgent(cloud);
    let agent = startAgent(a.dirs);
    cleanup.push(() => agent.child.kill('SIGKILL'));
    await waitForLink(a.dirs);
    await configureAndWait(cloud, a.terminalId, {
      offlineMode: { enabled: true, maxAmount: 100_000, maxQueue: 10_000 },
    });
    // Build a backlog while the cloud is away.
    cloud.proc.child.kill('SIGKILL');
    await cloud.proc.exited;
    await waitForLink(a.dirs, (s) => s !== 'online');
    agent.child.kill('SIGKILL');
    await agent.exited;
    agent = startAgent(a.dirs);
    const socket = `${a.dirs.runtimeDir}/api.sock`;
    await waitFor(() => localApiRequest(socket, 'GET', '/v1/status').then(() => true), 'local API');
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const id = randomUUID();
      const r = await localApiRequest(socket, 'POST', '/v1/transactions', {
        id,
        amount: 100 + (i % 7),
        currency: 'EUR',
      });
      expect(r.status).toBe(201);
      ids.push(id);
    }
    // Cloud back; kill it while it is part-way through the backlog.
    cloud = await restartCloud(cloud);
    await localApiRequest(socket, 'POST', '/v1/queue/flush');
    const count = async () =>
      (await cloud.api<{ data: unknown[] }>('GET', `/v1/transactions?terminalId=${a.terminalId}`)).body.data
        .length;
    const partial = await waitFor(
      async () => {
        const n = await count();
        return n > 0 ? n : undefined;
      },
      'the drain to start',
      20_000,
      2,
    );
    cloud.proc.child.kill('SIGKILL');
    await cloud.proc.exited;
    process.stderr.write(`cloud killed with ${partial} of ${ids.length} received\n`);
    cloud = await restartCloud(cloud);
    await localApiRequest(socket, 'POST', '/v1/queue/flush');
    const txs = await waitFor(
      async () => {
        const data = (
          await cloud.api<{ data: { id: string; seq: number }[] }>(
            'GET',
            `/v1/transactions?terminalId=${a.terminalId}`,
          )
        ).body.data;
        return data.length >= ids.length ? data : undefined;
      },
      'the whole backlog in the cloud',
      60_000,
      100,
    );
    expect(partial).toBeLessThan(ids.length);
    expect(txs.map((t) => t.id).sort()).toEqual([...ids].sort());
    expect(new Set(txs.map((t) => t.id)).size).toBe(txs.length);
    for (let i = 1; i < txs.length; i++) expect(txs[i]!.seq).toBeGreaterThan(txs[i - 1]!.seq);
  }, 180_000);
});
