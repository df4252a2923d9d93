import { cpSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPostgres, type TempPostgres } from '../../harness/postgres.js';
import {
  type Cloud,
  enrollAgent,
  getAction,
  type Proc,
  queueAction,
  startAgent,
  startCloud,
  tempDir,
  waitForAction,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * Issue 22: the cloud on PostgreSQL, as several `posagent-cloud` processes. They share one
 * database and one set of secrets: the first gateway's data dir (CA key, admin token, ticket keys)
 * is copied for the others before they start (docs/operations.md, "Running the cloud on
 * PostgreSQL"). Real binaries, a real temp PostgreSQL cluster, real agents.
 */
describe('the cloud on PostgreSQL, several gateways', () => {
  let pg: TempPostgres;
  let database: string;
  const gateways: Cloud[] = [];
  const agents: Proc[] = [];
  let onA: Awaited<ReturnType<typeof enrollAgent>>;

  beforeAll(async () => {
    pg = await startPostgres();
    database = await pg.createDatabase('fleet');
    const first = await startCloud(['--database', database]);
    gateways.push(first);
    for (const _ of [1, 2]) {
      const dir = tempDir('cloud');
      cpSync(first.dataDir, dir, { recursive: true });
      gateways.push(await startCloud(['--database', database], dir));
    }
  }, 90_000);

  afterAll(async () => {
    for (const a of agents) a.child.kill('SIGKILL');
    for (const g of gateways) await g.stop();
    await pg?.stop();
  });

  it('one store and one set of secrets: a terminal enrolled through A is seen, with the same admin token, on B and C', async () => {
    const [a, b, c] = gateways as [Cloud, Cloud, Cloud];
    expect(b.adminToken).toBe(a.adminToken);
    onA = await enrollAgent(a);
    for (const g of [b, c]) {
      const r = await g.api<{ id: string; name: string }>('GET', `/v1/terminals/${onA.terminalId}`);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ id: onA.terminalId, name: 'Front Register 1' });
    }
    // Bad input is refused the same way on every gateway and stores nothing.
    const bad = await b.api<{ error: { code: string } }>('POST', '/v1/locations', { name: '' });
    expect(bad.status).toBe(400);
    const list = await c.api<{ data: { name: string }[] }>('GET', '/v1/locations?limit=100');
    expect(list.body.data.map((l) => l.name)).not.toContain('');
  });

  it('an agent on a PostgreSQL gateway: online, a config push applied, an action completed', async () => {
    const a = gateways[0]!;
    agents.push(startAgent(onA.dirs));
    await waitForLink(onA.dirs);
    const r = await a.api<{ version: number }>('POST', `/v1/terminals/${onA.terminalId}/configure`, {
      display: { idleMessage: 'Hello from PostgreSQL' },
    });
    expect(r.status).toBe(200);
    await waitFor(async () => {
      const c = await a.api<{ appliedVersion: number | null; version: number }>(
        'GET',
        `/v1/terminals/${onA.terminalId}/config`,
      );
      return c.body.appliedVersion === c.body.version || undefined;
    }, 'the config applied');
    const lock = await queueAction(a, onA.terminalId, { type: 'lock' });
    await waitForAction(a, onA.terminalId, lock.id, (x) => x.status === 'completed', 'lock completed');
    const unlock = await queueAction(a, onA.terminalId, { type: 'unlock' });
    await waitForAction(a, onA.terminalId, unlock.id, (x) => x.status === 'completed', 'unlock completed');
    expect((await getAction(a, onA.terminalId, lock.id)).status).toBe('completed');
    const t = await a.api<{ status: string }>('GET', `/v1/terminals/${onA.terminalId}`);
    expect(t.body.status).toBe('online');
  });
});
