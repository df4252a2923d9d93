import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonUnavailableError, localApiRequest } from '../agent/local-api/local-api-client.js';
import {
  type AgentDirs,
  type Cloud,
  configureAndWait,
  enrollAgent,
  restartCloud,
  startAgent,
  waitForLink,
} from './local-fleet.js';
import { waitFor } from './wait-for.js';

/**
 * The crash loop shared by the e2e test (≥ 200 cycles) and the soak bench (longer): a POS-app
 * client submits transactions through the local API while the agent is SIGKILLed at random
 * points and the cloud drains. With `chaos`, each cycle also pushes a config and queues a lock or
 * unlock action, and one cycle in five SIGKILLs the cloud at a random point too (restarted on the
 * same port and data). At the end every id answered 201/200 must be in the cloud exactly once, in
 * seq order; every config the cloud pushed acknowledged; every action reported final.
 */
export interface CrashLoopReport {
  cycles: number;
  cloudKills: number;
  configPushes: number;
  /** The cloud's view at the end: the last pushed version applied (its ack arrived). */
  configAcked: boolean;
  actions: { queued: number; completed: number; failed: number; unfinished: number };
  submitted: number;
  acknowledged: number;
  inCloud: number;
  lost: string[];
  duplicated: string[];
  outOfOrder: number;
  redeliveries: number;
}

interface CloudTx {
  id: string;
  seq: number;
  deliveries: number;
}

/**
 * An enrolled terminal ready for the crash loop: offline mode on (large limits), so that
 * submissions before the link is up are taken too and every kill point counts. Daemon stopped.
 */
export async function prepareCrashLoopTerminal(
  cloud: Cloud,
): Promise<{ terminalId: string; dirs: AgentDirs }> {
  const a = await enrollAgent(cloud);
  const first = startAgent(a.dirs);
  await waitForLink(a.dirs);
  await configureAndWait(cloud, a.terminalId, {
    offlineMode: { enabled: true, maxAmount: 100_000, maxQueue: 100_000 },
  });
  first.child.kill('SIGTERM');
  await first.exited;
  return { terminalId: a.terminalId, dirs: a.dirs };
}

export interface CrashLoopOptions {
  random?: () => number;
  onCycle?(i: number): void;
  /** Also push configs, queue actions and kill the cloud now and then. */
  chaos?: boolean;
}

