import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Cloud, enrollAgent, POSAGENT, ROOT, startAgent, startCloud } from '../demo/local-fleet.js';
import { waitFor } from '../demo/wait-for.js';
import { measureConfigPush, measureFloor } from './config-push-latency.js';
import { drainRate, interleaved, localApiRate, queueModuleRate, rawInsertRate } from './queue-throughput.js';
import { median, percentile } from './statistics.js';

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

const quick = process.argv.includes('--quick');
const SETTLE_MS = quick ? 2_000 : 30_000;
const RUNS = quick ? 3 : 7;

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Bare `node` idle RSS after the same settle time. */
async function bareNodeRss(): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  try {
    await sleep(SETTLE_MS);
    return rssBytes(child.pid!);
  } finally {
    child.kill('SIGKILL');
  }
}

/** Wall time of `node -e ''`: the floor of any Node start. */
function nodeStartMs(): number {
  const t0 = performance.now();
  spawnSync(process.execPath, ['-e', '']);
  return performance.now() - t0;
}

/** Wall time of the CLI answering `status --json` (the shipped bundle, the daemon asked over its socket). */
function statusJsonMs(flags: string[]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [POSAGENT, 'status', '--json', ...flags]);
  if (r.status !== 0) throw new Error(`status --json exited ${r.status}: ${r.stderr.toString()}`);
  return performance.now() - t0;
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

function fmtNum(x: number): string {
  return x >= 1000 ? Math.round(x).toLocaleString('en-US') : x.toFixed(x < 10 ? 2 : 1);
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
  return { name, ours, reference, referenceName, unit, ratio: ours / reference, target, met };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  let cloud = await startCloud();
  try {
    const enrolled = await enrollAgent(cloud);

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
        '≤ 300 ms',
        online <= 300,
      ),
    );

    process.stderr.write(`measuring idle RSS after ${SETTLE_MS / 1000} s online, beside bare node…\n`);
    const agent = startAgent(enrolled.dirs);
    try {
      await waitFor(() => agent.output().includes('"msg":"link online"'), 'online');
      const [ours, bare] = await Promise.all([
        sleep(SETTLE_MS).then(() => rssBytes(agent.child.pid!)),
        bareNodeRss(),
      ]);
      const mb = (b: number) => Math.round((b / 1048576) * 10) / 10;
      rows.push(
        row(
          'idle RSS, enrolled + online agent',
          mb(ours),
          mb(bare),
          'bare node idle',
          'MB',
          '≤ 1.3×',
          ours / bare <= 1.3,
        ),
      );
    } finally {
      agent.child.kill('SIGTERM');
      await agent.exited;
    }

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

    const n = quick ? 300 : 3000;
    process.stderr.write(
      `measuring durable enqueue (${n} transactions, each committed) beside raw better-sqlite3…\n`,
    );
    const rounds = 5;
    const { ours: module, reference: raw } = interleaved(
      rounds,
      () => queueModuleRate(Math.ceil(n / rounds)),
      () => rawInsertRate(Math.ceil(n / rounds)),
    );
    rows.push(
      row(
        `durable enqueue, queue module (median of ${rounds} interleaved rounds)`,
        module,
        raw,
        'raw better-sqlite3 insert, same pragmas',
        'tx/s',
        '≥ 0.8×',
        module / raw >= 0.8,
      ),
    );
    const daemon = startAgent(enrolled.dirs, ['--log-level', 'warn']);
    try {
      await waitFor(
        () => daemon.output().includes('"msg":"link online"') || daemon.child.exitCode !== null || undefined,
        'daemon up',
        20_000,
      ).catch(() => {});
      await waitFor(
        async () => (await import('node:fs')).existsSync(`${enrolled.dirs.runtimeDir}/api.sock`),
        'socket',
      );
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
      process.stderr.write(`measuring posagent status --json (${RUNS * 3} runs) beside node -e ''…\n`);
      const statusTimes: number[] = [];
      const floors: number[] = [];
      for (let i = 0; i < RUNS * 3; i++) {
        statusTimes.push(statusJsonMs(enrolled.dirs.flags));
        floors.push(nodeStartMs());
      }
      const st = median(statusTimes);
      const floor = median(floors);
      rows.push(
        row(
          'posagent status --json (daemon running, median)',
          st,
          floor,
          "node -e ''",
          'ms',
          '≤ 1.5×',
          st / floor <= 1.5,
        ),
      );
    } finally {
      daemon.child.kill('SIGTERM');
      await daemon.exited;
    }
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
  } finally {
    await cloud.stop();
  }

  const header = ['figure', 'ours', 'reference', 'ratio', 'target', 'met'];
  const lines = rows.map((r) => [
    r.name,
    `${fmtNum(r.ours)} ${r.unit}`,
    `${fmtNum(r.reference)} ${r.unit} (${r.referenceName})`,
    `${r.ratio.toFixed(2)}×`,
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
  if (!quick) updateReadme(table);
  const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? 'unknown';
  writeFileSync(
    join(ROOT, 'bench/results.json'),
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
