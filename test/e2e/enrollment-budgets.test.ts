import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { afterAll, describe, expect, it } from 'vitest';
import { cloudCount } from '../support/cloud-db.js';
import { rsaCsr } from '../support/csrs.js';
import { type Cloud, newEnrollmentCode, restartCloud, startCloud } from '../support/processes.js';

type Answer = {
  status: number;
  body: { error?: { code: string; message: string } } & Record<string, unknown>;
  retryAfter?: string;
};

/** Unauthenticated calls from a given loopback address (127.0.0.0/8 is all ours), one keep-alive agent per address. */
function fromAddress(cloud: Cloud) {
  const ca = readFileSync(cloud.caFile, 'utf8');
  const agents = new Map<string, Agent>();
  return {
    post(address: string, path: string, body: unknown, token?: string): Promise<Answer> {
      let agent = agents.get(address);
      if (!agent) {
        agent = new Agent({
          keepAlive: true,
          maxSockets: 2,
          ca,
          localAddress: address,
        } as ConstructorParameters<typeof Agent>[0]);
        agents.set(address, agent);
      }
      const text = JSON.stringify(body);
      return new Promise((resolve, reject) => {
        const req = request(
          new URL(path, cloud.url),
          {
            method: 'POST',
            agent,
            headers: {
              'content-type': 'application/json',
              ...(token ? { authorization: `Bearer ${token}` } : {}),
            },
          },
          (res) => {
            let data = '';
            res.on('data', (d: Buffer) => {
              data += d.toString();
            });
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                body: JSON.parse(data || '{}'),
                ...(res.headers['retry-after'] ? { retryAfter: String(res.headers['retry-after']) } : {}),
              }),
            );
          },
        );
        req.on('error', reject);
        req.end(text);
      });
    },
    close() {
      for (const a of agents.values()) a.destroy();
    },
  };
}

/**
 * Issue 17.3: enrollment guessing is bounded for real. Failures are budgeted per method, per
 * source and across all sources, in the store; a lock never refuses a method that did not fail;
 * unauthenticated pairings are rate-limited; expired pairings and codes are pruned.
 */
