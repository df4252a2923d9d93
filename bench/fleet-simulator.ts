import { writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
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
import { type Identity, readIdentity } from '../identity/identity-store.js';
import type { WorkerInput, WorkerReport } from './fleet-worker.js';
import { cpuSeconds, rssBytes } from './process-metrics.js';
import { percentile } from './statistics.js';

/**
 * `npm run fleet -- --agents N [--workers W]`: N terminals against one real `posagent-cloud` —
 * each enrolled with its own key (P-256) and certificate through the real enrollment code, each
 * on the real CloudLink (TLS client certificate, session resumption, Hello, ping/pong,
 * full-jitter backoff) sending real heartbeats, spread over W worker threads (fleet-worker.ts).
 * It reports the connect-time distribution, the cloud's RSS per connected terminal, the heartbeat
 * load, and a reconnect storm: the cloud SIGKILLed and restarted, reconnects per second, time
 * until all are back, the peak-to-mean ratio, and full vs resumed handshakes.
 *
 * The simulator measures the cloud, not itself: beside the cloud's CPU it reports its own (the
 * whole process) and each worker's event-loop utilisation; when a worker was busy ≥ 90 % of a
 * phase, its figures say more about the simulator than the cloud, and the run fails loudly
 * (exit 3, after writing the report) unless --allow-bottleneck.
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
    /** Worker threads the terminals are spread over (default: one per core, at least 2). */
    workers: { type: 'string' },
    'allow-bottleneck': { type: 'boolean', default: false },
    /** Keeps every worker busy (a deliberately slow simulator): checks that the bottleneck check fires. */
    'burn-worker-cpu': { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
});
const WORKERS = Math.max(
  1,
  Math.min(Number(args.workers ?? Math.max(2, availableParallelism())), Number(args.agents)),
);
/** A worker busier than this over a phase makes the simulator the bottleneck of that phase. */
const BOTTLENECK_ELU = 0.9;
const N = Number(args.agents);
const HEARTBEAT_SEC = Number(args['heartbeat-interval']);
const DOWN_MS = Number(args['down-sec']) * 1000;
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
  /** Of one core. */
  cloudPct: number;
  /** The whole simulator process (main thread and workers), of one core. */
  simulatorPct: number;
  /** The busiest worker's event-loop utilisation over the phase (1 = never idle). */
  busiestWorkerElu: number;
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
  handshakes: { connect: { full: number; resumed: number }; storm: { full: number; resumed: number } };
  workers: number;
  /** Phases in which a worker was the bottleneck (busy ≥ 90 %); empty when the cloud was measured. */
  simulatorBottleneck: string[];
  targets: {
    allBackWithin15s: boolean;
    peakAtMost3xMean: boolean;
    connectP50AtMost3s: boolean;
    rssAtMost40KbPerTerminal: boolean;
  };
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
  const workers: Worker[] = [];
  try {
    say(`enrolling ${N} terminals (each makes its own P-256 key and CSR; the cloud signs each certificate)…`);
    const t0 = Date.now();
    const identities = await enrollFleet(cloud, join(data, 'terminals'));
    const enrollSec = (Date.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 2000));
    const cloudRssBefore = rssBytes(cloud.proc.child.pid!);

    // The fleet's state, from the workers' reports.
    const onlineAt: number[][] = identities.map(() => []);
    const online: boolean[] = identities.map(() => false);
    const attemptAt: number[] = [];
    const handshakes = { full: 0, resumed: 0 };
    let heartbeats = 0;
    say(`starting ${WORKERS} worker threads…`);
    for (let w = 0; w < WORKERS; w++) {
      const input: WorkerInput = {
        cloudUrl: cloud.url,
        terminals: identities
          .map((id, index) => ({ index, stateDir: join(id.paths.metaFile, '..') }))
          .filter((_, i) => i % WORKERS === w),
        burnCpu: args['burn-worker-cpu'],
      };
      const worker = new Worker(new URL('./fleet-worker.js', import.meta.url), { workerData: input });
      await new Promise<void>((resolve, reject) => {
        worker.once('error', reject);
        worker.on('message', (m: WorkerReport) => {
          if (m.type === 'ready') return resolve();
          for (const [i, at] of m.online) {
            onlineAt[i]!.push(at);
            online[i] = true;
          }
          for (const i of m.offline) online[i] = false;
          attemptAt.push(...m.attempts);
          handshakes.full += m.handshakes.full;
          handshakes.resumed += m.handshakes.resumed;
          heartbeats += m.heartbeats;
        });
      });
      worker.on('error', (err) => {
        say(`a simulator worker failed: ${err.stack ?? err.message}`);
        process.exit(1);
      });
      workers.push(worker);
    }
    const everyOnline = () => online.every(Boolean);
    const startAt = Date.now();
    say(`connecting ${N} links at once…`);
    const cpuAt = () => ({
      cloud: cpuSeconds(cloud.proc.child.pid!),
      sim: process.cpuUsage(),
      elu: workers.map((w) => w.performance.eventLoopUtilization()),
      main: performance.eventLoopUtilization(),
    });
    const bottlenecks: string[] = [];
    const cpuSince = (phase: string, c: ReturnType<typeof cpuAt>, sec: number): CpuShare => {
      const elus = workers.map((w, i) =>
        w.performance.eventLoopUtilization(c.elu[i] as EventLoopUtilization),
      );
      const busiest = Math.max(...elus.map((e) => e.utilization));
      const mainElu = performance.eventLoopUtilization(c.main).utilization;
      if (busiest >= BOTTLENECK_ELU || mainElu >= BOTTLENECK_ELU)
        bottlenecks.push(
          `${phase}: busiest worker ${(busiest * 100).toFixed(0)} % busy, main thread ${(mainElu * 100).toFixed(0)} %`,
        );
      return {
        cloudPct: Math.round(((cpuSeconds(cloud.proc.child.pid!) - c.cloud) / sec) * 100),
        simulatorPct: Math.round((((u) => (u.user + u.system) / 1e6)(process.cpuUsage(c.sim)) / sec) * 100),
        busiestWorkerElu: +busiest.toFixed(2),
      };
    };
    const connectCpu = cpuAt();
    for (const w of workers) w.postMessage({ type: 'start' });
    await waitFor(everyOnline, 'every agent online', 300_000, 100);
    const connectCpuPct = cpuSince('connect', connectCpu, (Date.now() - startAt) / 1000);
    const connectHandshakes = { ...handshakes };
    const connectMs = onlineAt.map((t) => t[0]! - startAt).sort((x, y) => x - y);
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
    await waitFor(() => online.every((o) => !o), 'every link down', 60_000, 50);
    await new Promise((r) => setTimeout(r, DOWN_MS));
    const before = onlineAt.map((t) => t.length);
    const handshakesBefore = { ...handshakes };
    cloud = await restartCloud(cloud);
    const readyAt = Date.now();
    const stormCpu = cpuAt();
    await waitFor(everyOnline, 'every agent back', 300_000, 100);
    const backAt = onlineAt.map((t, i) => t[before[i]!]!);
    const stormCpuPct = cpuSince(
      'storm',
      stormCpu,
      (Math.max(...backAt) - Math.min(readyAt, ...backAt)) / 1000,
    );
    const stormHandshakes = {
      full: handshakes.full - handshakesBefore.full,
      resumed: handshakes.resumed - handshakesBefore.resumed,
    };
    // The cloud takes links as soon as it listens, a moment before its ready line reaches us: the
    // storm starts at whichever came first, so no early reconnect falls outside the seconds counted.
    const restartedAt = Math.min(readyAt, ...backAt);
    const allBackSec = (Math.max(...backAt) - restartedAt) / 1000;
    const seconds = Math.floor(allBackSec) + 1;
    const reconnects = perSecondFrom(backAt, restartedAt, seconds);
    const mean = N / seconds;
    const peak = Math.max(...reconnects);
    // What the agents did: connection attempts per second over the same seconds (jitter at work).
    const attempts = perSecondFrom(attemptAt, restartedAt, seconds);

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
      handshakes: { connect: connectHandshakes, storm: stormHandshakes },
      workers: WORKERS,
      simulatorBottleneck: bottlenecks,
      targets: {
        allBackWithin15s: allBackSec <= 15,
        peakAtMost3xMean: peak / mean <= 3,
        connectP50AtMost3s: percentile(connectMs, 50) <= 3000,
        rssAtMost40KbPerTerminal: (cloudRssConnected - cloudRssBefore) / N / 1024 <= 40,
      },
    };
    writeFileSync(args.out ?? join(ROOT, 'bench/fleet-results.json'), `${JSON.stringify(report, null, 2)}\n`);
    if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else process.stdout.write(formatFleetReport(report));
    if (bottlenecks.length > 0 && !args['allow-bottleneck']) {
      process.stderr.write(
        `\nFLEET SIMULATOR WAS THE BOTTLENECK — these figures measure the simulator, not the cloud:\n  ${bottlenecks.join('\n  ')}\nrun with more --workers (or on a machine with more cores), or pass --allow-bottleneck to keep the figures anyway\n`,
      );
      process.exitCode = 3;
    }
  } finally {
    for (const w of workers) w.postMessage({ type: 'stop' });
    await Promise.all(workers.map((w) => w.terminate()));
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
    `Fleet: ${r.agents} agents over ${r.workers} worker threads, one posagent-cloud, heartbeat every ${r.heartbeatIntervalSec} s (enrolled in ${r.enrollSeconds} s)`,
    ...(r.simulatorBottleneck.length ? [`SIMULATOR BOTTLENECK: ${r.simulatorBottleneck.join('; ')}`] : []),
    '',
    `connect (all at once)   p50 ${r.connectMs.p50} ms · p90 ${r.connectMs.p90} ms · p99 ${r.connectMs.p99} ms · max ${r.connectMs.max} ms  (target p50 ≤ 3 s: ${r.targets.connectP50AtMost3s ? 'met' : 'MISSED'})`,
    `                        CPU meanwhile: cloud ${r.connectMs.cpuPct.cloudPct} %, simulator ${r.connectMs.cpuPct.simulatorPct} % of a core (${r.workers} workers, busiest ${Math.round(r.connectMs.cpuPct.busiestWorkerElu * 100)} % busy)`,
    `                        handshakes: ${r.handshakes.connect.full} full, ${r.handshakes.connect.resumed} resumed`,
    `cloud RSS               ${r.cloud.rssBeforeMb} MB idle → ${r.cloud.rssConnectedMb} MB connected: ${r.cloud.rssPerTerminalKb} KB per terminal  (target ≤ 40 KB: ${r.targets.rssAtMost40KbPerTerminal ? 'met' : 'MISSED'})`,
    `heartbeat load          ${r.heartbeats.perSecond}/s (expected ${r.heartbeats.expectedPerSecond}/s); cloud CPU ${r.cloud.cpuPctWhileHeartbeating} % of a core`,
    '',
    `reconnect storm: cloud SIGKILLed, down ${r.storm.downSec} s, restarted`,
    `  all back after        ${r.storm.allBackSec} s  (target ≤ 15 s: ${r.targets.allBackWithin15s ? 'met' : 'MISSED'}); CPU: cloud ${r.storm.cpuPct.cloudPct} %, simulator ${r.storm.cpuPct.simulatorPct} % of a core (busiest worker ${Math.round(r.storm.cpuPct.busiestWorkerElu * 100)} % busy)`,
    `  handshakes            ${r.handshakes.storm.full} full, ${r.handshakes.storm.resumed} resumed`,
    `  reconnects per second mean ${r.storm.meanPerSecond}, peak ${r.storm.peakPerSecond}: peak/mean ${r.storm.peakToMean}×  (target ≤ 3×: ${r.targets.peakAtMost3xMean ? 'met' : 'MISSED'})`,
    ...bars,
    '',
  ].join('\n');
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: Error) => {
    process.stderr.write(`fleet simulator failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
