import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect, createServer as createTcpServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localApiRequest } from '../../agent/local-api/local-api-client.js';
import type { DiagnosticsReport } from '../../protocol/messages.js';
import {
  agentDirs,
  type Cloud,
  cli,
  enrollAgent,
  enrollWithCli,
  FAST_RECONNECT,
  newEnrollmentCode,
  startAgent,
  startCloud,
  waitForLink,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

/**
 * A real HTTP CONNECT proxy on loopback: it tunnels (and counts), or refuses every tunnel with 403.
 * `routes` maps a requested `host:port` to where the proxy really connects (a cloud only it reaches).
 */
async function connectProxy(mode: 'tunnel' | 'refuse', routes: Record<string, string> = {}) {
  const tunnels: string[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server: Server = createServer((_req, res) => res.writeHead(405).end());
  server.on('connect', (req, client, head) => {
    tunnels.push(req.url ?? '');
    sockets.add(client as import('node:net').Socket);
    if (mode === 'refuse') {
      client.on('error', () => {}); // the agent may reset the refused tunnel: not this test's failure
      client.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const [host, port] = (routes[req.url ?? ''] ?? req.url ?? '').split(/:(?=\d+$)/);
    const upstream = connect(Number(port), host!.replace(/^\[|\]$/g, ''), () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    sockets.add(upstream);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy(); // tunnels are not the server's connections any more
        server.close(() => r());
      }),
  };
}

/** A port nothing listens on (bound, then released). */
async function freePort(): Promise<number> {
  const server = createTcpServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('store networks: an HTTPS proxy (CONNECT)', () => {
  let cloud: Cloud;
  beforeAll(async () => {
    cloud = await startCloud(['--heartbeat-interval', '1']);
  });
  afterAll(async () => cloud.stop());

  it('enrollment and the link go through the proxy; TLS stays end to end (the pinned CA still decides)', async () => {
    const proxy = await connectProxy('tunnel');
    const dirs = agentDirs();
    const { code } = await newEnrollmentCode(cloud);
    const target = new URL(cloud.url).host;
    const r = await enrollWithCli(cloud, code, dirs, {
      env: {
        HTTPS_PROXY: proxy.url,
      },
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(proxy.tunnels).toContain(target);
    const before = proxy.tunnels.length;
    const agent = startAgent(dirs, [], { ...FAST_RECONNECT, POSAGENT_HTTPS_PROXY: proxy.url });
    try {
      await waitForLink(dirs);
      expect(proxy.tunnels.length).toBeGreaterThan(before);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
      await proxy.close();
    }
  });

  it('issue 18.4: diagnostics take the link’s path — through the proxy they pass where the link passes', async () => {
    // Only the proxy reaches the cloud: the terminal's cloud URL names a port nothing answers on
    // directly (a firewall, in effect); the proxy routes that name to the real cloud.
    const blocked = await freePort();
    const proxy = await connectProxy('tunnel', { [`localhost:${blocked}`]: `127.0.0.1:${cloud.port}` });
    const a = await enrollAgent(cloud);
    const settings = join(a.dirs.stateDir, '..', 'behind-proxy.json');
    const base = JSON.parse(readFileSync(join(a.dirs.stateDir, '..', 'agent.json'), 'utf8')) as object;
    writeFileSync(
      settings,
      JSON.stringify({ ...base, cloudUrl: `https://localhost:${blocked}`, httpsProxy: proxy.url }),
    );
    const diagnostics = async (file: string) => {
      const r = await cli([
        'diagnostics',
        '--json',
        '--timeout-ms',
        '3000',
        '--settings',
        file,
        ...a.dirs.flags,
      ]);
      return r.json<DiagnosticsReport>();
    };
    const network = (r: DiagnosticsReport) =>
      Object.fromEntries(
        r.checks.filter((c) => c.group === 'network' || c.id === 'clock').map((c) => [c.id, c.status]),
      );
    const agent = startAgent(a.dirs, ['--settings', settings], FAST_RECONNECT);
    try {
      await waitForLink(a.dirs);
      const viaProxy = await diagnostics(settings);
      expect(network(viaProxy)).toEqual({
        dns: 'pass',
        tcp: 'pass',
        tls: 'pass',
        websocket: 'pass',
        clock: 'pass',
      });
      const tcp = viaProxy.checks.find((c) => c.id === 'tcp')!;
      expect(tcp.detail).toMatch(
        new RegExp(`HTTPS proxy 127\\.0\\.0\\.1:\\d+ opened a tunnel to localhost:${blocked}`),
      );
      expect(viaProxy.checks.find((c) => c.id === 'dns')!.detail).toMatch(/the proxy resolves localhost/);
      // The daemon's own report (GET /v1/diagnostics) goes the same way.
      const local = await localApiRequest<DiagnosticsReport>(
        `${a.dirs.runtimeDir}/api.sock`,
        'GET',
        '/v1/diagnostics',
        undefined,
        20_000,
      );
      expect(network(local.body)).toEqual(network(viaProxy));
      // Stopped, the WebSocket upgrade is really tried — through the proxy.
      agent.child.kill('SIGTERM');
      await agent.exited;
      const stopped = await diagnostics(settings);
      expect(stopped.checks.find((c) => c.id === 'websocket')).toMatchObject({
        status: 'pass',
        detail: expect.stringMatching(/upgraded to posagent\.v1 .*through the HTTPS proxy/),
      });
      // Without the proxy, the direct path is what fails, and that is what the checks say.
      writeFileSync(settings, JSON.stringify({ ...base, cloudUrl: `https://localhost:${blocked}` }));
      const direct = await diagnostics(settings);
      expect(direct.checks.find((c) => c.id === 'tcp')).toMatchObject({
        status: 'fail',
        detail: expect.stringMatching(/ECONNREFUSED/),
      });
    } finally {
      agent.child.kill('SIGKILL');
      await proxy.close();
    }
  });

  it('NO_PROXY skips the proxy for the cloud host', async () => {
    const proxy = await connectProxy('refuse');
    const { code } = await newEnrollmentCode(cloud);
    const r = await enrollWithCli(cloud, code, agentDirs(), {
      env: {
        HTTPS_PROXY: proxy.url,
        NO_PROXY: 'example.com,127.0.0.1',
      },
    });
    expect(r.code, r.stdout).toBe(0);
    expect(proxy.tunnels).toHaveLength(0);
    await proxy.close();
  });

  it('a proxy that refuses the tunnel: enrollment fails with a clear error, the link says so in status', async () => {
    const proxy = await connectProxy('refuse');
    const { code } = await newEnrollmentCode(cloud);
    const dirs = agentDirs();
    const r = await enrollWithCli(cloud, code, dirs, {
      env: {
        HTTPS_PROXY: proxy.url,
      },
    });
    expect(r.code).toBe(1);
    const err = r.json<{ error: { code: string; message: string; hint: string } }>().error;
    expect(err.code).toBe('proxy_refused');
    expect(err.message).toMatch(/proxy at 127\.0\.0\.1:\d+ refused the tunnel to .* \(HTTP 403/);
    expect(err.hint).toMatch(/proxy/);

    // Enroll directly, then run the daemon behind the refusing proxy.
    const ok = await enrollWithCli(cloud, code, dirs);
    expect(ok.code, ok.stdout).toBe(0);
    const agent = startAgent(dirs, [], { ...FAST_RECONNECT, POSAGENT_HTTPS_PROXY: proxy.url });
    try {
      const reason = await waitFor(async () => {
        const s = (await cli(['status', '--json', ...dirs.flags])).json<{ link: { reason?: string } }>();
        return /refused the tunnel/.test(s.link.reason ?? '') ? s.link.reason : undefined;
      }, 'the proxy refusal in status');
      expect(reason).toMatch(/HTTP 403/);
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
      await proxy.close();
    }
  });
});
