import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { DaemonUnavailableError, localApiRequest } from '../agent/local-api-client.js';
import {
  type AgentDirs,
  type Cloud,
  configureAndWait,
  enrollAgent,
  startAgent,
  waitForLink,
} from './local-fleet.js';
import { waitFor } from './wait-for.js';

/**
 * The crash loop shared by the e2e test (≥ 200 cycles) and the soak bench (longer): a POS-app
 * client submits transactions through the local API while the agent is SIGKILLed at random
 * points and the cloud drains. At the end every id answered 201/200 must be in the cloud
 * exactly once, in seq order.
 */
export interface CrashLoopReport {
  cycles: number;
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

export async function runCrashLoop(
  cloud: Cloud,
  terminalId: string,
  dirs: AgentDirs,
  cycles: number,
  random: () => number = Math.random,
  onCycle?: (i: number) => void,
): Promise<CrashLoopReport> {
  const socket = `${dirs.runtimeDir}/api.sock`;
  const acknowledged = new Set<string>();
  let submitted = 0;
  for (let i = 0; i < cycles; i++) {
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
    onCycle?.(i);
  }
  // A last, undisturbed run drains everything.
  const agent = startAgent(dirs);
  let txs: CloudTx[] = [];
  try {
    await waitFor(
      async () => {
        txs = (await cloud.api<{ data: CloudTx[] }>('GET', `/v1/transactions?terminalId=${terminalId}`)).body
          .data;
        const have = new Set(txs.map((t) => t.id));
        return [...acknowledged].every((id) => have.has(id));
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
  return {
    cycles,
    submitted,
    acknowledged: acknowledged.size,
    inCloud: txs.length,
    lost: [...acknowledged].filter((id) => !counts.has(id)),
    duplicated: [...counts].filter(([, n]) => n > 1).map(([id]) => id),
    outOfOrder,
    redeliveries: txs.reduce((n, t) => n + t.deliveries - 1, 0),
  };
}
