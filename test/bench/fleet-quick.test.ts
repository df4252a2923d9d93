import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, start, tempDir } from '../support/processes.js';

/**
 * `npm run fleet` still runs end to end on a small fleet (the 2,000-agent figures are in the
 * README): terminals over worker threads, the simulator's CPU beside the cloud's, resumed
 * handshakes in the storm — and a simulator that is itself the bottleneck fails loudly.
 */
/** One run of the built simulator with these flags: its exit code, the process, and where it wrote its report. */
async function simulate(flags: string[]) {
  const out = join(tempDir('fleet'), 'fleet-results.json');
  const p = start(join(ROOT, 'dist/bench/fleet-simulator.js'), ['--out', out, ...flags]);
  const { code } = await p.exited;
  return { code, p, out };
}

/** The fleet simulator's temp dirs (and this test's own, named alike). */
const fleetDirs = () =>
  readdirSync(tmpdir())
    .filter((d) => d.startsWith('posagent-fleet-'))
    .map((d) => join(tmpdir(), d));

describe('fleet simulator', () => {
  it('enrolls, connects, measures heartbeats, survives a reconnect storm and writes its report', async () => {
    const before = new Set(fleetDirs());
    const { code, p, out } = await simulate([
      '--agents',
      '12',
      '--heartbeat-interval',
      '2',
      '--window-sec',
      '3',
      '--down-sec',
      '1',
    ]);
    expect(code, p.stderr()).toBe(0);
    expect(p.output()).toMatch(/reconnect storm: cloud SIGKILLed/);
    const r = JSON.parse(readFileSync(out, 'utf8')) as {
      agents: number;
      connectMs: { p50: number };
      cloud: {
        rssPerTerminalKb: number;
        bareTlsPerConnection: { rssPerConnectionKb: number; held: number };
      };
      heartbeats: { perSecond: number };
      listenOverflows: { connect: number; storm: number };
      storm: { allBackSec: number; reconnectsPerSecond: number[]; cpuPct: Record<string, number> };
      workers: number;
      handshakes: { connect: { full: number }; storm: { full: number; resumed: number } };
      simulatorBottleneck: string[];
    };
    expect(r.agents).toBe(12);
    expect(r.heartbeats.perSecond).toBeGreaterThan(0);
    expect(r.storm.reconnectsPerSecond.reduce((a, b) => a + b, 0)).toBe(12);
    expect(r.storm.allBackSec).toBeGreaterThan(0);
    expect(r.workers).toBe(2);
    expect(r.simulatorBottleneck).toEqual([]);
    expect(Object.keys(r.storm.cpuPct).sort()).toEqual(['busiestWorkerElu', 'cloudPct', 'simulatorPct']);
    expect(r.handshakes.connect.full).toBe(12);
    // After the cloud's restart, the links resume their TLS sessions (the ticket key survived).
    expect(r.handshakes.storm.resumed + r.handshakes.storm.full).toBe(12);
    expect(r.handshakes.storm.resumed).toBeGreaterThanOrEqual(10);
    // The same-run reference for the cloud's bytes per terminal, and the kernel's dropped SYNs.
    expect(r.cloud.bareTlsPerConnection.held).toBe(500);
    expect(p.output()).toMatch(
      /a bare node:tls server with the cloud's TLS holds [\d.]+ KB per idle mTLS connection/,
    );
    expect(Number.isInteger(r.listenOverflows.connect) && Number.isInteger(r.listenOverflows.storm)).toBe(
      true,
    );
    expect(p.output()).toMatch(/SYNs dropped by a full listen queue/);
    // Its temp dir (a cloud's CA key, the terminals' keys) is gone once it exited.
    expect(fleetDirs().filter((d) => !before.has(d) && d !== dirname(out))).toEqual([]);
  });

  it('a report it could not write is refused before anything runs', async () => {
    const p = start(join(ROOT, 'dist/bench/fleet-simulator.js'), [
      '--agents',
      '2',
      '--out',
      '/nonexistent/dir/x.json',
    ]);
    expect((await p.exited).code).toBe(2);
    expect(p.stderr()).toMatch(
      /^fleet simulator: --out \/nonexistent\/dir\/x\.json: its directory does not exist or is not writable/,
    );
  });

  it('--gateways 3: a temp PostgreSQL and three gateways, agents over all of them, one gateway SIGKILLed and its terminals on the others', async () => {
    const { code, p, out } = await simulate([
      '--agents',
      '12',
      '--gateways',
      '3',
      '--heartbeat-interval',
      '2',
      '--window-sec',
      '3',
    ]);
    expect(code, p.stderr()).toBe(0);
    expect(p.output()).toMatch(
      /storm: gateway 2 SIGKILLed for good, its \d+ terminals reconnecting to the other 2/,
    );
    const r = JSON.parse(readFileSync(out, 'utf8')) as {
      store: string;
      gateways: { connected: number; rssConnectedMb: number }[];
      database: {
        transactionsPerSecond: number;
        rowsWrittenPerSecond: number;
        cpuPct: number;
        rssMb: number;
      };
      heartbeats: { perSecond: number };
      storm: { kind: string; agents: number; reconnectsPerSecond: number[]; allBackSec: number };
    };
    expect(r.store).toBe('postgres');
    expect(r.gateways).toHaveLength(3);
    // Every terminal has every address and starts at one its id picks: the fleet is spread.
    expect(r.gateways.reduce((n, g) => n + g.connected, 0)).toBe(12);
    expect(r.gateways.every((g) => g.connected > 0 && g.rssConnectedMb > 0)).toBe(true);
    expect(r.heartbeats.perSecond).toBeGreaterThan(0);
    expect(r.database.transactionsPerSecond).toBeGreaterThan(0);
    expect(r.database.rssMb).toBeGreaterThan(0);
    expect(r.database.cpuPct).toBeGreaterThanOrEqual(0);
    expect(r.storm.kind).toBe('gateway-killed');
    expect(r.storm.agents).toBe(r.gateways[1]!.connected);
    expect(r.storm.reconnectsPerSecond.reduce((a, b) => a + b, 0)).toBe(r.storm.agents);
  });

  it('--fanout: a template change paced under --config-pushes-per-sec, a deployment under its maxPerMinute, every artifact downloaded', async () => {
    const { code, p, out } = await simulate([
      '--agents',
      '12',
      '--heartbeat-interval',
      '2',
      '--window-sec',
      '2',
      '--down-sec',
      '1',
      '--fanout',
      '--cloud-arg=--config-pushes-per-sec=4',
      '--deploy-per-minute',
      '60',
    ]);
    expect(code, p.stderr()).toBe(0);
    const r = JSON.parse(readFileSync(out, 'utf8')) as {
      fanout: {
        config: {
          terminals: number;
          limitPerSecond: number;
          perSecond: number[];
          mostInAnySecond: number;
          allSec: number;
        };
        deployment: {
          state: string;
          failed: number;
          maxPerMinute: number;
          mostStartsInAnyMinute: number;
          startsPerSecond: number[];
          downloadMbPerSecond: number[];
          artifactBytes: number;
        };
      };
    };
    const { config, deployment } = r.fanout;
    expect(config.limitPerSecond).toBe(4);
    expect(config.perSecond.reduce((a, b) => a + b, 0)).toBe(12);
    // Paced: never more than the limit in any second (+1 at a window's edge), so 12 take over 2 s.
    expect(config.mostInAnySecond).toBeLessThanOrEqual(5);
    expect(config.allSec).toBeGreaterThan(2);
    expect(deployment.state).toBe('completed');
    expect(deployment.failed).toBe(0);
    expect(deployment.startsPerSecond.reduce((a, b) => a + b, 0)).toBe(12);
    expect(deployment.mostStartsInAnyMinute).toBeLessThanOrEqual(deployment.maxPerMinute);
    // 60 a minute is one a second (a tick's share jittered): never all 12 at once.
    expect(Math.max(...deployment.startsPerSecond)).toBeLessThan(12);
    const downloaded = deployment.downloadMbPerSecond.reduce((a, b) => a + b, 0) * 1048576;
    expect(downloaded).toBeGreaterThan(12 * deployment.artifactBytes * 0.9);
  });

  it('a simulator that is the bottleneck (its workers kept busy) fails loudly, after writing its report', async () => {
    const { code, p, out } = await simulate([
      '--agents',
      '4',
      '--workers',
      '2',
      '--heartbeat-interval',
      '2',
      '--window-sec',
      '1',
      '--down-sec',
      '1',
      '--burn-worker-cpu',
    ]);
    expect(code, p.stderr()).toBe(3);
    expect(p.stderr()).toMatch(
      /FLEET SIMULATOR WAS THE BOTTLENECK — these figures measure the simulator, not the cloud/,
    );
    const r = JSON.parse(readFileSync(out, 'utf8')) as { simulatorBottleneck: string[] };
    expect(r.simulatorBottleneck.join('\n')).toMatch(/connect: busiest worker \d+ % busy/);
  });
});
