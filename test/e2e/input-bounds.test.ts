import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { enrollByApi } from '../support/api-terminal.js';
import { cloudCount, cloudRows } from '../support/cloud-db.js';
import { type Cloud, httpsJson, startCloud } from '../support/processes.js';
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

  it('a NUL or other control character in a path, a query or a body string: 400 with its code (PostgreSQL cannot even compare one: it was 500 there); nothing stored', async () => {
    const before = configRows();
    const locations = await cloudCount(cloud.dataDir, 'locations');
    for (const path of [
      '/v1/terminals/%00',
      '/v1/locations/a%00b',
      '/v1/deployments/%1b%5b31m',
      '/v1/releases/1.0.0%00',
    ]) {
      const r = await cloud.api<Refusal>('GET', path);
      expect(r.status, path).toBe(400);
      expect(r.body.error).toEqual({
        code: 'invalid_path',
        message: 'a path segment contains a control character (e.g. %00)',
      });
    }
    const q = await cloud.api<Refusal>('GET', '/v1/terminals?q=a%00');
    expect(q.status).toBe(400);
    expect(q.body.error).toEqual({
      code: 'invalid_request',
      message: 'the query parameter "q" contains a NUL character',
    });
    const body = await cloud.api<Refusal>('POST', '/v1/locations', { name: 'Acme\u0000Coffee' });
    expect(body.status).toBe(400);
    expect(body.body.error).toEqual({
      code: 'invalid_json',
      message: 'a string in the request body holds a NUL character (\\u0000) at /name',
    });
    const nested = await cloud.api<Refusal>('POST', `/v1/terminals/${terminal.id}/configure`, {
      receipt: { header: ['ok', 'x\u0000'] },
    });
    expect(nested.body.error.message).toMatch(/NUL character .* at \/receipt\/header\/1$/);
    expect(configRows()).toEqual(before);
    expect(await cloudCount(cloud.dataDir, 'locations')).toBe(locations);
    expect(cloud.proc.stderr()).not.toMatch(/REST handler failed/);
  });

  it('a body declared larger than the route takes is refused at once (413), before any of it is sent', async () => {
    const ca = readFileSync(cloud.caFile, 'utf8');
    const declared = (path: string, method: string, length: number) =>
      new Promise<{ status: number; body: Refusal; ms: number }>((resolve, reject) => {
        const at = performance.now();
        const req = request(new URL(path, cloud.url), {
          method,
          ca,
          headers: {
            authorization: `Bearer ${cloud.adminToken}`,
            'content-type': 'application/json',
            'content-length': String(length),
          },
        });
        req.on('response', (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            resolve({
              status: res.statusCode ?? 0,
              body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Refusal,
              ms: performance.now() - at,
            });
            req.destroy();
          });
        });
        req.on('error', (err) => (err.message.includes('socket hang up') ? undefined : reject(err)));
        req.flushHeaders(); // the headers only: no byte of the body is ever sent
      });
    const deployment = await declared('/v1/deployments', 'POST', 100_000_000);
    expect(deployment.status).toBe(413);
    expect(deployment.body.error.code).toBe('body_too_large');
    const release = await declared('/v1/releases/9.9.9', 'PUT', 300_000_000);
    expect(release.status).toBe(413);
    expect(release.body.error.message).toMatch(/^a release may be at most \d+ bytes$/);
    // At once: not after the body deadline (the cloud waited for the body before).
    expect(Math.max(deployment.ms, release.ms)).toBeLessThan(2000);
  });

  it('deployments and releases: a time that is no real time, a name with an escape, a malformed signature or version — each 400 with its reason, nothing stored', async () => {
    const deployments = await cloudCount(cloud.dataDir, 'deployments');
    for (const startAt of ['2099-02-30T00:00:00Z', '2099-01-01T99:99:99Z']) {
      const r = await cloud.api<Refusal>('POST', '/v1/deployments', {
        release: '1.0.0',
        target: { terminalIds: [terminal.id] },
        startAt,
      });
      expect(r.status, startAt).toBe(400);
      expect(r.body.error, startAt).toEqual({
        code: 'invalid_deployment',
        message: `startAt (${startAt}) is not a real time (ISO 8601 UTC, e.g. 2027-01-05T02:00:00Z)`,
      });
    }
    const named = await cloud.api<Refusal>('POST', '/v1/deployments', {
      release: '1.0.0',
      target: { terminalIds: [terminal.id] },
      name: 'x\u001b[31mred',
    });
    expect(named.status).toBe(400);
    expect(named.body.error.code).toBe('invalid_deployment');
    expect(await cloudCount(cloud.dataDir, 'deployments')).toBe(deployments);
    for (const path of ['/v1/releases/..%2fx', '/v1/agent/releases/..%2f..%2fetc%2fpasswd/artifact']) {
      const r = await cloud.api<Refusal>('GET', path);
      expect(r.status, path).toBeGreaterThanOrEqual(400);
      expect(JSON.stringify(r.body), path).not.toContain('etc/passwd');
    }
    const bad = await cloud.api<Refusal>('GET', '/v1/releases/..%2fx');
    expect(bad.body.error).toEqual({
      code: 'invalid_release',
      message: '"../x" is not a semantic version (e.g. 1.4.2)',
    });
    const sig = await httpsJson<Refusal>(
      cloud.url,
      readFileSync(cloud.caFile, 'utf8'),
      'PUT',
      '/v1/releases/9.9.8',
      Buffer.from('not a tarball'),
      cloud.adminToken,
      { 'posagent-release-signature': '!!!@@@' },
    );
    expect(sig.status).toBe(400);
    expect(sig.body.error.message).toBe(
      'the Posagent-Release-Signature header must be a base64 Ed25519 signature (posagent-cloud release-sign prints it)',
    );
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
