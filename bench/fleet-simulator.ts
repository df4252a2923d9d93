import { setMaxListeners } from 'node:events';
import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CloudLink } from '../agent/link/cloud-link.js';
import { AGENT_DEFAULTS, backoffPolicy, type DeviceSettings } from '../agent/settings.js';
import { HealthCollector } from '../agent/status/health.js';
import { HeartbeatSender } from '../agent/status/heartbeat.js';
import { enrollWithCode } from '../enroll/enrollment.js';
import {
  type Cloud,
  newEnrollmentCode,
  ROOT,
  restartCloud,
  startCloud,
  tempDir,
} from '../harness/local-fleet.js';
import { waitFor } from '../harness/wait-for.js';
import { type Identity, readClientTls, readIdentity } from '../identity/identity-store.js';
import { PROTOCOL_VERSION } from '../protocol/version.js';
import { cpuSeconds, rssBytes } from './process-metrics.js';
import { percentile } from './statistics.js';

/**
 * `npm run fleet -- --agents N`: N terminals against one real `posagent-cloud`, in this process —
 * each enrolled with its own key and certificate through the real enrollment code, each on the
 * real CloudLink (TLS client certificate, Hello, ping/pong, full-jitter backoff) sending real
 * heartbeats. It reports the connect-time distribution, the cloud's RSS per connected terminal,
 * the heartbeat load, and a reconnect storm: the cloud SIGKILLed and restarted, reconnects per
 * second, time until all are back, and the peak-to-mean ratio.
 */
const { values: args } = parseArgs({
  options: {
    agents: { type: 'string', default: '200' },
    'heartbeat-interval': { type: 'string', default: '30' },
    'down-sec': { type: 'string', default: '5' },
    /** How long the heartbeat load is measured (default: two intervals, at least 20 s). */
    'window-sec': { type: 'string' },
    out: { type: 'string' },
    /** Keep the cloud and the enrolled terminals here and reuse them next time (enrolling 2,000 takes minutes). */
    data: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(args.agents);
const HEARTBEAT_SEC = Number(args['heartbeat-interval']);
const DOWN_MS = Number(args['down-sec']) * 1000;
const silent = { info() {}, warn() {}, error() {} };
const say = (s: string) => process.stderr.write(`${s}\n`);

async function pool<T>(n: number, concurrency: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      for (let i = next++; i < n; i = next++) out[i] = await job(i);
    }),
  );
  return out;
}

async function enrollFleet(cloud: Cloud, base: string): Promise<Identity[]> {
  const ca = await readFile(cloud.caFile, 'utf8');
  let done = 0;
  const started = Date.now();
  const ids = await pool(N, Math.max(4, availableParallelism() * 4), async (i) => {
    const kept = await readIdentity(join(base, `t${i}`));
    if (kept) return kept;
    const { code } = await newEnrollmentCode(cloud, `Sim ${i + 1}`);
    const id = await enrollWithCode({
      stateDir: join(base, `t${i}`),
      force: false,
      softwareVersion: 'fleet-sim',
      cloudUrl: cloud.url,
      caPem: ca,
      code,
    });
    if (++done % Math.max(1, Math.floor(N / 10)) === 0)
      say(`  enrolled ${done}/${N} (${((Date.now() - started) / 1000).toFixed(0)} s)`);
    return id;
  });
  return ids;
}

interface CpuShare {
  cloudPct: number;
  simulatorPct: number;
}

interface FleetReport {
  at: string;
  agents: number;
  heartbeatIntervalSec: number;
  enrollSeconds: number;
  connectMs: { p50: number; p90: number; p99: number; max: number | undefined; cpuPct: CpuShare };
  cloud: {
    rssBeforeMb: number;
    rssConnectedMb: number;
    rssPerTerminalKb: number;
    cpuPctWhileHeartbeating: number;
  };
  heartbeats: { perSecond: number; expectedPerSecond: number };
  storm: {
    downSec: number;
    allBackSec: number;
    reconnectsPerSecond: number[];
    attemptsPerSecond: number[];
    cpuPct: CpuShare;
    meanPerSecond: number;
    peakPerSecond: number;
    peakToMean: number;
  };
  targets: { allBackWithin60s: boolean; peakAtMost3xMean: boolean };
}

interface SimAgent {
  link: CloudLink;
  onlineAt: number[];
  /** When each connection attempt started. */
  attemptAt: number[];
  online: boolean;
}

/** Events per second from `from` on, for `seconds` seconds. */
function perSecondFrom(times: number[], from: number, seconds: number): number[] {
  const out = new Array<number>(seconds).fill(0);
  for (const t of times) {
    const s = Math.floor((t - from) / 1000);
    if (s >= 0 && s < seconds) out[s]!++;
  }
  return out;
}

