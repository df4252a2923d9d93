import { type ChildProcess, execFile, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from '../support/wait-for.js';

/**
 * A real systemd to test the unit, the boot guard and the privileged installer under: a minimal
 * Debian root made with debootstrap (cached in /var/tmp between runs), copied per run, and booted
 * with `systemd-nspawn --boot`. It shares the host's network namespace (the cloud listens on the
 * host's loopback) and the host's node binary (bind-mounted read-only at /usr/bin/node). Commands
 * run inside with nsenter. Needs root, debootstrap and systemd-container (Debian packages).
 */
const run = promisify(execFile);

const SUITE = 'bookworm';
const MIRROR = process.env.POSAGENT_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian';
const PACKAGES = ['systemd', 'systemd-sysv', 'dbus', 'libpam-systemd', 'polkitd', 'libstdc++6'];
const CACHE = `/var/tmp/posagent-system-root-${SUITE}-v1`;

export function checkHost(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0)
    missing.push('root (run as root: systemd-nspawn boots containers only as root)');
  for (const [tool, pkg] of [
    ['/usr/sbin/debootstrap', 'debootstrap'],
    ['/usr/bin/systemd-nspawn', 'systemd-container'],
    ['/usr/bin/nsenter', 'util-linux'],
  ] as const)
    if (!existsSync(tool)) missing.push(`${tool} (apt-get install ${pkg})`);
  if (missing.length > 0)
    throw new Error(`the system test needs: ${missing.join('; ')}. .ci/run installs them.`);
}

/** The cached Debian root (made once; debootstrap takes about a minute). */
export async function debianRoot(log: (m: string) => void): Promise<string> {
  if (existsSync(join(CACHE, '.posagent-root'))) return CACHE;
  const tmp = `${CACHE}.making-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  log(`debootstrap ${SUITE} (${PACKAGES.join(', ')}) into ${CACHE} …`);
  await run('debootstrap', ['--variant=minbase', `--include=${PACKAGES.join(',')}`, SUITE, tmp, MIRROR], {
    maxBuffer: 64 * 1024 * 1024,
  }).catch((err: Error) => {
    let detail = '';
    try {
      detail = readFileSync(join(tmp, 'debootstrap/debootstrap.log'), 'utf8')
        .split('\n')
        .slice(-15)
        .join('\n');
    } catch {}
    throw new Error(`debootstrap failed: ${err.message}\n${detail}`);
  });
  writeFileSync(join(tmp, '.posagent-root'), `${new Date().toISOString()}\n`);
  rmSync(CACHE, { recursive: true, force: true });
  renameSync(tmp, CACHE);
  return CACHE;
}

export interface Container {
  root: string;
  /** Runs a command inside; resolves with its exit code and output (never throws on a non-zero exit). */
  exec(
    cmd: string[],
    opts?: { timeoutMs?: number },
  ): Promise<{ code: number; stdout: string; stderr: string }>;
  /** Runs a shell line inside and returns stdout, throwing on failure. */
  sh(line: string): Promise<string>;
  console(): string;
  stop(): Promise<void>;
}

/** A fresh copy of the cached root at `root`, for one run. */
export async function copyRoot(from: string, root: string): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(join(root, '..'), { recursive: true });
  await run('cp', ['-a', from, root]);
}

/**
 * The container's PID 1 as the host sees it. Not simply "nspawn's first child": nspawn forks an
 * outer child that forks the real init and exits, so for a moment the first child is a process
 * that is about to vanish (CI saw nsenter fail with "stat of /proc/N/ns/user failed" for three
 * minutes after taking it). The init is the descendant of nspawn that lives in another PID
 * namespace, has become systemd, and whose parent is on the host's side.
 */
function containerInit(nspawnPid: number): string | undefined {
  const hostPidNs = readlinkSync('/proc/self/ns/pid');
  const parent = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ")".
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {}
  }
  const descends = (pid: number): boolean => {
    for (let p = parent.get(pid), hops = 0; p !== undefined && hops < 8; p = parent.get(p), hops++)
      if (p === nspawnPid) return true;
    return false;
  };
  for (const pid of parent.keys()) {
    if (!descends(pid)) continue;
    try {
      if (readlinkSync(`/proc/${pid}/ns/pid`) === hostPidNs) continue;
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'systemd') continue;
      // PID 1 itself, not a systemd it started (a user manager): its parent is on the host's side.
      if (readlinkSync(`/proc/${parent.get(pid)}/ns/pid`) !== hostPidNs) continue;
      return String(pid);
    } catch {}
  }
  return undefined;
}

export async function boot(root: string): Promise<Container> {
  let out = '';
  const nspawn: ChildProcess = spawn(
    'systemd-nspawn',
    [
      '-q',
      '-D',
      root,
      '--boot',
      '--register=no',
      '--keep-unit',
      '--bind-ro=/usr/bin/node',
      `--machine=posagent-${process.pid}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  nspawn.stdout?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  nspawn.stderr?.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-200_000)));
  const exited = new Promise<void>((r) => nspawn.once('exit', () => r()));
  const init = await waitFor(
    async () => {
      if (nspawn.exitCode !== null) throw new Error(`systemd-nspawn exited: ${out}`);
      return containerInit(nspawn.pid as number);
    },
    'the container init (systemd as PID 1 of a new PID namespace under systemd-nspawn)',
    30_000,
  );
  const exec: Container['exec'] = (cmd, opts = {}) =>
    new Promise((resolve) => {
      execFile(
        'nsenter',
        ['-t', init, '-a', ...cmd],
        { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 * 1024 * 1024 },
        (err, stdout, stderr) => {
          const code = err ? (err as unknown as { code?: number | string }).code : 0;
          resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
        },
      );
    });
  const c: Container = {
    root,
    exec,
    async sh(line) {
      const r = await exec(['/bin/sh', '-c', line]);
      if (r.code !== 0)
        throw new Error(`inside the container, "${line}" failed (${r.code}): ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
    console: () => out,
    async stop() {
      if (nspawn.exitCode !== null) return;
      await exec(['systemctl', 'poweroff'], { timeoutMs: 10_000 });
      const t = setTimeout(() => nspawn.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
    },
  };
  // Ready for the tests once PID 1 answers and the basic system and the bus are up. Not "the whole
  // boot finished": multi-user.target waits for posagent's own READY, which is what the first test
  // checks, with its own deadline and a better message than a boot timeout.
  let last = '';
  try {
    await waitFor(
      async () => {
        const r = await exec(['systemctl', 'is-active', 'basic.target', 'dbus.socket']);
        last = `systemctl is-active basic.target dbus.socket → ${r.code}: ${(r.stdout + r.stderr).trim()}`;
        return r.code === 0 || undefined;
      },
      'the container to boot (basic.target and dbus.socket active)',
      180_000,
      500,
    );
  } catch (err) {
    const jobs = await exec(['systemctl', 'list-jobs', '--no-pager'], { timeoutMs: 10_000 });
    await c.stop().catch(() => {});
    throw new Error(
      `${(err as Error).message}\nlast answer: ${last}\njobs: ${(jobs.stdout + jobs.stderr).trim()}\nconsole (tail):\n${out.slice(-4000)}`,
    );
  }
  return c;
}
