import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.js';
import {
  type Cloud,
  cli,
  enrollAgent,
  FAST_RECONNECT,
  type Proc,
  startAgent,
  startCloud,
  terminalStatus,
} from '../support/processes.js';
import { waitFor } from '../support/wait-for.js';

interface Status {
  link: { state: string; reason?: string };
  cloudUrl: string;
}

/**
 * Issue 22 item 5: an agent with several cloud addresses (`cloudUrls`) fails over to the next one
 * when the gateway it is on is lost, with its normal backoff, and stays there. Two loopback
 * proxies stand for two gateways of one cloud (the built cloud and agent, real TLS through them).
 */
describe('an agent with several cloud addresses', () => {
  let cloud: Cloud;
  let gateways: FaultProxy[];
  let agent: Proc;
  let a: Awaited<ReturnType<typeof enrollAgent>>;
  const status = async () => (await cli(['status', '--json', ...a.dirs.flags])).json<Status>();
  const onlineVia = () =>
    waitFor(async () => {
      const s = await status();
      return s.link.state === 'online' ? s.cloudUrl : undefined;
    }, 'the link online');

  beforeAll(async () => {
    cloud = await startCloud(['--ping-interval', '1']);
    a = await enrollAgent(cloud);
    gateways = [await startFaultProxy(cloud.port), await startFaultProxy(cloud.port)];
    agent = startAgent(a.dirs, [], {
      ...FAST_RECONNECT,
      POSAGENT_CLOUD_URLS: gateways.map((g) => g.url).join(','),
    });
  });
  afterAll(async () => {
    agent.child.kill('SIGKILL');
    for (const g of gateways) await g.close();
    await cloud.stop();
  });

  it('a lost gateway: the agent reconnects through the other one and status names it', async () => {
    const first = await onlineVia();
    const i = gateways.findIndex((g) => g.url === first);
    expect(i).toBeGreaterThanOrEqual(0);
    const [lost, other] = [gateways[i] as FaultProxy, gateways[1 - i] as FaultProxy];
    expect(lost.connections.length).toBeGreaterThan(0);
    expect(other.connections.length).toBe(0);

    await lost.close(); // the gateway dies: its connections are cut and its port refuses
    const second = await onlineVia();
    expect(second).toBe(other.url);
    expect(other.connections.length).toBeGreaterThan(0);
    expect(await terminalStatus(cloud, a.terminalId)).toBe('online');
    const log = agent.output();
    expect(log).toContain(`"next":"${other.url}"`);
  });

  it('a cloudUrls entry that is not a URL: the daemon refuses to start and names it', async () => {
    const bad = startAgent(a.dirs, [], {
      ...FAST_RECONNECT,
      POSAGENT_CLOUD_URLS: `${gateways[1]?.url},gw2.example`,
    });
    bad.expectFatal = true;
    const { code } = await bad.exited;
    expect(code).not.toBe(0);
    expect(bad.output() + bad.stderr()).toContain('cloudUrls: "gw2.example" is not a URL');
  });
});
