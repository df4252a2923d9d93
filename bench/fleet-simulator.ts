import {
  accessSync,
  constants,
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { type EventLoopUtilization, performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import pgClient from 'pg';
import { enrollWithCode } from '../enroll/enrollment.js';
import { mostInWindow } from '../harness/event-windows.js';
import {
  type Cloud,
  httpsBinary,
  newEnrollmentCode,
  ROOT,
  removeTempDirsAtExit,
  restartCloud,
  startCloud,
  tempDir,
} from '../harness/local-fleet.js';
import { postgresBinDir, startPostgres, type TempPostgres } from '../harness/postgres.js';
import { newReleaseKey, packRelease, publishRelease, signRelease } from '../harness/releases.js';
import { waitFor } from '../harness/wait-for.js';
import { type Identity, readIdentity } from '../identity/identity-store.js';
import { type ProfileSummary, summarizeCpuProfile } from './cpu-profile.js';
import type { DownKind, WorkerInput, WorkerReport } from './fleet-worker.js';
import { type HeapGrowth, heapGrowth, heapSnapshotOf, snapshotsIn } from './heap-diff.js';
import {
  cpuSeconds,
  cpuSecondsOfTree,
  listenOverflows,
  pssBytesOfTree,
  rssBytes,
} from './process-metrics.js';
import { percentile } from './statistics.js';
import { heldConnectionCost } from './tls-handshakes.js';

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
const OPTIONS = {
  agents: { type: 'string', default: '200' },
  /**
   * Gateways: with more than one, the cloud is its production shape — a temp PostgreSQL cluster
   * and this many `posagent-cloud` processes on it, the agents given every address (cloudUrls),
   * and the storm is one gateway SIGKILLed, its terminals reconnecting to the others.
   */
  gateways: { type: 'string', default: '1' },
  /**
   * Fan-out (issue 24): after the heartbeat load, one template change for the whole fleet's
   * location (config pushes per second against --config-pushes-per-sec), then one deployment to
   * every terminal at --deploy-per-minute (update starts per second and a minute, the artifact
   * downloaded whole by each, the download bandwidth and the cloud's CPU each second).
   */
  fanout: { type: 'boolean', default: false },
  'deploy-per-minute': { type: 'string', default: '1200' },
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
  /** A flag for posagent-cloud, e.g. `--cloud-arg=--max-new-links-per-sec=1000` (repeatable; kept at the restart). */
  'cloud-arg': { type: 'string', multiple: true, default: [] as string[] },
  /** Heap snapshots of the cloud into DIR, idle and with every terminal connected: where the per-terminal bytes are. */
  'heap-snapshots': { type: 'string' },
  /** A CPU profile of the restarted cloud over the storm, into DIR. */
  'cpu-profile': { type: 'string' },
} as const;
const USAGE = `usage: npm run fleet -- [--agents N] [--workers W] [--heartbeat-interval S] [--down-sec D]
  [--window-sec S] [--data DIR] [--gateways G] [--fanout] [--deploy-per-minute M] [--out FILE] [--json]
  [--cloud-arg=--FLAG=VALUE]... [--heap-snapshots DIR] [--cpu-profile DIR] [--allow-bottleneck]
(README.md, "Fleet simulator", says what each does)`;
const args = (() => {
  try {
    const { values } = parseArgs({ options: { ...OPTIONS, help: { type: 'boolean', short: 'h' } } });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    for (const flag of ['agents', 'gateways', 'heartbeat-interval', 'down-sec', 'deploy-per-minute'] as const)
      if (!/^[1-9]\d*$/.test(String(values[flag])))
        throw new Error(`--${flag} must be a whole number above 0 (got ${values[flag]})`);
    for (const flag of ['workers', 'window-sec'] as const)
      if (values[flag] !== undefined && !/^[1-9]\d*$/.test(values[flag]))
        throw new Error(`--${flag} must be a whole number above 0 (got ${values[flag]})`);
    // Checked now, not after minutes of work: the report is written there at the end.
    if (values.out !== undefined) {
      try {
        accessSync(dirname(resolve(values.out)), constants.W_OK);
      } catch {
        throw new Error(`--out ${values.out}: its directory does not exist or is not writable`);
      }
    }
    return values;
  } catch (err) {
    process.stderr.write(`fleet simulator: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
})();
removeTempDirsAtExit();
const WORKERS = Math.max(
  1,
  Math.min(Number(args.workers ?? Math.max(2, availableParallelism())), Number(args.agents)),
);
/** A worker busier than this over a phase makes the simulator the bottleneck of that phase. */
const BOTTLENECK_ELU = 0.9;
const N = Number(args.agents);
const G = Math.max(1, Number(args.gateways));
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

async function enrollFleet(gateways: Cloud[], base: string): Promise<Identity[]> {
  const ca = await readFile(gateways[0]!.caFile, 'utf8');
  // One location for the fleet: a template change there reaches every terminal (the fan-out).
  let location: Promise<string> | undefined;
  let done = 0;
  const started = Date.now();
  const ids = await pool(N, Math.max(4, availableParallelism() * 4), async (i) => {
    const kept = await readIdentity(join(base, `t${i}`));
    if (kept) return kept;
    const cloud = gateways[i % gateways.length]!;
    location ??= newEnrollmentCode(cloud, 'Sim location').then((c) => c.locationId);
    const made = await cloud.api<{ code: string }>('POST', '/v1/enrollment-codes', {
      locationId: await location,
      terminalName: `Sim ${i + 1}`,
    });
    if (made.status !== 201) throw new Error(`enrollment code: ${made.status} ${JSON.stringify(made.body)}`);
    const { code } = made.body;
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
  connectMs: {
    p50: number;
    p90: number;
    p99: number;
    max: number | undefined;
    cpuPct: CpuShare;
    /** Each second from the start: links online, attempts ended by 503 cloud_busy and by anything else, the busiest worker's event-loop use. */
    perSecond: { online: number[]; busy: number[]; other: number[]; busiestWorkerElu: number[] };
  };
  cloud: {
    rssBeforeMb: number;
    rssConnectedMb: number;
    rssPerTerminalKb: number;
    cpuPctWhileHeartbeating: number;
    /** The same-run reference: what a bare node:tls server with the cloud's TLS holds per idle mTLS connection. */
    bareTlsPerConnection: { rssPerConnectionKb: number; heapPerConnectionKb: number; held: number };
  };
  heartbeats: { perSecond: number; expectedPerSecond: number };
  /** The cloud's shape: one process on SQLite, or gateways on one PostgreSQL (--gateways). */
  store: 'sqlite' | 'postgres';
  gateways: {
    connected: number;
    rssBeforeMb: number;
    rssConnectedMb: number;
    rssPerTerminalKb: number;
    /** Of one core, over the heartbeat window. */
    cpuPctWhileHeartbeating: number;
  }[];
  /** PostgreSQL over the heartbeat window (--gateways): what the fleet costs the system of record. */
  database?: {
    transactionsPerSecond: number;
    rowsWrittenPerSecond: number;
    walKbPerSecond: number;
    /** The postmaster and its backends, of one core. */
    cpuPct: number;
    rssMb: number;
    /** The statements run most over the window (pg_stat_statements, when the server has it). */
    topStatements?: { perSecond: number; rowsPerCall: number; query: string }[];
  };
  storm: {
    /** What the storm was: the one cloud SIGKILLed and restarted, or one gateway of several SIGKILLed for good. */
    kind: 'cloud-restart' | 'gateway-killed';
    /** The terminals that lost their link in it (all of them, or the killed gateway's). */
    agents: number;
    downSec: number;
    allBackSec: number;
    reconnectsPerSecond: number[];
    attemptsPerSecond: number[];
    /** The cloud's own count: upgrades it answered `503 cloud_busy` each second (from its log). */
    cloudBusyRefusalsPerSecond: number[];
    /** What the agents saw each second: links ended by 503 cloud_busy, by a refused TCP connection, by anything else. */
    downsPerSecond: Record<DownKind, number[]>;
    /** The busiest simulator worker's event-loop utilisation in each second of the storm (1 = never idle). */
    busiestWorkerEluPerSecond: number[];
    /** The backoff the agents drew after each failure during the storm (and just before it, while the cloud was down). */
    backoff: { p50Ms: number; p90Ms: number; maxMs: number; maxAttempt: number; afterBusy: number };
    cpuPct: CpuShare;
    meanPerSecond: number;
    peakPerSecond: number;
    peakToMean: number;
  };
  handshakes: { connect: { full: number; resumed: number }; storm: { full: number; resumed: number } };
  /** Connections the kernel dropped because the cloud's listen queue was full (ListenOverflows), in each phase. */
  listenOverflows: { connect: number; storm: number };
  /** The posagent-cloud flags added with --cloud-arg. */
  cloudArgs: string[];
  /** --fanout: one template change for the fleet, then one deployment to all of it. */
  fanout?: {
    config: {
      terminals: number;
      limitPerSecond: number;
      allSec: number;
      perSecond: number[];
      mostInAnySecond: number;
      cloudCpuPctPerSecond: number[];
    };
    deployment: {
      terminals: number;
      maxPerMinute: number;
      state: string;
      artifactBytes: number;
      allSec: number;
      failed: number;
      startsPerSecond: number[];
      mostStartsInAnySecond: number;
      mostStartsInAnyMinute: number;
      downloadMbPerSecond: number[];
      cloudCpuPctPerSecond: number[];
    };
  };
  profile?: {
    heap?: HeapGrowth & { perTerminalBytes: number };
    /** The (first) cloud's main thread over the connect phase, from the start to the last link online. */
    connect?: ProfileSummary & { seconds: number };
    /** The restarted cloud's main thread over the storm's first seconds, and over the whole storm. */
    stormFirstSeconds?: ProfileSummary & { seconds: number };
    storm?: ProfileSummary;
  };
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
    G > 1
      ? `fleet simulator: ${N} agents, ${G} gateways on PostgreSQL, heartbeat every ${HEARTBEAT_SEC} s, one gateway SIGKILLed in the storm`
      : `fleet simulator: ${N} agents, heartbeat every ${HEARTBEAT_SEC} s, cloud down ${DOWN_MS / 1000} s in the storm`,
  );
  if (G > 1 && (args.data || args['heap-snapshots'] || args['cpu-profile']))
    throw new Error(
      '--data, --heap-snapshots and --cpu-profile are for one cloud process: each --gateways run has its own PostgreSQL cluster',
    );
  if (args['heap-snapshots'] && args['cpu-profile'])
    throw new Error('--heap-snapshots and --cpu-profile both signal the cloud with SIGUSR2: use one per run');
  const data = args.data ?? tempDir('fleet');
  const cloudArgs = (args['cloud-arg'] ?? []).flatMap((a) => {
    const eq = a.indexOf('=');
    return eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a];
  });
  const heapDir = args['heap-snapshots'];
  const cpuDir = args['cpu-profile'];
  if (heapDir) {
    mkdirSync(heapDir, { recursive: true });
    // The cloud is started with this (start() passes our environment on), the workers never see it.
    process.env.NODE_OPTIONS = `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${heapDir}`;
  }
  if (cpuDir) mkdirSync(cpuDir, { recursive: true });
  let pg: TempPostgres | undefined;
  let database: string | undefined;
  let statements = false;
  if (G > 1) {
    say(`starting a temp PostgreSQL cluster and ${G} gateways on it…`);
    // What the database runs, by statement, when the server has pg_stat_statements (PostgreSQL's contrib).
    statements = existsSync(join(postgresBinDir(), '..', 'lib', 'pg_stat_statements.so'));
    pg = await startPostgres(
      statements
        ? { settings: ['shared_preload_libraries=pg_stat_statements', 'pg_stat_statements.track=all'] }
        : {},
    );
    database = await pg.createDatabase('fleet');
    if (statements) await sqlOn(database, 'CREATE EXTENSION pg_stat_statements');
  }
  // The fan-out's deployment: a real signed release of this build, published before the agents connect.
  const release = args.fanout ? await prepareRelease(join(data, 'release')) : undefined;
  const serveArgs = [
    ...(release ? ['--release-public-key', release.publicKeyFile] : []),
    '--heartbeat-interval',
    String(HEARTBEAT_SEC),
    '--log-level',
    'warn',
    // Every simulated terminal connects from 127.0.0.1: no per-source cap here.
    '--max-connections-per-source',
    '0',
    ...(database ? ['--database', database] : []),
    ...cloudArgs,
  ];
  // --cpu-profile: the cloud is profiled from its start (the connect phase is the end of that
  // profile) and, restarted, over the storm.
  if (cpuDir) {
    process.env.NODE_OPTIONS = `--import=${new URL('./cpu-profile-preload.js', import.meta.url).href}`;
    process.env.POSAGENT_CPU_PROFILE_DIR = cpuDir;
  }
  let cloud = await startCloud(serveArgs, join(data, 'cloud'));
  /** Every gateway (one without --gateways); the first makes the secrets, the others copy them (docs/operations.md). */
  const gateways: Cloud[] = [cloud];
  const killed = new Set<Cloud>();
  const alive = () => gateways.filter((g) => !killed.has(g));
  const workers: Worker[] = [];
  try {
    for (let g = 1; g < G; g++) {
      const dir = join(data, `cloud-${g + 1}`);
      cpSync(cloud.dataDir, dir, { recursive: true });
      gateways.push(await startCloud(serveArgs, dir));
    }
    const cloudCpu = () => alive().reduce((sum, g) => sum + cpuSeconds(g.proc.child.pid!), 0);
    const postmaster = () =>
      Number(readFileSync(join(pg!.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
    say(`enrolling ${N} terminals (each makes its own P-256 key and CSR; the cloud signs each certificate)…`);
    const t0 = Date.now();
    const identities = await enrollFleet(gateways, join(data, 'terminals'));
    const enrollSec = (Date.now() - t0) / 1000;
    if (release) {
      const published = await publishRelease(cloud, release.tarball, release.signed);
      if (published.status !== 201)
        throw new Error(`release not published: ${JSON.stringify(published.body)}`);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const rssBeforeOf = gateways.map((g) => rssBytes(g.proc.child.pid!));
    const cloudRssBefore = rssBeforeOf.reduce((a, b) => a + b, 0);

    // The fleet's state, from the workers' reports.
    const onlineAt: number[][] = identities.map(() => []);
    const online: boolean[] = identities.map(() => false);
    /** When each terminal last lost its link (as the worker saw it). */
    const offlineAt: number[] = identities.map(() => 0);
    const attemptAt: number[] = [];
    const downs: [number, DownKind, number, number][] = [];
    const handshakes = { full: 0, resumed: 0 };
    let heartbeats = 0;
    const configAt: number[] = [];
    const updateStartAt: number[] = [];
    const updateEnds: [number, boolean][] = [];
    const downloaded: [at: number, bytes: number][] = [];
    say(`starting ${WORKERS} worker threads…`);
    for (let w = 0; w < WORKERS; w++) {
      const input: WorkerInput = {
        // Several gateways: every terminal is given all their addresses (the agent's cloudUrls).
        cloudUrl: gateways.map((g) => g.url).join(','),
        terminals: identities
          .map((id, index) => ({ index, stateDir: join(id.paths.metaFile, '..') }))
          .filter((_, i) => i % WORKERS === w),
        burnCpu: args['burn-worker-cpu'],
        artifactUrl: cloud.url,
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
          for (const i of m.offline) {
            online[i] = false;
            offlineAt[i] = Date.now();
          }
          attemptAt.push(...m.attempts);
          downs.push(...m.downs);
          handshakes.full += m.handshakes.full;
          handshakes.resumed += m.handshakes.resumed;
          heartbeats += m.heartbeats;
          configAt.push(...m.configs);
          updateStartAt.push(...m.updateStarts);
          updateEnds.push(...m.updateEnds);
          if (m.downloadBytes) downloaded.push([Date.now(), m.downloadBytes]);
        });
      });
      worker.on('error', (err) => {
        say(`a simulator worker failed: ${err.stack ?? err.message}`);
        process.exit(1);
      });
      workers.push(worker);
    }
    if (heapDir) await heapSnapshot(cloud, heapDir);
    const everyOnline = () => online.every(Boolean);
    const startAt = Date.now();
    say(`connecting ${N} links at once…`);
    const cpuAt = () => ({
      cloud: cloudCpu(),
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
        cloudPct: Math.round(((cloudCpu() - c.cloud) / sec) * 100),
        simulatorPct: Math.round((((u) => (u.user + u.system) / 1e6)(process.cpuUsage(c.sim)) / sec) * 100),
        busiestWorkerElu: +busiest.toFixed(2),
      };
    };
    const connectCpu = cpuAt();
    const connectElu = sampleElu(workers);
    const downsAtStart = downs.length;
    const overflowsAtStart = listenOverflows();
    for (const w of workers) w.postMessage({ type: 'start' });
    await waitFor(everyOnline, 'every agent online', 300_000, 100);
    const connectEluSeconds = connectElu.stop();
    const connectCpuPct = cpuSince('connect', connectCpu, (Date.now() - startAt) / 1000);
    const connectHandshakes = { ...handshakes };
    const connectOverflows = listenOverflows() - overflowsAtStart;
    const connectMs = onlineAt.map((t) => t[0]! - startAt).sort((x, y) => x - y);
    const connectSeconds = Math.floor(connectMs.at(-1)! / 1000) + 1;
    const connectDowns = downs.slice(downsAtStart);
    const connectPerSecond = {
      online: perSecondFrom(
        onlineAt.map((t) => t[0]!),
        startAt,
        connectSeconds,
      ),
      busy: perSecondFrom(
        connectDowns.filter((d) => d[1] === 'busy').map((d) => d[0]),
        startAt,
        connectSeconds,
      ),
      other: perSecondFrom(
        connectDowns.filter((d) => d[1] !== 'busy').map((d) => d[0]),
        startAt,
        connectSeconds,
      ),
      busiestWorkerElu: eluBySecond(connectEluSeconds, startAt, connectSeconds),
    };
    say(`all ${N} online after ${(connectMs.at(-1)! / 1000).toFixed(1)} s`);
    let connectProfile: (ProfileSummary & { seconds: number }) | undefined;
    if (cpuDir) {
      // The first cloud's profile so far: its start, its idle wait, and the connect phase at its end.
      const connectSec = (Date.now() - startAt) / 1000;
      const file = join(cpuDir, await cpuProfileOf(cloud, cpuDir));
      connectProfile = {
        seconds: +connectSec.toFixed(1),
        ...summarizeCpuProfile(file, undefined, 15, connectSec * 1000),
      };
    }

    await new Promise((r) => setTimeout(r, 5000));
    const rssConnectedOf = gateways.map((g) => rssBytes(g.proc.child.pid!));
    const cloudRssConnected = rssConnectedOf.reduce((a, b) => a + b, 0);
    const connectedOf = await Promise.all(gateways.map(connectedOn));
    let heap: (HeapGrowth & { perTerminalBytes: number }) | undefined;
    if (heapDir) {
      say(
        'heap snapshots of the cloud: idle was taken before connecting; now with every terminal connected…',
      );
      heap = await heapSnapshotDiff(cloud, heapDir);
    }
    const windowSec = Number(args['window-sec'] ?? Math.max(HEARTBEAT_SEC * 2, 20));
    say(`measuring heartbeat load for ${windowSec} s…`);
    const hb0 = heartbeats;
    const cpu0 = cloudCpu();
    const cpuOf0 = gateways.map((g) => cpuSeconds(g.proc.child.pid!));
    if (statements && database) await sqlOn(database, 'SELECT pg_stat_statements_reset()');
    const db0 = database ? await dbCounters(database) : undefined;
    const pgCpu0 = pg ? cpuSecondsOfTree(postmaster()) : 0;
    const windowAt = Date.now();
    await new Promise((r) => setTimeout(r, windowSec * 1000));
    const heartbeatRate = (heartbeats - hb0) / windowSec;
    const cloudCpuPct = ((cloudCpu() - cpu0) / windowSec) * 100;
    const cpuOf = gateways.map((g, i) => ((cpuSeconds(g.proc.child.pid!) - cpuOf0[i]!) / windowSec) * 100);
    let dbLoad: FleetReport['database'];
    if (db0 && database && pg) {
      const db1 = await dbCounters(database);
      const sec = (Date.now() - windowAt) / 1000;
      dbLoad = {
        transactionsPerSecond: +((db1.commits - db0.commits) / sec).toFixed(1),
        rowsWrittenPerSecond: +((db1.rows - db0.rows) / sec).toFixed(1),
        walKbPerSecond: +((db1.walBytes - db0.walBytes) / sec / 1024).toFixed(1),
        cpuPct: +(((cpuSecondsOfTree(postmaster()) - pgCpu0) / sec) * 100).toFixed(1),
        rssMb: +(pssBytesOfTree(postmaster()) / 1048576).toFixed(1),
        ...(statements
          ? {
              topStatements: (
                await sqlOn<{ calls: string; rows: string; query: string }>(
                  database,
                  `SELECT calls, rows, query FROM pg_stat_statements
                   WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
                   ORDER BY calls DESC LIMIT 12`,
                )
              ).map((r) => ({
                perSecond: +(Number(r.calls) / sec).toFixed(1),
                rowsPerCall: +(Number(r.rows) / Math.max(1, Number(r.calls))).toFixed(1),
                query: r.query.replace(/\s+/g, ' ').slice(0, 110),
              })),
            }
          : {}),
      };
    }
    const perGateway = gateways.map((_, i) => ({
      connected: connectedOf[i]!,
      rssBeforeMb: +(rssBeforeOf[i]! / 1048576).toFixed(1),
      rssConnectedMb: +(rssConnectedOf[i]! / 1048576).toFixed(1),
      rssPerTerminalKb: connectedOf[i]
        ? Math.round((rssConnectedOf[i]! - rssBeforeOf[i]!) / connectedOf[i]! / 1024)
        : 0,
      cpuPctWhileHeartbeating: +cpuOf[i]!.toFixed(1),
    }));

    let fanout: FleetReport['fanout'];
    if (release) {
      const loc = (
        await cloud.api<{ locationId: string }>('GET', `/v1/terminals/${identities[0]!.terminalId}`)
      ).body.locationId;
      const flag = cloudArgs.indexOf('--config-pushes-per-sec');
      const limit = flag >= 0 ? Number(cloudArgs[flag + 1]) : 100;
      say(`fan-out: one template change for the fleet's location (config pushes at most ${limit}/s)…`);
      const configsBefore = configAt.length;
      const cpuConfig = sampleCpu(cloudCpu);
      const changedAt = Date.now();
      const changed = await cloud.api<{ terminals: number }>('PUT', `/v1/locations/${loc}/terminal-config`, {
        display: { idleMessage: `fan-out ${changedAt}` },
      });
      if (changed.status !== 200 || changed.body.terminals !== N)
        throw new Error(
          `the template change reached ${changed.body.terminals} terminals, not ${N} (${changed.status}): terminals enrolled by an older run are each in their own location; run without --data`,
        );
      await waitFor(
        () => configAt.length - configsBefore >= N || undefined,
        'every terminal its new config',
        600_000,
        100,
      );
      const configTimes = configAt.slice(configsBefore);
      const configSec = Math.floor((Math.max(...configTimes) - changedAt) / 1000) + 1;
      const config = {
        terminals: N,
        limitPerSecond: limit,
        allSec: +((Math.max(...configTimes) - changedAt) / 1000).toFixed(1),
        perSecond: perSecondFrom(configTimes, changedAt, configSec),
        mostInAnySecond: mostInWindow(configTimes, 1000),
        cloudCpuPctPerSecond: cpuConfig.stop(),
      };
      say(
        `  every terminal had its config after ${config.allSec} s; at most ${config.mostInAnySecond} in a second`,
      );

      const perMinute = Number(args['deploy-per-minute']);
      say(`fan-out: a deployment of ${release.version} to all ${N} terminals at most ${perMinute} a minute…`);
      const startsBefore = updateStartAt.length;
      const endsBefore = updateEnds.length;
      const downloadsBefore = downloaded.length;
      const cpuDeploy = sampleCpu(cloudCpu);
      const createdAt = Date.now();
      const created = await cloud.api<{ id: string }>('POST', '/v1/deployments', {
        release: release.version,
        target: { locationIds: [loc] },
        groups: [{ percent: 100 }],
        maxPerMinute: perMinute,
        stopWhen: { failurePercent: 50 },
      });
      if (created.status !== 201) throw new Error(`deployment not created: ${JSON.stringify(created.body)}`);
      await waitFor(
        () => updateEnds.length - endsBefore >= N || undefined,
        'every terminal its update',
        Math.ceil((N / perMinute) * 60_000) * 2 + 120_000,
        200,
      );
      const starts = updateStartAt.slice(startsBefore);
      const ends = updateEnds.slice(endsBefore);
      const deploySec = Math.floor((Math.max(...ends.map((e) => e[0])) - createdAt) / 1000) + 1;
      const bytesPerSecond = new Array<number>(deploySec).fill(0);
      for (const [at, bytes] of downloaded.slice(downloadsBefore)) {
        const sec = Math.floor((at - createdAt) / 1000);
        if (sec >= 0 && sec < deploySec) bytesPerSecond[sec]! += bytes;
      }
      const view = await waitFor(
        async () => {
          const d = (await cloud.api<{ state: string }>('GET', `/v1/deployments/${created.body.id}`)).body;
          return d.state !== 'running' ? d : undefined;
        },
        'the deployment to end',
        60_000,
        500,
      );
      fanout = {
        config,
        deployment: {
          terminals: N,
          maxPerMinute: perMinute,
          state: view.state,
          artifactBytes: release.signed.size,
          allSec: +((Math.max(...ends.map((e) => e[0])) - createdAt) / 1000).toFixed(1),
          failed: ends.filter((e) => !e[1]).length,
          startsPerSecond: perSecondFrom(starts, createdAt, deploySec),
          mostStartsInAnySecond: mostInWindow(starts, 1000),
          mostStartsInAnyMinute: mostInWindow(starts, 60_000),
          downloadMbPerSecond: bytesPerSecond.map((b) => +(b / 1048576).toFixed(1)),
          cloudCpuPctPerSecond: cpuDeploy.stop(),
        },
      };
      say(
        `  every terminal updated after ${fanout.deployment.allSec} s (${fanout.deployment.failed} failed); at most ${fanout.deployment.mostStartsInAnyMinute} starts in a minute, ${fanout.deployment.mostStartsInAnySecond} in a second`,
      );
    }

    let before: number[];
    let handshakesBefore: typeof handshakes;
    let downsBefore: number;
    let overflowsBefore = 0;
    let stormElu: ReturnType<typeof sampleElu>;
    let readyAt: number;
    let stormCpu: ReturnType<typeof cpuAt>;
    /** The terminals that lost their link in the storm. */
    let stormTerminals: number[];
    if (G > 1) {
      const victim = gateways[1]!;
      const on = connectedOf[1]!;
      say(`storm: SIGKILL gateway 2 of ${G} (${on} terminals on it); they reconnect to the others…`);
      before = onlineAt.map((t) => t.length);
      handshakesBefore = { ...handshakes };
      downsBefore = downs.length;
      overflowsBefore = listenOverflows();
      stormElu = sampleElu(workers);
      victim.proc.expectFatal = true;
      readyAt = Date.now();
      victim.proc.child.kill('SIGKILL');
      await victim.proc.exited;
      killed.add(victim);
      stormCpu = cpuAt();
      const killedAt = readyAt;
      await waitFor(
        () => offlineAt.filter((t) => t >= killedAt).length >= on || undefined,
        "the killed gateway's links down",
        60_000,
        20,
      );
      stormTerminals = offlineAt.flatMap((t, i) => (t >= killedAt ? [i] : []));
    } else {
      say(`reconnect storm: SIGKILL the cloud, ${DOWN_MS / 1000} s down, restart on the same port…`);
      cloud.proc.child.kill('SIGKILL');
      await cloud.proc.exited;
      await waitFor(() => online.every((o) => !o), 'every link down', 60_000, 50);
      await new Promise((r) => setTimeout(r, DOWN_MS));
      before = onlineAt.map((t) => t.length);
      handshakesBefore = { ...handshakes };
      downsBefore = downs.length;
      overflowsBefore = listenOverflows();
      stormElu = sampleElu(workers);
      cloud = await restartCloud(cloud);
      gateways[0] = cloud;
      readyAt = Date.now();
      stormCpu = cpuAt();
      stormTerminals = identities.map((_, i) => i);
    }
    await waitFor(everyOnline, 'every agent back', 300_000, 100);
    const stormOverflows = listenOverflows() - overflowsBefore;
    const eluSeconds = stormElu.stop();
    const backAt = stormTerminals.map((i) => onlineAt[i]![before[i]!]!);
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
    const mean = stormTerminals.length / seconds;
    const peak = Math.max(...reconnects);
    // What the agents did: connection attempts per second over the same seconds (jitter at work).
    const attempts = perSecondFrom(attemptAt, restartedAt, seconds);
    // The refusals, counted by the cloud itself (its warn line per refused upgrade) and by the agents.
    const busyAt = alive()
      .flatMap((g) => `${g.proc.output()}\n${g.proc.stderr()}`.split('\n'))
      .filter((l) => l.includes('"code":"cloud_busy"') && l.includes('agent link refused'))
      .map((l) => (JSON.parse(l) as { time: number }).time);
    const stormDowns = downs.slice(downsBefore);
    const downsPerSecond = {
      busy: perSecondFrom(
        stormDowns.filter((d) => d[1] === 'busy').map((d) => d[0]),
        restartedAt,
        seconds,
      ),
      connrefused: perSecondFrom(
        stormDowns.filter((d) => d[1] === 'connrefused').map((d) => d[0]),
        restartedAt,
        seconds,
      ),
      other: perSecondFrom(
        stormDowns.filter((d) => d[1] === 'other').map((d) => d[0]),
        restartedAt,
        seconds,
      ),
    };
    const delays = stormDowns.map((d) => d[2]).sort((x, y) => x - y);
    const backoff = {
      p50Ms: Math.round(percentile(delays, 50)),
      p90Ms: Math.round(percentile(delays, 90)),
      maxMs: delays.at(-1) ?? 0,
      maxAttempt: Math.max(0, ...stormDowns.map((d) => d[3])),
      afterBusy: stormDowns.filter((d) => d[1] === 'busy').length,
    };
    let profile: FleetReport['profile'] =
      heap || connectProfile
        ? { ...(heap ? { heap } : {}), ...(connectProfile ? { connect: connectProfile } : {}) }
        : undefined;
    if (cpuDir && G === 1) {
      // The storm is over: the restarted cloud's profile so far (the restart and the storm).
      const file = await cpuProfileOf(cloud, cpuDir);
      {
        const firstSec = Math.min(8, seconds);
        profile = {
          ...profile,
          stormFirstSeconds: {
            seconds: firstSec,
            ...summarizeCpuProfile(join(cpuDir, file), firstSec * 1000),
          },
          storm: summarizeCpuProfile(join(cpuDir, file)),
        };
      }
    }

    // At least 500: a per-connection figure from a dozen connections is noise.
    const held = Math.max(N, 500);
    say(`reference: a bare node:tls server with the cloud's TLS, holding ${held} idle mTLS connections…`);
    const bareTls = await heldConnectionCost(held);

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
        perSecond: connectPerSecond,
      },
      cloud: {
        rssBeforeMb: +(cloudRssBefore / 1048576).toFixed(1),
        rssConnectedMb: +(cloudRssConnected / 1048576).toFixed(1),
        rssPerTerminalKb: Math.round((cloudRssConnected - cloudRssBefore) / N / 1024),
        cpuPctWhileHeartbeating: +cloudCpuPct.toFixed(1),
        bareTlsPerConnection: bareTls,
      },
      heartbeats: {
        perSecond: +heartbeatRate.toFixed(1),
        expectedPerSecond: +(N / HEARTBEAT_SEC).toFixed(1),
      },
      store: database ? 'postgres' : 'sqlite',
      gateways: perGateway,
      ...(dbLoad ? { database: dbLoad } : {}),
      storm: {
        kind: G > 1 ? 'gateway-killed' : 'cloud-restart',
        agents: stormTerminals.length,
        // Killed for good: no time down, the others take its terminals at once.
        downSec: G > 1 ? 0 : DOWN_MS / 1000,
        allBackSec: +allBackSec.toFixed(1),
        reconnectsPerSecond: reconnects,
        attemptsPerSecond: attempts,
        cloudBusyRefusalsPerSecond: perSecondFrom(busyAt, restartedAt, seconds),
        busiestWorkerEluPerSecond: eluBySecond(eluSeconds, restartedAt, seconds),
        downsPerSecond,
        backoff,
        cpuPct: stormCpuPct,
        meanPerSecond: +mean.toFixed(1),
        peakPerSecond: peak,
        peakToMean: +(peak / mean).toFixed(2),
      },
      handshakes: { connect: connectHandshakes, storm: stormHandshakes },
      listenOverflows: { connect: connectOverflows, storm: stormOverflows },
      ...(fanout ? { fanout } : {}),
      cloudArgs,
      ...(profile ? { profile } : {}),
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
    for (const g of gateways) await g.stop();
    await pg?.stop();
  }
}

/** Links this gateway holds now (its own Prometheus gauge). */
async function connectedOn(g: Cloud): Promise<number> {
  const m = /^posagent_connected_terminals (\d+)$/m.exec(
    (await httpsBinary(g, '/metrics')).body.toString('utf8'),
  );
  if (!m) throw new Error(`no posagent_connected_terminals in ${g.url}/metrics`);
  return Number(m[1]);
}

/** One statement on its own connection: its rows. */
async function sqlOn<T extends object = object>(url: string, text: string): Promise<T[]> {
  const c = new pgClient.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(text)).rows as T[];
  } finally {
    await c.end();
  }
}