async function main(): Promise<void> {
  say(
    `fleet simulator: ${N} agents, heartbeat every ${HEARTBEAT_SEC} s, cloud down ${DOWN_MS / 1000} s in the storm`,
  );
  const data = args.data ?? tempDir('fleet');
  let cloud = await startCloud(
    // Every simulated terminal connects from 127.0.0.1: no per-source cap here.
    [
      '--heartbeat-interval',
      String(HEARTBEAT_SEC),
      '--log-level',
      'warn',
      '--max-connections-per-source',
      '0',
    ],
    join(data, 'cloud'),
  );
  const stop = new AbortController();
  setMaxListeners(N + 10, stop.signal); // every link listens to the one stop signal
  try {
    say(`enrolling ${N} terminals (each makes its own RSA key and CSR; the cloud signs each certificate)…`);
    const t0 = Date.now();
    const identities = await enrollFleet(cloud, join(data, 'terminals'));
    const enrollSec = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const cloudRssBefore = rssBytes(cloud.proc.child.pid!);

    const settings: DeviceSettings = { ...AGENT_DEFAULTS };
    const health = new HealthCollector(tempDir('fleet-health'));
    let heartbeats = 0;
    const agents: SimAgent[] = [];
    const startAt = Date.now();
    for (const identity of identities) {
      const tls = await readClientTls(identity);
      const agent: SimAgent = {
        onlineAt: [],
        attemptAt: [],
        online: false,
        link: undefined as unknown as CloudLink,
      };
      const heartbeat = new HeartbeatSender({
        health,
        now: Date.now,
        queue: () => ({ stored: 0, oldestAt: null }),
        onSent: () => {
          heartbeats++;
        },
        log: silent,
      });
      agent.link = new CloudLink(
        {
          cloudUrl: cloud.url,
          tls: () => tls,
          policy: backoffPolicy(settings),
          connectTimeoutMs: settings.connectTimeoutMs,
          callTimeoutMs: settings.callTimeoutMs,
          defaultPingIntervalSec: settings.pingIntervalSec,
          handlers: { ApplyConfig: () => ({ received: true }) },
          hello: () => ({
            terminalId: identity.terminalId,
            softwareVersion: 'fleet-sim',
            protocolVersion: PROTOCOL_VERSION,
            configVersion: null,
            bootId: identity.terminalId,
            queueDepth: 0,
            openActions: [],
            clock: new Date().toISOString(),
          }),
          onOnline: (online) => {
            agent.online = true;
            agent.onlineAt.push(Date.now());
            online.signal.addEventListener('abort', () => {
              agent.online = false;
            });
            void heartbeat.runWhileOnline(online, () => online.ack.heartbeatIntervalSec);
          },
          onStateChange: (snap) => {
            if (snap.state === 'connecting') agent.attemptAt.push(Date.now());
          },
          now: Date.now,
          random: Math.random,
          log: silent,
        },
        { lastHeartbeatAt: null },
      );
      agents.push(agent);
    }
    say(`connecting ${N} links at once…`);
    const cpuAt = () => ({ cloud: cpuSeconds(cloud.proc.child.pid!), sim: process.cpuUsage() });
    const cpuSince = (c: ReturnType<typeof cpuAt>, sec: number) => ({
      cloudPct: Math.round(((cpuSeconds(cloud.proc.child.pid!) - c.cloud) / sec) * 100),
      simulatorPct: Math.round((((u) => (u.user + u.system) / 1e6)(process.cpuUsage(c.sim)) / sec) * 100),
    });
    const connectCpu = cpuAt();
    for (const a of agents) void a.link.run(stop.signal);
    await waitFor(() => agents.every((a) => a.online), 'every agent online', 300_000, 100);
    const connectCpuPct = cpuSince(connectCpu, (Date.now() - startAt) / 1000);
    const connectMs = agents.map((a) => a.onlineAt[0]! - startAt).sort((x, y) => x - y);
    say(`all ${N} online after ${(connectMs.at(-1)! / 1000).toFixed(1)} s`);

    await new Promise((r) => setTimeout(r, 5000));
    const cloudRssConnected = rssBytes(cloud.proc.child.pid!);
    const windowSec = Number(args['window-sec'] ?? Math.max(HEARTBEAT_SEC * 2, 20));
    say(`measuring heartbeat load for ${windowSec} s…`);
    const hb0 = heartbeats;
    const cpu0 = cpuSeconds(cloud.proc.child.pid!);
    await new Promise((r) => setTimeout(r, windowSec * 1000));
    const heartbeatRate = (heartbeats - hb0) / windowSec;
    const cloudCpuPct = ((cpuSeconds(cloud.proc.child.pid!) - cpu0) / windowSec) * 100;

    say(`reconnect storm: SIGKILL the cloud, ${DOWN_MS / 1000} s down, restart on the same port…`);
    cloud.proc.child.kill('SIGKILL');
    await cloud.proc.exited;
    await waitFor(() => agents.every((a) => !a.online), 'every link down', 60_000, 50);
    await new Promise((r) => setTimeout(r, DOWN_MS));
    const before = agents.map((a) => a.onlineAt.length);
    cloud = await restartCloud(cloud);
    const readyAt = Date.now();
    const stormCpu = cpuAt();
    await waitFor(() => agents.every((a) => a.online), 'every agent back', 300_000, 100);
    const stormCpuPct = cpuSince(stormCpu, (Date.now() - readyAt) / 1000);
    const backAt = agents.map((a, i) => a.onlineAt[before[i]!]!);
    // The cloud takes links as soon as it listens, a moment before its ready line reaches us: the
    // storm starts at whichever came first, so no early reconnect falls outside the seconds counted.
    const restartedAt = Math.min(readyAt, ...backAt);
    const allBackSec = (Math.max(...backAt) - restartedAt) / 1000;
    const seconds = Math.floor(allBackSec) + 1;
    const reconnects = perSecondFrom(backAt, restartedAt, seconds);
    const mean = N / seconds;
    const peak = Math.max(...reconnects);
    // What the agents did: connection attempts per second over the same seconds (jitter at work).
    const attempts = perSecondFrom(
      agents.flatMap((a) => a.attemptAt),
      restartedAt,
      seconds,
    );

    const report: FleetReport = {
      at: new Date().toISOString(),
      agents: N,
      heartbeatIntervalSec: HEARTBEAT_SEC,
      enrollSeconds: Math.round(enrollSec),
      connectMs: {
        p50: Math.round(percentile(connectMs, 50)),
        p90: Math.round(percentile(connectMs, 90)),
        p99: Math.round(percentile(connectMs, 99)),
        max: connectMs.at(-1),
        cpuPct: connectCpuPct,
      },
      cloud: {
        rssBeforeMb: +(cloudRssBefore / 1048576).toFixed(1),
        rssConnectedMb: +(cloudRssConnected / 1048576).toFixed(1),
        rssPerTerminalKb: Math.round((cloudRssConnected - cloudRssBefore) / N / 1024),
        cpuPctWhileHeartbeating: +cloudCpuPct.toFixed(1),
      },
      heartbeats: {
        perSecond: +heartbeatRate.toFixed(1),
        expectedPerSecond: +(N / HEARTBEAT_SEC).toFixed(1),
      },
      storm: {
        downSec: DOWN_MS / 1000,
        allBackSec: +allBackSec.toFixed(1),
        reconnectsPerSecond: reconnects,
        attemptsPerSecond: attempts,
        cpuPct: stormCpuPct,
        meanPerSecond: +mean.toFixed(1),
        peakPerSecond: peak,
        peakToMean: +(peak / mean).toFixed(2),
      },
      targets: {
        allBackWithin60s: allBackSec <= 60,
        peakAtMost3xMean: peak / mean <= 3,
      },
    };
    writeFileSync(args.out ?? join(ROOT, 'bench/fleet-results.json'), `${JSON.stringify(report, null, 2)}\n`);
    if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(formatFleetReport(report));
  } finally {
    stop.abort();
    await cloud.stop();
  }
}

