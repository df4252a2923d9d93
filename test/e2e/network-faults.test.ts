import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import {
  type Cloud,
  configureAndWait,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const PING_SEC = 1;

/**
 * Issue 11: the link through a proxy that misbehaves on purpose. A half-open link (nothing moves,
 * no FIN, no RST) is given up within 2× the ping interval; a cut in the middle of a drain loses and
 * duplicates nothing; reconnects against a cloud that resets every connection follow the backoff.
 */
describe('network faults', () => {
  let cloud: Cloud;
  let proxy: FaultProxy;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;
  const linkState = async () =>
    (await localApiRequest<{ link: { state: string; reason?: string } }>(socket(), 'GET', '/v1/status')).body
      .link;

  beforeAll(async () => {
    cloud = await startCloud(['--ping-interval', String(PING_SEC)]);
    a = await enrollAgent(cloud);
    proxy = await startFaultProxy(cloud.port);
    agent = startAgent(a.dirs, ['--cloud-url', proxy.url], FAST_RECONNECT);
    await waitForLink(a.dirs);
    await configureAndWait(cloud, a.terminalId, {
      offlineMode: { enabled: true, maxAmount: 100_000, maxQueue: 1000 },
    });
  });
  afterAll(async () => {
    agent.child.kill('SIGKILL');
    await proxy.close();
    await cloud.stop();
  });

  it('a half-open link is detected within 2× the ping interval', async () => {
    const figures: number[] = [];
    for (let i = 0; i < 3; i++) {
      await waitFor(async () => (await linkState()).state === 'online', 'online');
      proxy.set({ kind: 'blackhole' });
      const t0 = Date.now();
      const down = await waitFor(
        async () => {
          const l = await linkState();
          return l.state !== 'online' ? l : undefined;
        },
        'the half-open link given up',
        10_000,
        10,
      );
      figures.push(Date.now() - t0);
      expect(down.reason).toMatch(/liveness lost: no pong for \d+ ms/);
      proxy.set({ kind: 'pass' });
    }
    process.stdout.write(
      `half-open detection: ${figures.join(', ')} ms with pings every ${PING_SEC * 1000} ms (limit ${2 * PING_SEC * 1000} ms)\n`,
    );
    // Within 2× the interval (the design gives up at most 1.625× after the link went silent).
    for (const ms of figures) expect(ms).toBeLessThanOrEqual(2 * PING_SEC * 1000);
  });

  it('a cut in the middle of a drain loses nothing and duplicates nothing', async () => {
    await waitFor(async () => (await linkState()).state === 'online', 'online');
    proxy.set({ kind: 'reset' });
    await waitFor(async () => (await linkState()).state !== 'online', 'offline');
    const ids: string[] = [];
    for (let i = 0; i < 300; i++) {
      const id = randomUUID();
      const r = await localApiRequest(socket(), 'POST', '/v1/transactions', {
        id,
        amount: 100 + i,
        currency: 'EUR',
      });
      expect(r.status).toBe(201);
      ids.push(id);
    }
    // Back, but the connection is cut once 30 KB have gone up: mid-drain.
    const cut = proxy.cutAfter(30_000);
    proxy.set({ kind: 'pass' });
    await cut;
    const inCloud = await waitFor(
      async () => {
        const r = await cloud.api<{ data: { id: string; seq: number; deliveries: number }[] }>(
          'GET',
          `/v1/transactions?terminalId=${a.terminalId}`,
        );
        const mine = r.body.data.filter((t) => ids.includes(t.id));
        return mine.length === ids.length ? mine : undefined;
      },
      'all 300 in the cloud',
      30_000,
    );
    expect(new Set(inCloud.map((t) => t.id)).size).toBe(300);
    const seqs = inCloud.map((t) => t.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(inCloud.map((t) => t.id)).toEqual(ids);
  });

  it('against connections reset at once, reconnects follow the jittered backoff (base 100 ms, cap 1 s)', async () => {
    await waitFor(async () => (await linkState()).state === 'online', 'online');
    proxy.set({ kind: 'reset' });
    const from = proxy.connections.length;
    await waitFor(() => proxy.connections.length >= from + 12, 'a dozen attempts', 30_000);
    proxy.set({ kind: 'pass' });
    const at = proxy.connections.slice(from);
    const gaps = at.slice(1).map((t, i) => t - at[i]!);
    // Every gap within the cap (plus the connect and explanation time); never a tight loop.
    for (const g of gaps) expect(g).toBeLessThanOrEqual(1000 + 400);
    const mean = gaps.reduce((x, y) => x + y, 0) / gaps.length;
    expect(mean).toBeGreaterThan(150);
    // Jittered: not all the same.
    expect(new Set(gaps.map((g) => Math.round(g / 50))).size).toBeGreaterThan(3);
    await waitFor(async () => (await linkState()).state === 'online', 'online again');
  });
});