describe('enrollment budgets', () => {
  const clouds: Cloud[] = [];
  afterAll(async () => {
    for (const c of clouds) await c.stop();
  });

  it('1,000 guesses from 100 addresses: refused globally past the budget; a valid code of an unaffected method still enrolls; the limits survive a restart', async () => {
    let cloud = await startCloud(['--enroll-max-failures', '20', '--enroll-global-max-failures', '50']);
    clouds.push(cloud);
    const csr = rsaCsr().csr;
    const { code: valid, locationId } = await newEnrollmentCode(cloud, 'Till G');
    let net = fromAddress(cloud);
    const statuses = new Map<string, number>();
    let firstRefusal: Answer | undefined;
    for (let round = 0; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 100 }, async (_, a) => {
          const guess = `GUES-${String(round * 100 + a)
            .padStart(4, 'A')
            .replace(/\d/g, (d) => 'ABCDEFGHJK'[Number(d)]!)}`;
          const r = await net.post(`127.0.1.${a + 1}`, '/v1/enroll', { method: 'code', code: guess, csr });
          const k = `${r.status} ${r.body.error?.code}`;
          statuses.set(k, (statuses.get(k) ?? 0) + 1);
          if (r.status === 429) firstRefusal ??= r;
        }),
      );
    }
    console.log(`1,000 guesses from 100 addresses: ${JSON.stringify(Object.fromEntries(statuses))}`);
    // Exactly the global budget was spent on guesses; everything after it was refused unseen.
    expect(Object.fromEntries(statuses)).toEqual({ '404 invalid_code': 50, '429 rate_limited': 950 });
    expect(firstRefusal!.body.error!.message).toMatch(
      /^too many failed code enrollment attempts across the fleet; code enrollment is paused for everyone: try again in \d+ s$/,
    );
    expect(Number(firstRefusal!.retryAfter)).toBeGreaterThan(800);
    expect(cloudCount(cloud.dataDir, 'enrollment_failures', "method = 'code'")).toBe(50);
    // The valid code too is refused while code enrollment is paused, and stays unused.
    const paused = await net.post('127.0.2.1', '/v1/enroll', { method: 'code', code: valid, csr });
    expect(paused.status).toBe(429);
    expect(cloudCount(cloud.dataDir, 'enrollment_codes', 'code = ? AND used_at IS NULL', valid)).toBe(1);

    // Pairing (another method) enrolls from one of the guessing addresses.
    const pairing = await net.post('127.0.1.7', '/v1/pairings', { csr: rsaCsr().csr });
    expect(pairing.status).toBe(201);
    const activated = await net.post(
      '127.0.1.7',
      '/v1/terminals/activate',
      { activationCode: pairing.body.activationCode, locationId },
      cloud.adminToken,
    );
    expect(activated.status).toBe(201);
    const polled = await net.post('127.0.1.7', `/v1/pairings/${pairing.body.pairingId}/poll`, {
      pairingSecret: pairing.body.pairingSecret,
    });
    expect(polled.status).toBe(200);
    expect(polled.body.status).toBe('activated');
    net.close();

    // A restart remembers: still paused for code, from any address.
    await cloud.stop();
    cloud = await restartCloud(cloud);
    clouds.push(cloud);
    net = fromAddress(cloud);
    const after = await net.post('127.0.3.1', '/v1/enroll', { method: 'code', code: 'NOPE-NOPE', csr });
    expect(after.status).toBe(429);
    expect(after.body.error!.message).toMatch(/across the fleet/);
    expect(cloudCount(cloud.dataDir, 'enrollment_failures', "method = 'code'")).toBe(50);
    net.close();
  });

  it('per source and per method: an address that spent its auto budget still enrolls by code; its own code budget is separate; a restart keeps the lock', async () => {
    let cloud = await startCloud(['--enroll-max-failures', '5']);
    clouds.push(cloud);
    const csr = rsaCsr().csr;
    let net = fromAddress(cloud);
    const store = '127.0.4.1'; // a store's NAT address
    // A pre-registered device retrying with a serial the cloud does not accept.
    const auto = [];
    for (let i = 0; i < 7; i++)
      auto.push(
        (await net.post(store, '/v1/enroll', { method: 'auto', serialNumber: 'SN-UNKNOWN-1', csr })).status,
      );
    expect(auto.slice(0, 5).every((s) => s >= 400 && s < 429)).toBe(true);
    expect(auto.slice(5)).toEqual([429, 429]);
    // Code enrollment from the same address is not touched.
    const { code } = await newEnrollmentCode(cloud, 'Till S');
    const ok = await net.post(store, '/v1/enroll', { method: 'code', code, csr });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    // Wrong codes from that address lock code for it alone, not for its neighbour.
    for (let i = 0; i < 5; i++)
      expect((await net.post(store, '/v1/enroll', { method: 'code', code: 'ZZZZ-ZZZZ', csr })).status).toBe(
        404,
      );
    const locked = await net.post(store, '/v1/enroll', { method: 'code', code: 'ZZZZ-ZZZZ', csr });
    expect(locked.status).toBe(429);
    expect(locked.body.error!.message).toMatch(
      /^too many failed code enrollment attempts from this address; try again in \d+ s$/,
    );
    const { code: code2 } = await newEnrollmentCode(cloud, 'Till N');
    expect((await net.post('127.0.4.2', '/v1/enroll', { method: 'code', code: code2, csr })).status).toBe(
      200,
    );
    net.close();
    await cloud.stop();
    cloud = await restartCloud(cloud);
    clouds.push(cloud);
    net = fromAddress(cloud);
    expect((await net.post(store, '/v1/enroll', { method: 'code', code: 'ZZZZ-ZZZZ', csr })).status).toBe(
      429,
    );
    expect(
      (await net.post(store, '/v1/enroll', { method: 'auto', serialNumber: 'SN-UNKNOWN-1', csr })).status,
    ).toBe(429);
    net.close();
  });

  it('pairings: at most N started per address per window (nothing stored past it), and expired pairings and codes are pruned', async () => {
    const cloud = await startCloud([
      '--pairings-per-source',
      '20',
      '--pairing-ttl',
      '1',
      '--expired-code-retention',
      '1',
      '--status-sweep-ms',
      '200',
    ]);
    clouds.push(cloud);
    const net = fromAddress(cloud);
    const csrs = Array.from({ length: 3 }, () => rsaCsr().csr);
    const answers: number[] = [];
    for (let i = 0; i < 25; i++)
      answers.push((await net.post('127.0.5.1', '/v1/pairings', { csr: csrs[i % 3] })).status);
    expect(answers.filter((s) => s === 201)).toHaveLength(20);
    expect(answers.slice(20)).toEqual([429, 429, 429, 429, 429]);
    const refused = await net.post('127.0.5.1', '/v1/pairings', { csr: csrs[0] });
    expect(refused.body.error).toMatchObject({ code: 'rate_limited' });
    expect(refused.body.error!.message).toMatch(
      /^20 pairings were started from this address in the last 900 s \(at most 20\); try again in \d+ s$/,
    );
    expect(refused.retryAfter).toBeDefined();
    // Another address is not affected.
    expect((await net.post('127.0.5.2', '/v1/pairings', { csr: csrs[0] })).status).toBe(201);
    // Expired (1 s) pairings go after one more lifetime; so does an unused expired code.
    const { code } = await newEnrollmentCode(cloud, 'Till X', 1);
    const { waitFor } = await import('../support/wait-for.js');
    await waitFor(
      () =>
        cloudCount(cloud.dataDir, 'pairings') === 0 &&
        cloudCount(cloud.dataDir, 'enrollment_codes', 'code = ?', code) === 0,
      'expired pairings and the expired code pruned',
      15_000,
    );
    net.close();
  });
});
