import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
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
      const { stdout } = await run('pgrep', ['-P', String(nspawn.pid)]).catch(() => ({ stdout: '' }));
      return stdout.trim().split('\n')[0] || undefined;
    },
    'the container init',
    20_000,
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
  await waitFor(
    async () => {
      const r = await exec(['systemctl', 'is-system-running']);
      const state = r.stdout.trim();
      return state === 'running' || state === 'degraded' ? state : undefined;
    },
    'the container to finish booting',
    60_000,
  );
  return c;
}