/** PostgreSQL's own counters for the database: transactions ended (reads too), rows written, WAL bytes (pg_stat_database lags up to a second or so). */
async function dbCounters(url: string): Promise<{ commits: number; rows: number; walBytes: number }> {
  const [row] = await sqlOn<{ commits: string; rows: string; wal: string }>(
    url,
    `SELECT xact_commit AS commits, tup_inserted + tup_updated + tup_deleted AS rows,
      pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') AS wal
     FROM pg_stat_database WHERE datname = current_database()`,
  );
  return { commits: Number(row!.commits), rows: Number(row!.rows), walBytes: Number(row!.wal) };
}

/** A signed release of this build for the fan-out's deployment (a version no terminal runs). */
async function prepareRelease(dir: string) {
  const key = await newReleaseKey(join(dir, 'key'));
  const tarball = await packRelease('9.0.0', dir);
  return {
    version: '9.0.0',
    tarball,
    publicKeyFile: key.publicKeyFile,
    signed: await signRelease(tarball, key),
  };
}

/** `take()` once a second until stopped: each sample, oldest first. */
function everySecond<T>(take: () => T): { stop(): T[] } {
  const out: T[] = [];
  const timer = setInterval(() => out.push(take()), 1000);
  return {
    stop() {
      clearInterval(timer);
      return out;
    },
  };
}

