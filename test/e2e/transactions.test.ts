import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest, subscribeEvents } from '../../agent/local-api/local-api-client.js';
import {
  type Cloud,
  cli,
  configureAndWait,
  enrollAgent,
  type Proc,
  restartCloud,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

const PAN = '5555555555554444';

interface Record {
  id: string;
  state: string;
  seq: number;
  offline: boolean;
  reason?: string;
}
interface CloudTx {
  id: string;
  seq: number;
  status: string;
  card: { last4: string } | null;
  deliveries: number;
  offline: boolean;
}

/** Issue 5: the queue end to end, through the real cloud and agent. */
describe('transactions', () => {
  let cloud: Cloud;
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const socket = () => `${a.dirs.runtimeDir}/api.sock`;
  const post = (body: unknown) =>
    localApiRequest<Record & { error?: { code: string; message: string } }>(
      socket(),
      'POST',
      '/v1/transactions',
      body,
    );
  const local = async (id: string) =>
    (await localApiRequest<Record>(socket(), 'GET', `/v1/transactions/${id}`)).body;
  const cloudTxs = async () =>
    (await cloud.api<{ data: CloudTx[] }>('GET', `/v1/transactions?terminalId=${a.terminalId}`)).body.data;
  const online = () => waitForLink(a.dirs);

  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '30']);
    a = await enrollAgent(cloud);
    // Long backoff on purpose: the flush test shows a technician can skip it.
    agent = startAgent(a.dirs, [], {
      POSAGENT_RECONNECT_BASE_MS: '60000',
      POSAGENT_RECONNECT_CAP_MS: '60000',
      POSAGENT_RESTART_SPREAD_MS: '60000',
    });
    await online();
  });
  afterAll(async () => {
    agent?.child.kill('SIGKILL');
    await cloud?.stop();
  });

  it('online: stored, forwarded, decided; a repeat is one row and one cloud record; card data only as last four', async () => {
    const events = await subscribeEvents(socket());
    const ok = { id: randomUUID(), amount: 1250, currency: 'EUR', card: { pan: PAN, expiry: '12/29' } };
    const decline = { id: randomUUID(), amount: 1051, currency: 'EUR' };
    const r1 = await post(ok);
    expect(r1.status).toBe(201);
    expect(r1.body).toMatchObject({ id: ok.id, state: 'stored', offline: false });
    expect((await post(ok)).status).toBe(200);
    expect((await post(decline)).status).toBe(201);
    const conflict = await post({ ...ok, amount: 1300 });
    expect(conflict.status).toBe(409);
    expect(conflict.body.error?.code).toBe('idempotency_conflict');

    await waitFor(async () => (await local(ok.id)).state === 'authorised', 'authorised on the device');
    await waitFor(async () => (await local(decline.id)).state === 'declined', 'declined on the device');
    expect((await local(decline.id)).reason).toBe('insufficient funds');
    const txs = await cloudTxs();
    expect(txs.filter((t) => t.id === ok.id)).toHaveLength(1);
    expect(txs.find((t) => t.id === ok.id)).toMatchObject({
      status: 'authorised',
      card: { last4: '4444' },
      deliveries: 1,
    });
    expect(txs.find((t) => t.id === decline.id)).toMatchObject({ status: 'declined', card: null });
    const states = events.events
      .filter((e) => e.event === 'transaction' && (e.data as Record).id === ok.id)
      .map((e) => (e.data as Record).state);
    expect(states).toEqual(expect.arrayContaining(['stored', 'received', 'authorised']));
    events.close();

    // the card number is in no log line and not in clear in any file of the state dir
    for (const text of [agent.output(), agent.stderr(), cloud.proc.output(), cloud.proc.stderr()])
      expect(text).not.toContain(PAN);
    for (const f of readdirSync(a.dirs.stateDir)) {
      if (!f.startsWith('agent.db')) continue;
      expect(readFileSync(join(a.dirs.stateDir, f)).includes(Buffer.from(PAN)), f).toBe(false);
    }
  });

  it('offline: offline mode off refuses; on, the limits apply; back online they are forwarded; queue flush skips the backoff', async () => {
    // default config: offline mode off
    await cloud.stop();
    await waitForLink(a.dirs, (s) => s !== 'online');
    const before = (await cli(['queue', '--json', ...a.dirs.flags])).json<{ data: unknown[] }>().data.length;
    const off = await post({ id: randomUUID(), amount: 100, currency: 'EUR' });
    expect(off.status).toBe(409);
    expect(off.body.error).toMatchObject({ code: 'offline_disabled' });
    expect((await cli(['queue', '--json', ...a.dirs.flags])).json<{ data: unknown[] }>().data.length).toBe(
      before,
    );

    // enable offline mode through the cloud, then take the cloud away again
    cloud = await restartCloud(cloud);
    expect((await cli(['queue', 'flush', '--json', ...a.dirs.flags])).code).toBe(0); // reconnect now, not in up to 60 s
    await online();
    await configureAndWait(cloud, a.terminalId, {
      offlineMode: { enabled: true, maxAmount: 5000, maxQueue: 2 },
    });
    cloud.proc.child.kill('SIGKILL'); // an outage, not a clean restart
    await cloud.proc.exited;
    await waitForLink(a.dirs, (s) => s !== 'online');

    const t1 = { id: randomUUID(), amount: 4000, currency: 'EUR' };
    const t2 = { id: randomUUID(), amount: 300, currency: 'EUR' };
    expect((await post(t1)).body).toMatchObject({ state: 'stored', offline: true });
    const tooBig = await post({ id: randomUUID(), amount: 6000, currency: 'EUR' });
    expect(tooBig.status).toBe(409);
    expect(tooBig.body.error?.message).toMatch(/maxAmount 5000/);
    expect((await post(t2)).status).toBe(201);
    const full = await post({ id: randomUUID(), amount: 10, currency: 'EUR' });
    expect(full.body.error).toMatchObject({ code: 'offline_limit_exceeded' });
    expect(full.body.error?.message).toMatch(/maxQueue 2/);
    const status = (await cli(['status', '--json', ...a.dirs.flags])).json<{
      queue: { stored: number; oldestAt: string };
    }>();
    expect(status.queue.stored).toBe(2);
    expect(status.queue.oldestAt).toMatch(/^\d{4}-/);

    cloud = await restartCloud(cloud);
    const flush = await cli(['queue', 'flush', ...a.dirs.flags]);
    expect(flush.code).toBe(0);
    expect(flush.stdout).toMatch(/Forwarding now/);
    await waitFor(
      async () => (await local(t1.id)).state === 'authorised' && (await local(t2.id)).state === 'authorised',
      'offline ones authorised',
    );
    const txs = await cloudTxs();
    expect(txs.filter((t) => t.id === t1.id || t.id === t2.id).map((t) => t.offline)).toEqual([true, true]);
    const health = await waitFor(async () => {
      const t = await cloud.api<{ health: { queueDepth: number; queueOldestAt: string | null } | null }>(
        'GET',
        `/v1/terminals/${a.terminalId}`,
      );
      return t.body.health ?? undefined;
    }, 'a heartbeat with the queue');
    expect(health).toHaveProperty('queueOldestAt');
    const list = await cli(['queue', 'list', '--state', 'authorised', ...a.dirs.flags]);
    expect(list.stdout).toContain(t1.id);
    const show = await cli(['queue', 'show', t2.id, '--json', ...a.dirs.flags]);
    expect(show.json()).toMatchObject({ id: t2.id, state: 'authorised', offline: true });
  });

  it('answers the POS app with clear errors for bad requests', async () => {
    const bad = await localApiRequest<{ error: { code: string } }>(
      socket(),
      'POST',
      '/v1/transactions',
      undefined,
    );
    expect(bad.status).toBe(400);
    expect(
      (
        await localApiRequest<{ error: { code: string } }>(
          socket(),
          'GET',
          `/v1/transactions/${randomUUID()}`,
        )
      ).body.error.code,
    ).toBe('not_found');
    // A malformed percent escape in the path is the client's mistake: 400 with a code, never a 500.
    const malformed = await localApiRequest<{ error: { code: string; message: string } }>(
      socket(),
      'GET',
      '/v1/transactions/%E0%A4%A',
    );
    expect(malformed.status).toBe(400);
    expect(malformed.body.error).toMatchObject({
      code: 'invalid_request',
      message: expect.stringContaining('percent-encoded'),
    });
    const huge = await localApiRequest<{ error: { code: string } }>(socket(), 'POST', '/v1/transactions', {
      id: randomUUID(),
      amount: 1,
      currency: 'EUR',
      pad: 'x'.repeat(20_000),
    });
    expect(huge.status).toBe(413);
  });
});
