import { spawn, spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { localApiRequest } from '../agent/local-api/local-api-client.js';
import {
  type Cloud,
  enrollAgent,
  FAST_RECONNECT,
  POSAGENT,
  ROOT,
  removeTempDirsAtExit,
  startAgent,
  startCloud,
  tempDir,
} from '../harness/local-fleet.js';
import { waitFor } from '../harness/wait-for.js';
import { measureConfigPush, measureFloor } from './config-push-latency.js';
import { heapGrowth, heapSnapshotOf, snapshotsIn } from './heap-diff.js';
import { cpuSeconds, mb, rssBreakdown, rssBytes } from './process-metrics.js';
import { drainRate, interleaved, localApiRate, queueModuleRate, rawInsertRate } from './queue-throughput.js';
import { median, percentile } from './statistics.js';
import { handshakeRate } from './tls-handshakes.js';

/**
 * `npm run bench [-- --quick]`: each figure beside its reference, measured in the same run on the
 * same machine, so a noisy machine cannot fake or hide a result. Writes bench/results.json.
 */
interface Row {
  name: string;
  ours: number;
  reference: number;
  referenceName: string;
  unit: string;
  ratio: number;
  target: string;
  met: boolean;
}

const PARTS = ['start', 'idle', 'push', 'enqueue', 'status', 'drain', 'handshakes', 'memory'] as const;
type Part = (typeof PARTS)[number];
const USAGE = `usage: npm run bench -- [--quick] [--only PART[,PART…]] [--memory-minutes M] [--out FILE]
  --quick             short settle and few runs: checks the bench runs, not its numbers
  --only PARTS        just these (${PARTS.join(', ')}); the README is left alone
  --memory-minutes M  length of the memory run (default 30; a number above 0)
  --out FILE          where the results go (default bench/results.json; with --only, nowhere unless given)
(README.md, "Performance", says what each row measures)`;

const flags = (() => {
  try {
    const { values } = parseArgs({
      options: {
        quick: { type: 'boolean', default: false },
        'memory-minutes': { type: 'string' },
        /**
         * `--only PART[,PART…]`: just those parts; the table is printed and written to --out, not
         * to the README. `--only memory` alone writes bench/memory-results.json as a full run's
         * memory part does.
         */
        only: { type: 'string' },
        /** Where the results go (default bench/results.json; the quick test writes elsewhere). */
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const minutes = values['memory-minutes'];
    if (minutes !== undefined && !(Number(minutes) > 0 && Number.isFinite(Number(minutes))))
      throw new Error(`--memory-minutes must be a number of minutes above 0 (got "${minutes}")`);
    if (values.only !== undefined)
      for (const p of values.only.split(','))
        if (!(PARTS as readonly string[]).includes(p.trim()))
          throw new Error(`--only: unknown part "${p.trim()}" (known: ${PARTS.join(', ')})`);
    return values;
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
})();
removeTempDirsAtExit();
const quick = flags.quick === true;
const SETTLE_MS = quick ? 2_000 : 60_000;
const RUNS = quick ? 3 : 7;
/** The memory-over-time run: 30 minutes in a full run (sampled every minute), seconds with --quick. */
const MEMORY_MS = Number(flags['memory-minutes'] ?? (quick ? 0.25 : 30)) * 60_000;
const MEMORY_SAMPLE_MS = quick ? 3_000 : 60_000;

/** A bare `node` idling on a 1 s timer: the reference for RSS and CPU. */
function bareNode() {
  return spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
}

/** Wall time of `node -e ''`: the floor of any Node start. */
function nodeStartMs(): number {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '']);
  return performance.now() - t0;
}

/**
 * Memory over time: two agents under the same steady work — heartbeats every second, a config
 * push every 10 s, 10 transactions a second each through the local API. The measured one is only
 * sampled (RSS every minute); the figure is its RSS growth after the warm-up (the first fifth of
 * the run), beside a bare node's over the same time. Its twin takes the heap snapshots at a third
 * of the run (10 min of 30) and at the end, which say where any growth is: V8's snapshot writer
 * takes tens of MB it never returns, so a snapshot in the sampled agent would be its growth.
 */
async function memoryOverTime(): Promise<Row> {
  const minutes = MEMORY_MS / 60_000;
  process.stderr.write(
    `measuring memory over ${minutes} min (two agents: 1 s heartbeats, push every 10 s, 10 tx/s each; heap snapshots in the twin)…\n`,
  );
  const cloud = await startCloud(['--heartbeat-interval', '1', '--log-level', 'warn']);
  const bare = bareNode();
  const snapDir = tempDir('heap');
  const [measured, twin] = await Promise.all([enrollAgent(cloud), enrollAgent(cloud)]);
  // Heap snapshots on SIGUSR2 (V8's own), in the twin only.
  const agents = [
    startAgent(measured.dirs, ['--log-level', 'warn']),
    startAgent(twin.dirs, ['--log-level', 'warn'], {
      ...FAST_RECONNECT,
      NODE_OPTIONS: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${snapDir}`,
    }),
  ] as const;
  const timers: NodeJS.Timeout[] = [];
  try {
    const load = [measured, twin].map((a) => ({ ...a, socket: `${a.dirs.runtimeDir}/api.sock` }));
    for (const a of load) await waitFor(() => existsSync(a.socket), 'socket');
    let pushes = 0;
    timers.push(
      setInterval(() => {
        pushes++;
        for (const a of load)
          void cloud.api('POST', `/v1/terminals/${a.terminalId}/configure`, {
            display: { idleMessage: `push ${pushes}` },
          });
      }, 10_000),
    );
    let sent = 0;
    timers.push(
      setInterval(() => {
        for (let i = 0; i < 10; i++) {
          sent++;
          for (const a of load)
            void localApiRequest(a.socket, 'POST', '/v1/transactions', {
              id: randomUUID(),
              amount: 100 + (sent % 900),
              currency: 'EUR',
            }).catch(() => undefined);
        }
      }, 1000),
    );
    const ours: number[] = [];
    const ref: number[] = [];
    /** The measured agent's RSS by kind at each sample (process-metrics.ts rssBreakdown). */
    const kinds: ReturnType<typeof rssBreakdown>[] = [];
    const startedAt = Date.now();
    const end = startedAt + MEMORY_MS;
    const snapshot = () => heapSnapshotOf(agents[1].child.pid!, snapDir, 120_000);
    let snapped = false;
    while (Date.now() < end) {
      await sleep(MEMORY_SAMPLE_MS);
      ours.push(rssBytes(agents[0].child.pid!));
      kinds.push(rssBreakdown(agents[0].child.pid!));
      ref.push(rssBytes(bare.pid!));
      if (!snapped && Date.now() - startedAt >= MEMORY_MS / 3) {
        snapped = true;
        await snapshot();
      }
    }
    await snapshot();
    for (const t of timers) clearInterval(t);
    const [first, last] = [snapshotsIn(snapDir).at(0)!, snapshotsIn(snapDir).at(-1)!];
    const heap = heapGrowth(first, last);
    process.stderr.write(
      `twin's heap ${mb(heap.totalBytes[0])} MB at ${Math.round(minutes / 3)} min → ${mb(heap.totalBytes[1])} MB at ${minutes} min; largest growths: ${heap.top
        .map(
          (t) =>
            `${t.what} ${t.bytes >= 0 ? '+' : ''}${Math.round(t.bytes / 1024)} KB (${t.count >= 0 ? '+' : ''}${t.count})`,
        )
        .join(', ')}\n`,
    );
    const warm = Math.max(1, Math.floor(ours.length / 5));
    const growth = (xs: number[]) => mb(median(xs.slice(-3)) - median(xs.slice(warm, warm + 3)));
    const byKind = {
      heapMb: growth(kinds.map((k) => k.heap)),
      anonMb: growth(kinds.map((k) => k.anon)),
      fileMb: growth(kinds.map((k) => k.file)),
    };
    process.stderr.write(
      `the measured agent's growth after warm-up by kind: brk heap (malloc) ${byKind.heapMb} MB, other anonymous (V8's pages, large mallocs) ${byKind.anonMb} MB, mapped files ${byKind.fileMb} MB\n`,
    );
    if (!quick)
      writeFileSync(
        join(ROOT, 'bench/memory-results.json'),
        `${JSON.stringify({ at: new Date().toISOString(), minutes, sampleEveryMs: MEMORY_SAMPLE_MS, transactionsPerAgent: sent, pushesPerAgent: pushes, agentRssMb: ours.map(mb), agentRssByKindMb: kinds.map((k) => ({ heap: mb(k.heap), anon: mb(k.anon), file: mb(k.file) })), agentGrowthByKindMb: byKind, bareNodeRssMb: ref.map(mb), twinHeap: { atThirdMb: mb(heap.totalBytes[0]), atEndMb: mb(heap.totalBytes[1]), largestGrowths: heap.top } }, null, 2)}\n`,
      );
    const g = growth(ours);
    return row(
      `RSS growth after warm-up, ${minutes} min under load`,
      g,
      growth(ref),
      'bare node, same minutes',
      'MB',
      '≤ 2 MB',
      g <= 2,
    );
  } finally {
    for (const t of timers) clearInterval(t);
    for (const a of agents) a.child.kill('SIGTERM');
    await Promise.all(agents.map((a) => a.exited));
    bare.kill('SIGKILL');
    await cloud.stop();
  }
}

/** Wall time of the CLI answering `status --json` (the shipped bundle, the daemon asked over its socket). */
function statusJsonMs(flags: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [POSAGENT, 'status', '--json', ...flags]);
  if (r.status !== 0) throw new Error(`status --json exited ${r.status}: ${r.stderr.toString()}`);
  return performance.now() - t0;
}

/** `status --json` with the daemon running, interleaved with `node -e ''` (the same number of each). */
function statusRow(cliFlags: string[]): Row {
  process.stderr.write(`measuring posagent status --json (${RUNS * 3} runs) beside node -e ''…\n`);
  const statusTimes: number[] = [];
  const floors: number[] = [];
  for (let i = 0; i < RUNS * 3; i++) {
    statusTimes.push(statusJsonMs(cliFlags));
    floors.push(nodeStartMs());
  }
  const st = median(statusTimes);
  const floor = median(floors);
  return row(
    'posagent status --json (daemon running, median)',
    st,
    floor,
    "node -e ''",
    'ms',
    '≤ 1.3×',
    st / floor <= 1.3,
  );
}

/** From spawn to the agent's own "link online" log line (its clock and ours are the same machine's). */
async function startToOnlineMs(
  cloud: Cloud,
  dirs: Awaited<ReturnType<typeof enrollAgent>>['dirs'],
): Promise<number> {
  const t0 = Date.now();
  const agent = startAgent(dirs);
  try {
    const line = await waitFor(
      () =>
        agent
          .output()
          .split('\n')
          .find((l) => l.includes('"msg":"link online"')),
      'link online',
      20_000,
      5,
    );
    return (JSON.parse(line) as { time: number }).time - t0;
  } finally {
    agent.child.kill('SIGTERM');
    await agent.exited;
    void cloud;
  }
}

/**
 * TLS handshakes per second per cloud core (mTLS, the cloud's TLS policy and ticket options,
 * loopback): P-256 full beside RSA-2048 full (the identities before issue 23), and P-256 resumed
 * beside P-256 full — all measured in this run, each over the server process's own CPU seconds.
 */
async function handshakeRows(): Promise<Row[]> {
  const seconds = quick ? 1 : 5;
  process.stderr.write(
    `measuring TLS handshakes per cloud core (${seconds} s each: P-256 full, resumed; RSA-2048 full; bare node:tls full, resumed)…\n`,
  );
  const full = await handshakeRate('p256', 'full', seconds);
  const resumed = await handshakeRate('p256', 'resumed', seconds);
  const rsa = await handshakeRate('rsa', 'full', seconds);
  const bareFull = await handshakeRate('bare', 'full', seconds);
  const bareResumed = await handshakeRate('bare', 'resumed', seconds);
  return [
    row(
      'TLS handshakes per cloud core, full (P-256 mTLS)',
      full.perCoreSecond,
      rsa.perCoreSecond,
      'RSA-2048 full, same run',
      '/s',
      '≥ 1,500/s',
      full.perCoreSecond >= 1500,
    ),
    row(
      `TLS handshakes per cloud core, resumed (P-256 mTLS, ${Math.round(resumed.resumedShare * 100)} % resumed)`,
      resumed.perCoreSecond,
      full.perCoreSecond,
      'P-256 full, same run',
      '/s',
      '≥ 5,000/s',
      resumed.perCoreSecond >= 5000,
    ),
    row(
      `TLS handshakes per core, bare node:tls server, full / resumed (${Math.round(bareResumed.resumedShare * 100)} % resumed)`,
      bareResumed.perCoreSecond,
      bareFull.perCoreSecond,
      'bare node:tls full, same run',
      '/s',
      '— (the floor)',
      true,
    ),
  ];
}

function fmtNum(x: number): string {
  const a = Math.abs(x);
  return a >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(a < 1 ? 3 : a < 10 ? 2 : 1);
}

function row(
  name: string,
  ours: number,
  reference: number,
  referenceName: string,
  unit: string,
  target: string,
  met: boolean,
): Row {
  // A reference near zero (a growth, an idle CPU) makes a ratio meaningless: shown as —.
  const ratio = Math.abs(reference) > 1e-9 ? ours / reference : Number.NaN;
  return { name, ours, reference, referenceName, unit, ratio, target, met };
}

const only = flags.only === undefined ? undefined : new Set(flags.only.split(',').map((p) => p.trim()));
/** Whether this run measures a part. */
const runs = (part: Part) => only === undefined || only.has(part);

async function main(): Promise<void> {
  if (only?.size === 1 && only.has('memory')) {
    const r = await memoryOverTime();
    process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
    return;
  }
  const rows: Row[] = [];
  let cloud = await startCloud();
  try {
    const enrolled = await enrollAgent(cloud);

    if (runs('start')) {
      process.stderr.write(`measuring start → online (${RUNS} runs)…\n`);
      const onlines: number[] = [];
      const nodeStarts: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        onlines.push(await startToOnlineMs(cloud, enrolled.dirs));
        nodeStarts.push(nodeStartMs());
      }
      const online = median(onlines);
      rows.push(
        row(
          'agent start → Online (loopback, median)',
          online,
          median(nodeStarts),
          "node -e ''",
          'ms',
          '≤ 200 ms',
          online <= 200,
        ),
      );
    }
    if (runs('idle')) {
      process.stderr.write(
        `measuring idle RSS and CPU over ${SETTLE_MS / 1000} s online, beside bare node and the floor (SQLite + one mTLS link)…\n`,
      );
      const agent = startAgent(enrolled.dirs);
      const bare = bareNode();
      const floor = spawn(
        process.execPath,
        [join(ROOT, 'dist/bench/idle-floor.js'), enrolled.dirs.stateDir, cloud.url, tempDir('floor')],
        { stdio: ['ignore', 'pipe', 'inherit'] },
      );
      let floorOut = '';
      floor.stdout.on('data', (d: Buffer) => {
        floorOut += d.toString();
      });
      try {
        await waitFor(() => agent.output().includes('"msg":"link online"'), 'online');
        await waitFor(() => floorOut.includes('ready'), 'the floor process connected');
        const cpu0 = [cpuSeconds(agent.child.pid!), cpuSeconds(bare.pid!)];
        await sleep(SETTLE_MS);
        const cpu = [cpuSeconds(agent.child.pid!) - cpu0[0]!, cpuSeconds(bare.pid!) - cpu0[1]!];
        const ours = rssBytes(agent.child.pid!);
        const ref = rssBytes(bare.pid!);
        const floorRss = rssBytes(floor.pid!);
        rows.push(
          row(
            `idle RSS, enrolled + online agent, after ${SETTLE_MS / 1000} s`,
            mb(ours),
            mb(ref),
            'bare node idle',
            'MB',
            '≤ 1.3×',
            ours / ref <= 1.3,
          ),
          row(
            'idle RSS, the same agent beside the floor',
            mb(ours),
            mb(floorRss),
            'node + better-sqlite3 WAL file + one mTLS connection',
            'MB',
            '—',
            true,
          ),
        );
        const pct = (s: number) => Math.round((s / (SETTLE_MS / 1000)) * 100 * 1000) / 1000;
        rows.push(
          row(
            `idle CPU over ${SETTLE_MS / 1000} s (% of a core)`,
            pct(cpu[0]!),
            pct(cpu[1]!),
            'bare node idle',
            '%',
            '≤ 0.2 %',
            pct(cpu[0]!) <= 0.2,
          ),
        );
      } finally {
        bare.kill('SIGKILL');
        floor.kill('SIGKILL');
        agent.child.kill('SIGTERM');
        await agent.exited;
      }
    }
    if (runs('push')) {
      const pushes = quick ? 50 : 1000;
      process.stderr.write(`measuring config push → applied ack (${pushes} pushes) and the floor…\n`);
      const times = await measureConfigPush(cloud.dataDir, enrolled.dirs, pushes);
      const floor = await measureFloor(cloud.dataDir, pushes);
      for (const p of [50, 99]) {
        const ours = percentile(times, p);
        const ref = percentile(floor.echo, p) + percentile(floor.commit, p);
        rows.push(
          row(
            `config push → applied ack, p${p} (${pushes} pushes)`,
            ours,
            ref,
            'TLS WS echo + FULL commit',
            'ms',
            p === 99 ? '≤ 10 ms' : '—',
            p !== 99 || ours <= 10,
          ),
        );
      }
    }
    const n = quick ? 300 : 3000;
    let raw = Number.NaN;
    if (runs('enqueue')) {
      process.stderr.write(
        `measuring durable enqueue (${n} transactions, each committed) beside raw better-sqlite3…\n`,
      );
      const rounds = 5;
      const measured = interleaved(
        rounds,
        () => queueModuleRate(Math.ceil(n / rounds)),
        () => rawInsertRate(Math.ceil(n / rounds)),
      );
      raw = measured.reference;
      rows.push(
        row(
          `durable enqueue, queue module (median of ${rounds} interleaved rounds)`,
          measured.ours,
          raw,
          'raw better-sqlite3 insert, same pragmas',
          'tx/s',
          '≥ 0.8×',
          measured.ours / raw >= 0.8,
        ),
      );
    }
    if (runs('enqueue') || runs('status')) {
      const daemon = startAgent(enrolled.dirs, ['--log-level', 'warn']);
      try {
        await waitFor(
          () =>
            daemon.output().includes('"msg":"link online"') || daemon.child.exitCode !== null || undefined,
          'daemon up',
          20_000,
        ).catch(() => {});
        await waitFor(() => existsSync(`${enrolled.dirs.runtimeDir}/api.sock`), 'socket');
        if (runs('enqueue')) {
          const api = await localApiRate(enrolled.dirs, Math.min(n, 1000));
          rows.push(
            row(
              'durable enqueue, local API (HTTP on the socket)',
              api,
              raw,
              'raw better-sqlite3 insert, same pragmas',
              'tx/s',
              '—',
              true,
            ),
          );
        }
        if (runs('status')) rows.push(statusRow(enrolled.dirs.flags));
      } finally {
        daemon.child.kill('SIGTERM');
        await daemon.exited;
      }
    }
    if (runs('drain')) {
      const backlog = quick ? 1000 : 10_000;
      process.stderr.write(`measuring drain of ${backlog} transactions after reconnect…\n`);
      const drained = await drainRate(cloud, enrolled.dirs, backlog);
      cloud = drained.cloud;
      const batched = rawInsertRate(backlog, 100);
      rows.push(
        row(
          `drain after reconnect (${backlog} queued)`,
          drained.rate,
          batched,
          'raw batched inserts of 100',
          'tx/s',
          '≥ 10,000 tx/s',
          drained.rate >= 10_000,
        ),
      );
    }
  } finally {
    await cloud.stop();
  }
  if (runs('handshakes')) rows.push(...(await handshakeRows()));
  if (runs('memory')) rows.push(await memoryOverTime());

  const header = ['figure', 'ours', 'reference', 'ratio', 'target', 'met'];
  const lines = rows.map((r) => [
    r.name,
    `${fmtNum(r.ours)} ${r.unit}`,
    `${fmtNum(r.reference)} ${r.unit} (${r.referenceName})`,
    Number.isFinite(r.ratio) ? `${r.ratio.toFixed(2)}×` : '—',
    r.target,
    r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  const table = [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join(
    '\n',
  );
  process.stdout.write(
    `\n${table}\n\n${quick ? '(--quick: short settle and few runs; checks the bench runs, not its numbers)\n' : ''}`,
  );
  if (!quick && only === undefined) updateReadme(table);
  // A partial run (--only) writes its rows only where --out says, never over the full run's file.
  const out = flags.out ?? (only === undefined ? join(ROOT, 'bench/results.json') : undefined);
  if (out === undefined) return;
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
  writeFileSync(
    out,
    `${JSON.stringify({ at: new Date().toISOString(), quick, node: process.version, cpu, settleMs: SETTLE_MS, runs: RUNS, rows }, null, 2)}\n`,
  );
}

/** Full runs put their table in the README between the bench markers. */
function updateReadme(table: string): void {
  const file = join(ROOT, 'README.md');
  const text = readFileSync(file, 'utf8');
  const start = text.indexOf('<!-- bench:start -->');
  const end = text.indexOf('<!-- bench:end -->');
  if (start < 0 || end < 0) return;
  const stamp = `Measured ${new Date().toISOString().slice(0, 10)}, ${process.version}, ${RUNS} runs, ${SETTLE_MS / 1000} s settle.`;
  writeFileSync(
    file,
    `${text.slice(0, start)}<!-- bench:start -->\n${table}\n\n${stamp}\n${text.slice(end)}`,
  );
}

main().catch((err: Error) => {
  process.stderr.write(`bench failed: ${err.stack}\n`);
  process.exit(1);
});
