import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { enrollByApi } from '../support/api-terminal.js';
import { cloudCount } from '../support/cloud-db.js';
import { type Cloud, restartCloud, startCloud } from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

type Refusal = { error: { code: string; message: string } };
type Delivery = { status: string; attempts: number; lastResponse: number | null; lastError: string | null };

/** A loopback webhook receiver that counts what reaches it and answers `status` (and `location`). */
async function receiver(
  status = 200,
  location?: string,
): Promise<{ url: string; hits: () => number; server: Server }> {
  let hits = 0;
  const server = createServer((req, res) => {
    hits++;
    req.resume();
    res.writeHead(status, location ? { location } : {});
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    hits: () => hits,
    server,
  };
}

/**
 * Issue 17.10: webhooks cannot be aimed at the cloud's own network by default — loopback,
 * private and link-local targets (as literals or as what a name resolves to) are refused at
 * creation and again at every delivery; redirects are never followed. The demo and the tests
 * start the cloud with --allow-private-webhooks; these start it as it ships.
 */
describe('webhook targets', () => {
  const servers: Server[] = [];
  const clouds: Cloud[] = [];
  afterAll(async () => {
    for (const s of servers) s.close();
    for (const c of clouds) await c.stop();
  });

  it('refuses loopback, private, link-local and unresolvable targets with the reason; a public one is accepted; nothing refused is stored', async () => {
    const cloud = await startCloud([], undefined, { privateWebhooks: false });
    clouds.push(cloud);
    const refused: [string, RegExp][] = [
      ['http://127.0.0.1:8080/hooks', /127\.0\.0\.1:8080 is a loopback address/],
      ['http://localhost:8080/hooks', /localhost:8080 resolves to (127\.0\.0\.1|::1), a loopback address/],
      ['http://10.1.2.3/hooks', /is a private address/],
      ['https://192.168.1.20/hooks', /is a private address/],
      ['http://169.254.169.254/latest/meta-data/', /is a link-local address/],
      ['http://100.64.1.1/', /shared \(CGNAT\)/],
      ['http://0.0.0.0:9/', /"this network"/],
      ['http://[::1]:8080/hooks', /\[::1\]:8080 is a loopback address/],
      ['http://[::ffff:127.0.0.1]/hooks', /is a loopback address/],
      ['http://[fe80::1]/hooks', /is a link-local address/],
      ['http://[fd00::5]/hooks', /unique local/],
      ['http://no-such-host.invalid/hooks', /no-such-host\.invalid does not resolve/],
    ];
    for (const [url, reason] of refused) {
      const r = await cloud.api<Refusal>('POST', '/v1/webhook-endpoints', {
        url,
        events: ['terminal.enrolled'],
      });
      expect(r.status, url).toBe(400);
      expect(r.body.error.code, url).toBe('webhook_target_refused');
      expect(r.body.error.message, url).toMatch(reason);
    }
    // Not a URL to store as given: control characters, credentials.
    for (const [url, message] of [
      [
        'https://93.184.216.34/h\r\nX-Evil: 1',
        'url must not contain spaces or control characters (percent-encode them)',
      ],
      [
        'https://user:pass@93.184.216.34/h',
        'url must not carry credentials (user:password@); the endpoint checks the Posagent-Signature instead',
      ],
    ] as const) {
      const r = await cloud.api<Refusal>('POST', '/v1/webhook-endpoints', {
        url,
        events: ['terminal.enrolled'],
      });
      expect(r.status, url).toBe(400);
      expect(r.body.error, url).toEqual({ code: 'invalid_request', message });
    }
    expect(cloudCount(cloud.dataDir, 'webhook_endpoints')).toBe(0);
    const ok = await cloud.api('POST', '/v1/webhook-endpoints', {
      url: 'https://93.184.216.34/hooks',
      events: ['terminal.enrolled'],
    });
    expect(ok.status).toBe(201);
    expect(cloudCount(cloud.dataDir, 'webhook_endpoints')).toBe(1);
  });

  it('checked again at every delivery: an endpoint stored under --allow-private-webhooks is not delivered to once the cloud runs without it', async () => {
    const r = await receiver();
    servers.push(r.server);
    let cloud = await startCloud(['--webhook-retry-base-ms', '100']);
    clouds.push(cloud);
    const ep = await cloud.api<{ id: string }>('POST', '/v1/webhook-endpoints', {
      url: r.url,
      events: ['terminal.enrolled'],
    });
    expect(ep.status).toBe(201);
    await enrollByApi(cloud, 'Till W');
    await waitFor(() => r.hits() === 1, 'the first event delivered (the flag is on)');
    await cloud.stop();
    cloud = await restartCloud({ ...cloud, startOptions: { privateWebhooks: false } });
    clouds.push(cloud);
    await enrollByApi(cloud, 'Till W');
    const failed = await waitFor(async () => {
      const v = await cloud.api<{ deliveries: Delivery[] }>('GET', `/v1/webhook-endpoints/${ep.body.id}`);
      return v.body.deliveries.find((d) => d.status !== 'delivered' && d.attempts >= 1);
    }, 'a refused delivery');
    expect(failed.lastError).toMatch(
      /127\.0\.0\.1:\d+ is a loopback address: the cloud sends webhooks only to public addresses/,
    );
    expect(failed.lastResponse).toBeNull();
    expect(r.hits()).toBe(1);
  });

  it('redirects are never followed', async () => {
    const target = await receiver();
    const redirecting = await receiver(302, target.url);
    servers.push(target.server, redirecting.server);
    const cloud = await startCloud(['--webhook-retry-base-ms', '60000']);
    clouds.push(cloud);
    const ep = await cloud.api<{ id: string }>('POST', '/v1/webhook-endpoints', {
      url: redirecting.url,
      events: ['terminal.enrolled'],
    });
    await enrollByApi(cloud, 'Till W');
    const d = await waitFor(async () => {
      const v = await cloud.api<{ deliveries: Delivery[] }>('GET', `/v1/webhook-endpoints/${ep.body.id}`);
      return v.body.deliveries.find((x) => x.attempts >= 1);
    }, 'the first attempt');
    expect(d).toMatchObject({
      status: 'pending',
      lastResponse: 302,
      lastError: 'endpoint answered HTTP 302; redirects are not followed',
    });
    expect(redirecting.hits()).toBe(1);
    expect(target.hits()).toBe(0);
  });
});