function formatFleetReport(r: FleetReport): string {
  const width = 40;
  const bars = r.storm.reconnectsPerSecond.map(
    (n, s) =>
      `  ${String(s).padStart(3)} s | ${'#'.repeat(Math.round((n / r.storm.peakPerSecond) * width)).padEnd(width)} ${String(n).padStart(5)} online ${String(r.storm.attemptsPerSecond[s] ?? 0).padStart(6)} attempts`,
  );
  return [
    '',
    `Fleet: ${r.agents} agents, one posagent-cloud, heartbeat every ${r.heartbeatIntervalSec} s (enrolled in ${r.enrollSeconds} s)`,
    '',
    `connect (all at once)   p50 ${r.connectMs.p50} ms · p90 ${r.connectMs.p90} ms · p99 ${r.connectMs.p99} ms · max ${r.connectMs.max} ms`,
    `                        CPU meanwhile: cloud ${r.connectMs.cpuPct.cloudPct} %, simulator ${r.connectMs.cpuPct.simulatorPct} % of a core`,
    `cloud RSS               ${r.cloud.rssBeforeMb} MB idle → ${r.cloud.rssConnectedMb} MB connected: ${r.cloud.rssPerTerminalKb} KB per terminal`,
    `heartbeat load          ${r.heartbeats.perSecond}/s (expected ${r.heartbeats.expectedPerSecond}/s); cloud CPU ${r.cloud.cpuPctWhileHeartbeating} % of a core`,
    '',
    `reconnect storm: cloud SIGKILLed, down ${r.storm.downSec} s, restarted`,
    `  all back after        ${r.storm.allBackSec} s  (target ≤ 60 s: ${r.targets.allBackWithin60s ? 'met' : 'MISSED'}); CPU: cloud ${r.storm.cpuPct.cloudPct} %, simulator ${r.storm.cpuPct.simulatorPct} % of a core`,
    `  reconnects per second mean ${r.storm.meanPerSecond}, peak ${r.storm.peakPerSecond}: peak/mean ${r.storm.peakToMean}×  (target ≤ 3×: ${r.targets.peakAtMost3xMean ? 'met' : 'MISSED'})`,
    ...bars,
    '',
  ].join('\n');
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`fleet simulator failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
