import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Cloud, enrollAgent, ROOT, startAgent, startCloud } from '../demo/local-fleet.js';
import { waitFor } from '../demo/wait-for.js';
import { measureConfigPush, measureFloor, percentile } from './config-push-latency.js';

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

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
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
  const cloud = await startCloud();
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
  } finally {
    await cloud.stop();
  }

  const header = ['figure', 'ours', 'reference', 'ratio', 'target', 'met'];
  const lines = rows.map((r) => [
    r.name,
    `${r.ours.toFixed(r.ours < 10 ? 2 : 1)} ${r.unit}`,
    `${r.reference.toFixed(r.reference < 10 ? 2 : 1)} ${r.unit} (${r.referenceName})`,
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