/** The cloud's CPU (% of a core) in each second until stopped. */
function sampleCpu(cpu: () => number): { stop(): number[] } {
  let last = cpu();
  return everySecond(() => {
    const now = cpu();
    const pct = Math.round((now - last) * 100);
    last = now;
    return pct;
  });
}

/** Samples the busiest worker's event-loop utilisation every second until stopped. */
function sampleElu(workers: Worker[]): { stop(): { at: number; elu: number }[] } {
  let last = workers.map((w) => w.performance.eventLoopUtilization());
  return everySecond(() => {
    const now = workers.map((w) => w.performance.eventLoopUtilization());
    const elu = Math.max(
      ...now.map((e, i) => workers[i]!.performance.eventLoopUtilization(e, last[i]).utilization),
    );
    last = now;
    return { at: Date.now(), elu };
  });
}

/** The sample covering each second from `from` (the first taken at least a second after its start). */
function eluBySecond(samples: { at: number; elu: number }[], from: number, seconds: number): number[] {
  return Array.from({ length: seconds }, (_, i) => {
    const e = samples.find((x) => x.at - 1000 >= from + i * 1000 - 500);
    return e ? +e.elu.toFixed(2) : 0;
  });
}

/** One V8 heap snapshot of the cloud (SIGUSR2), waited for until written whole. */
/** Has the cloud write its CPU profile so far (cpu-profile-preload.ts: SIGUSR2, which also ends it); the file's name in `dir`. */
async function cpuProfileOf(cloud: Cloud, dir: string): Promise<string> {
  const file = `cpu-${cloud.proc.child.pid}.cpuprofile`;
  cloud.proc.child.kill('SIGUSR2');
  await waitFor(() => readdirSync(dir).includes(`${file}.done`), 'the CPU profile', 120_000, 200);
  return file;
}

