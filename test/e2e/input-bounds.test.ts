import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollByApi } from '../support/api-terminal.js';
import { cloudCount, cloudRows } from '../support/cloud-db.js';
import { type Cloud, startCloud } from '../support/processes.js';
import { openRawLink } from '../support/raw-link.js';

type Refusal = { error: { code: string; message: string } };

/**
 * Issue 17.7: input bounds. Deep JSON, a malformed percent-encoding, an amount past the bound and
 * a currency that is not ISO 4217 each get a 4xx with a code (an error frame on the link), and
 * nothing stored changes.
 */
describe('input bounds', () => {
  let cloud: Cloud;
  let terminal: { id: string; key: string; cert: string; locationId: string };
  const configRows = () => cloudRows(cloud.dataDir, 'SELECT * FROM terminal_configs ORDER BY terminal_id');

  beforeAll(async () => {
    cloud = await startCloud();
    terminal = await enrollByApi(cloud, 'Till B');
    // A first, valid config so there is something that must not change.
    expect(
      (await cloud.api('POST', `/v1/terminals/${terminal.id}/configure`, { tip: { mode: 'fixed' } })).status,
    ).toBe(200);
  });
  afterAll(() => cloud?.stop());

  it('deep JSON: 400 invalid_json (configure used to overflow the stack in mergePatch: 500); the config is unchanged', async () => {
    const before = configRows();
    for (const depth of [33, 5000]) {
      const deep = `${'{"tip":'.repeat(depth)}1${'}'.repeat(depth)}`;
      // Sent as the raw text: too deep for this process's own JSON.stringify.
      const r = await cloud.api<Refusal>('POST', `/v1/terminals/${terminal.id}/configure`, Buffer.from(deep));
      expect(r.status, `depth ${depth}`).toBe(400);
      expect(r.body.error).toEqual({
        code: 'invalid_json',
        message: 'request body nests deeper than 32 levels',
      });
    }
    // Arrays count too, and on every JSON route.
    const arrays = await cloud.api<Refusal>(
      'POST',
      '/v1/locations',
      Buffer.from(`{"name": ${'['.repeat(30_000)}${']'.repeat(30_000)}}`),
    );
    expect(arrays.status).toBe(400);
    expect(arrays.body.error.code).toBe('invalid_json');
    expect(configRows()).toEqual(before);
  });

  it('a malformed percent-encoding in a path: 400 invalid_path (was 500)', async () => {
    for (const path of [
      `/v1/terminals/%zz`,
      `/v1/terminals/%E2%82`,
      `/v1/terminals/%/config`,
      '/v1/locations/%C0%AF',
    ]) {
      const r = await cloud.api<Refusal>('GET', path);
      expect(r.status, path).toBe(400);
      expect(r.body.error.code, path).toBe('invalid_path');
      expect(r.body.error.message).toMatch(/is not valid percent-encoding/);
    }
    const before = configRows();
    const post = await cloud.api<Refusal>('POST', '/v1/terminals/%ff/configure', { tip: { mode: 'fixed' } });
    expect(post.status).toBe(400);
    expect(configRows()).toEqual(before);
    expect(cloud.proc.stderr()).not.toMatch(/REST handler failed/);
  });

  it('an amount past 1,000,000.00 and an unknown currency: refused on the link (error frame with a code) and in configs (400 invalid_config); nothing stored', async () => {
    const link = await openRawLink(cloud, terminal);
    try {
      expect((await link.hello(terminal.id))[0]).toBe(3);
      const item = (over: Record<string, unknown>) => ({
        id: randomUUID(),
        seq: 1,
        amount: 1050,
        currency: 'EUR',
        createdAt: new Date().toISOString(),
        offline: false,
        expired: false,
        card: null,
        ...over,
      });
      const huge = await link.call('TransactionsForward', { items: [item({ amount: 99_999_999_999 })] });
      expect(huge.slice(0, 3)).toEqual([4, huge[1], 'PropertyConstraintViolation']);
      expect(huge[3]).toMatch(/\/items\/0\/amount/);
      const xyz = await link.call('TransactionsForward', { items: [item({ currency: 'XYZ' })] });
      expect(xyz.slice(0, 3)).toEqual([4, xyz[1], 'PropertyConstraintViolation']);
      expect(xyz[3]).toMatch(/\/items\/0\/currency/);
      expect(cloudCount(cloud.dataDir, 'transactions')).toBe(0);
      // The same batch with a sane amount and a real currency is stored.
      const ok = await link.call('TransactionsForward', {
        items: [item({ amount: 100_000_000, currency: 'JPY' })],
      });
      expect(ok[0]).toBe(3);
      expect(cloudCount(cloud.dataDir, 'transactions')).toBe(1);
    } finally {
      link.close();
    }

    const before = configRows();
    const cases: [unknown, RegExp][] = [
      [{ offlineMode: { maxAmount: 99_999_999_999 } }, /\/offlineMode\/maxAmount/],
      [
        { offlineMode: { maxTotal: { XYZ: 100 } } },
        /\/offlineMode\/maxTotal\/XYZ: XYZ is not an ISO 4217 currency code/,
      ],
      [{ offlineMode: { maxTotal: { EUR: 1e16 } } }, /\/offlineMode\/maxTotal\/EUR/],
    ];
    for (const [patch, reason] of cases) {
      const r = await cloud.api<Refusal>('POST', `/v1/terminals/${terminal.id}/configure`, patch);
      expect(r.status, JSON.stringify(patch)).toBe(400);
      expect(r.body.error.code).toBe('invalid_config');
      expect(r.body.error.message).toMatch(reason);
      const t = await cloud.api<Refusal>(
        'PUT',
        `/v1/locations/${terminal.locationId}/terminal-config`,
        patch,
      );
      expect(t.status, JSON.stringify(patch)).toBe(400);
      expect(t.body.error.code).toBe('invalid_config');
    }
    expect(configRows()).toEqual(before);
    expect(cloudRows(cloud.dataDir, 'SELECT * FROM location_configs')).toEqual([]);
  });
});