export async function runCrashLoop(
  cloudAtStart: Cloud,
  terminalId: string,
  dirs: AgentDirs,
  cycles: number,
  o: CrashLoopOptions = {},
): Promise<{ report: CrashLoopReport; cloud: Cloud }> {
  const random = o.random ?? Math.random;
  let cloud = cloudAtStart;
  const socket = `${dirs.runtimeDir}/api.sock`;
  const acknowledged = new Set<string>();
  const actionIds: string[] = [];
  let submitted = 0;
  let cloudKills = 0;
  let configPushes = 0;
  for (let i = 0; i < cycles; i++) {
    let cloudKill: Promise<void> | null = null;
    if (o.chaos) {
      // The cloud's side of the cycle: a config to acknowledge, an action to report.
      const pushed = await cloud.api('POST', `/v1/terminals/${terminalId}/configure`, {
        display: { idleMessage: `cycle ${i}` },
      });
      if (pushed.status === 200) configPushes++;
      // Locked only between these two: sales go on in most of the cycle.
      for (const type of ['lock', 'unlock']) {
        const action = await cloud.api<{ id: string }>('POST', `/v1/terminals/${terminalId}/actions`, {
          type,
        });
        if (action.status === 201) actionIds.push(action.body.id);
      }
      if (random() < 0.2) {
        const victim = cloud;
        cloudKill = sleep(Math.floor(random() * 400)).then(async () => {
          victim.proc.child.kill('SIGKILL');
          await victim.proc.exited;
        });
        cloudKills++;
      }
    }
    const agent = startAgent(dirs);
    let stop = false;
    const exited = agent.exited.then(() => {
      stop = true;
    });
    // Wait for the socket, then submit in a loop until the kill lands at a random point.
    await waitFor(
      async () =>
        stop ||
        (await localApiRequest(socket, 'GET', '/v1/status', undefined, 1000).then(
          () => true,
          () => false,
        )),
      'the local API',
    );
    const killAfter = 5 + Math.floor(random() * 400);
    const killer = sleep(killAfter).then(() => agent.child.kill('SIGKILL'));
    while (!stop) {
      const id = randomUUID();
      submitted++;
      try {
        const r = await localApiRequest<unknown>(
          socket,
          'POST',
          '/v1/transactions',
          { id, amount: 100 + (submitted % 50), currency: 'EUR' },
          1000,
        );
        if (r.status === 201 || r.status === 200) acknowledged.add(id);
      } catch (err) {
        // Refused connection: the daemon is gone and nothing was submitted. Anything else: killed
        // mid-request, not acknowledged, so no promise was made to the POS app.
        if (err instanceof DaemonUnavailableError) {
          submitted--;
          break;
        }
      }
    }
    await killer;
    await exited;
    if (cloudKill) {
      await cloudKill;
      cloud = await restartCloud(cloud);
    }
    o.onCycle?.(i);
  }
  // A last, undisturbed run drains everything.
  const agent = startAgent(dirs);
  let txs: CloudTx[] = [];
  const settled = async () => {
    if (!o.chaos) return true;
    const c = (
      await cloud.api<{ version: number; appliedVersion: number | null }>(
        'GET',
        `/v1/terminals/${terminalId}/config`,
      )
    ).body;
    if (c.appliedVersion !== c.version) return false;
    const list = (
      await cloud.api<{ data: { id: string; status: string }[] }>(
        'GET',
        `/v1/terminals/${terminalId}/actions`,
      )
    ).body.data;
    return list.every((a) => a.status === 'completed' || a.status === 'failed');
  };
  try {
    await waitFor(
      async () => {
        txs = (await cloud.api<{ data: CloudTx[] }>('GET', `/v1/transactions?terminalId=${terminalId}`)).body
          .data;
        const have = new Set(txs.map((t) => t.id));
        return [...acknowledged].every((id) => have.has(id)) && (await settled());
      },
      'every acknowledged transaction in the cloud',
      60_000,
      200,
    );
  } catch {
    // report what is missing instead of only timing out
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
  }
  const counts = new Map<string, number>();
  for (const t of txs) counts.set(t.id, (counts.get(t.id) ?? 0) + 1);
  let outOfOrder = 0;
  for (let i = 1; i < txs.length; i++) if (txs[i]!.seq <= txs[i - 1]!.seq) outOfOrder++;
  const config = (
    await cloud.api<{ version: number; appliedVersion: number | null }>(
      'GET',
      `/v1/terminals/${terminalId}/config`,
    )
  ).body;
  // Actions beyond the cloud's list page (100) are checked one by one.
  const statuses = await Promise.all(
    actionIds.map(
      async (id) =>
        (await cloud.api<{ status: string }>('GET', `/v1/terminals/${terminalId}/actions/${id}`)).body.status,
    ),
  );
  const report: CrashLoopReport = {
    cycles,
    cloudKills,
    configPushes,
    configAcked: config.appliedVersion === config.version,
    actions: {
      queued: actionIds.length,
      completed: statuses.filter((x) => x === 'completed').length,
      failed: statuses.filter((x) => x === 'failed').length,
      unfinished: statuses.filter((x) => x !== 'completed' && x !== 'failed').length,
    },
    submitted,
    acknowledged: acknowledged.size,
    inCloud: txs.length,
    lost: [...acknowledged].filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    outOfOrder,
    redeliveries: txs.reduce((n, t) => n + t.deliveries - 1, 0),
  };
  return { report, cloud };
}