function heapSnapshot(cloud: Cloud, dir: string): Promise<string> {
  return heapSnapshotOf(cloud.proc.child.pid!, dir, 300_000);
}

/** The connected cloud's heap against the idle one's: where the bytes per terminal are. */
async function heapSnapshotDiff(
  cloud: Cloud,
  dir: string,
): Promise<HeapGrowth & { perTerminalBytes: number }> {
  await heapSnapshot(cloud, dir);
  const [idle, connected] = snapshotsIn(dir).slice(-2) as [string, string];
  const g = heapGrowth(idle, connected, 20);
  return { ...g, perTerminalBytes: Math.round((g.totalBytes[1] - g.totalBytes[0]) / N) };
}

function fanoutLines(f: NonNullable<FleetReport['fanout']>): string[] {
  const c = f.config;
  const d = f.deployment;
  const row = (xs: number[]) => xs.map((x) => String(x).padStart(5)).join('');
  return [
    '',
    `fan-out: one template change for all ${c.terminals} terminals, config pushes at most ${c.limitPerSecond}/s`,
    `  all had it after ${c.allSec} s; at most ${c.mostInAnySecond} in any second  (limit ${c.limitPerSecond}: ${c.mostInAnySecond <= c.limitPerSecond + 1 ? 'met' : 'MISSED'})`,
    `  pushes each second   ${row(c.perSecond)}`,
    `  cloud CPU % a second ${row(c.cloudCpuPctPerSecond)}`,
    `fan-out: one deployment to all ${d.terminals} terminals, maxPerMinute ${d.maxPerMinute}, the ${(d.artifactBytes / 1048576).toFixed(1)} MB artifact downloaded whole by each`,
    `  all updated after ${d.allSec} s (${d.failed} failed; the deployment ${d.state}); update starts at most ${d.mostStartsInAnyMinute} in any minute  (limit ${d.maxPerMinute}: ${d.mostStartsInAnyMinute <= d.maxPerMinute ? 'met' : 'MISSED'}), ${d.mostStartsInAnySecond} in any second`,
    `  starts each second   ${row(d.startsPerSecond)}`,
    `  download MB a second ${row(d.downloadMbPerSecond)}`,
    `  cloud CPU % a second ${row(d.cloudCpuPctPerSecond)}`,
  ];
}

function formatFleetReport(r: FleetReport): string {
  const width = 40;
  const bars = r.storm.reconnectsPerSecond.map(
    (n, s) =>
      `  ${String(s).padStart(3)} s | ${'#'.repeat(Math.round((n / r.storm.peakPerSecond) * width)).padEnd(width)} ${String(n).padStart(5)} online ${String(r.storm.attemptsPerSecond[s] ?? 0).padStart(6)} attempts ${String(r.storm.cloudBusyRefusalsPerSecond[s] ?? 0).padStart(5)} × 503 (cloud) ${String(r.storm.downsPerSecond.busy[s] ?? 0).padStart(5)} × 503 ${String(r.storm.downsPerSecond.connrefused[s] ?? 0).padStart(5)} × ECONNREFUSED ${String(r.storm.downsPerSecond.other[s] ?? 0).padStart(4)} × other (agents), worker ${String(Math.round((r.storm.busiestWorkerEluPerSecond[s] ?? 0) * 100)).padStart(3)} % busy`,
  );
  const prof = r.profile;
  const profileLines = [
    ...(r.cloudArgs.length ? [`cloud flags added: ${r.cloudArgs.join(' ')}`] : []),
    ...(prof?.heap
      ? [
          `cloud heap (V8 snapshots): ${(prof.heap.totalBytes[0] / 1048576).toFixed(1)} MB idle → ${(prof.heap.totalBytes[1] / 1048576).toFixed(1)} MB connected: ${Math.round(prof.heap.perTerminalBytes / 1024)} KB of JS heap per terminal; largest growths:`,
          ...prof.heap.top.map(
            (t) =>
              `    ${t.what.padEnd(62)} ${String(Math.round(t.bytes / N)).padStart(6)} B/terminal (${t.count >= 0 ? '+' : ''}${t.count})`,
          ),
        ]
      : []),
    ...(prof?.connect
      ? [
          `cloud's main thread over the connect phase, ${prof.connect.seconds} s (${prof.connect.totalMs} ms sampled), self time:`,
          ...prof.connect.topFunctions.map((f) => `    ${String(f.pct).padStart(5)} %  ${f.what}`),
          '  by file:',
          ...prof.connect.topFiles.slice(0, 10).map((f) => `    ${String(f.pct).padStart(5)} %  ${f.file}`),
        ]
      : []),
    ...(prof?.stormFirstSeconds
      ? [
          `restarted cloud's main thread, first ${prof.stormFirstSeconds.seconds} s (${prof.stormFirstSeconds.totalMs} ms sampled), self time:`,
          ...prof.stormFirstSeconds.topFunctions.map((f) => `    ${String(f.pct).padStart(5)} %  ${f.what}`),
          '  by file:',
          ...prof.stormFirstSeconds.topFiles
            .slice(0, 10)
            .map((f) => `    ${String(f.pct).padStart(5)} %  ${f.file}`),
        ]
      : []),
  ];
  return [
    '',
    `Fleet: ${r.agents} agents over ${r.workers} worker threads, ${r.store === 'postgres' ? `${r.gateways.length} posagent-cloud gateways on one PostgreSQL` : 'one posagent-cloud on SQLite'}, heartbeat every ${r.heartbeatIntervalSec} s (enrolled in ${r.enrollSeconds} s)`,
    ...(r.simulatorBottleneck.length ? [`SIMULATOR BOTTLENECK: ${r.simulatorBottleneck.join('; ')}`] : []),
    '',
    `connect (all at once)   p50 ${r.connectMs.p50} ms · p90 ${r.connectMs.p90} ms · p99 ${r.connectMs.p99} ms · max ${r.connectMs.max} ms  (target p50 ≤ 3 s: ${r.targets.connectP50AtMost3s ? 'met' : 'MISSED'})`,
    `                        CPU meanwhile: cloud ${r.connectMs.cpuPct.cloudPct} %, simulator ${r.connectMs.cpuPct.simulatorPct} % of a core (${r.workers} workers, busiest ${Math.round(r.connectMs.cpuPct.busiestWorkerElu * 100)} % busy)`,
    `                        handshakes: ${r.handshakes.connect.full} full, ${r.handshakes.connect.resumed} resumed; ${r.listenOverflows.connect} SYNs dropped by a full listen queue`,
    ...r.connectMs.perSecond.online.map(
      (n, s) =>
        `    ${String(s).padStart(3)} s  ${String(n).padStart(5)} online ${String(r.connectMs.perSecond.busy[s] ?? 0).padStart(5)} × 503 ${String(r.connectMs.perSecond.other[s] ?? 0).padStart(5)} × other, worker ${String(Math.round((r.connectMs.perSecond.busiestWorkerElu[s] ?? 0) * 100)).padStart(3)} % busy`,
    ),
    `cloud RSS               ${r.cloud.rssBeforeMb} MB idle → ${r.cloud.rssConnectedMb} MB connected: ${r.cloud.rssPerTerminalKb} KB per terminal  (target ≤ 40 KB: ${r.targets.rssAtMost40KbPerTerminal ? 'met' : 'MISSED'})`,
    `                        beside, same run: a bare node:tls server with the cloud's TLS holds ${r.cloud.bareTlsPerConnection.rssPerConnectionKb} KB per idle mTLS connection (${r.cloud.bareTlsPerConnection.heapPerConnectionKb} KB of it V8 heap; ${r.cloud.bareTlsPerConnection.held} held)`,
    `heartbeat load          ${r.heartbeats.perSecond}/s (expected ${r.heartbeats.expectedPerSecond}/s); cloud CPU ${r.cloud.cpuPctWhileHeartbeating} % of a core${r.gateways.length > 1 ? ' (all gateways)' : ''}`,
    ...(r.gateways.length > 1
      ? r.gateways.map(
          (g, i) =>
            `  gateway ${i + 1}             ${g.connected} terminals, RSS ${g.rssBeforeMb} → ${g.rssConnectedMb} MB: ${g.rssPerTerminalKb} KB per terminal; CPU ${g.cpuPctWhileHeartbeating} % of a core`,
        )
      : []),
    ...(r.database
      ? [
          `PostgreSQL              ${r.database.transactionsPerSecond} transactions/s (reads too), ${r.database.rowsWrittenPerSecond} rows written/s, ${r.database.walKbPerSecond} KB WAL/s; CPU ${r.database.cpuPct} % of a core, memory ${r.database.rssMb} MB (PSS of the postmaster and its backends)`,
          ...(r.database.topStatements ?? []).map(
            (t) =>
              `  ${String(t.perSecond).padStart(7)}/s ${String(t.rowsPerCall).padStart(6)} rows  ${t.query}`,
          ),
        ]
      : []),
    ...(r.fanout ? fanoutLines(r.fanout) : []),
    '',
    r.storm.kind === 'gateway-killed'
      ? `storm: gateway 2 SIGKILLed for good, its ${r.storm.agents} terminals reconnecting to the other ${r.gateways.length - 1}`
      : `reconnect storm: cloud SIGKILLed, down ${r.storm.downSec} s, restarted`,
    `  all back after        ${r.storm.allBackSec} s  (target ≤ 15 s: ${r.targets.allBackWithin15s ? 'met' : 'MISSED'}); CPU: cloud ${r.storm.cpuPct.cloudPct} %, simulator ${r.storm.cpuPct.simulatorPct} % of a core (busiest worker ${Math.round(r.storm.cpuPct.busiestWorkerElu * 100)} % busy)`,
    `  handshakes            ${r.handshakes.storm.full} full, ${r.handshakes.storm.resumed} resumed; ${r.listenOverflows.storm} SYNs dropped by a full listen queue`,
    `  backoff drawn          p50 ${r.storm.backoff.p50Ms} ms · p90 ${r.storm.backoff.p90Ms} ms · max ${r.storm.backoff.maxMs} ms, highest attempt ${r.storm.backoff.maxAttempt}; ${r.storm.backoff.afterBusy} after a 503 cloud_busy`,
    `  reconnects per second mean ${r.storm.meanPerSecond}, peak ${r.storm.peakPerSecond}: peak/mean ${r.storm.peakToMean}×  (target ≤ 3×: ${r.targets.peakAtMost3xMean ? 'met' : 'MISSED'})`,
    ...bars,
    '',
    ...profileLines,
    ...(profileLines.length ? [''] : []),
  ].join('\n');
}

main().then(
  () => process.exit(process.exitCode ?? 0),
  (err: Error) => {
    process.stderr.write(`fleet simulator failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
