import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  type Cloud,
  FAST_RECONNECT,
  httpsJson,
  POSAGENT_CLOUD,
  type Proc,
  ROOT,
  start,
  tempDir,
} from './local-fleet.js';

/**
 * Releases for the demo and the tests: real `npm pack` tarballs of this package (the shipped
 * files only) under any version, signed with a release key by the real `posagent-cloud
 * release-sign`, published to the cloud, and installed the way systemd/install.sh lays them out.
 */
const run = promisify(execFile);

export interface ReleaseKey {
  privateKeyFile: string;
  publicKeyFile: string;
}

export async function newReleaseKey(dir = tempDir('release-key')): Promise<ReleaseKey> {
  const p = start(POSAGENT_CLOUD, ['release-key', '--out', dir]);
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`release-key failed: ${p.stderr()}`);
  return JSON.parse(p.output()) as ReleaseKey;
}

/**
 * `npm pack` of this package as `version`. `patch` may change the staged files first (a broken
 * build for a rollback test).
 */
export async function packRelease(
  version: string,
  outDir: string,
  patch?: (stageDir: string) => Promise<void>,
): Promise<string> {
  const stage = tempDir(`stage-${version}`);
  const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as Record<string, unknown>;
  pkg.version = version;
  delete pkg.scripts;
  await writeFile(join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  for (const f of pkg.files as string[]) {
    await cp(join(ROOT, f), join(stage, f), { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  await patch?.(stage);
  await mkdir(outDir, { recursive: true });
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', outDir], {
    cwd: stage,
  });
  await rm(stage, { recursive: true, force: true });
  const [packed] = JSON.parse(stdout) as { filename: string }[];
  return join(outDir, packed!.filename);
}

export interface SignedRelease {
  version: string;
  sha256: string;
  size: number;
  signature: string;
  downgradeSignature?: string;
  downgradeFrom?: string;
}

export async function signRelease(
  tarball: string,
  key: ReleaseKey,
  opts: { allowDowngradeFrom?: string } = {},
): Promise<SignedRelease> {
  const p = start(POSAGENT_CLOUD, [
    'release-sign',
    tarball,
    '--key',
    key.privateKeyFile,
    ...(opts.allowDowngradeFrom ? ['--allow-downgrade-from', opts.allowDowngradeFrom] : []),
  ]);
  const { code } = await p.exited;
  if (code !== 0) throw new Error(`release-sign failed: ${p.stderr()}`);
  return JSON.parse(p.output()) as SignedRelease;
}

/** `PUT /v1/releases/{version}` with the tarball and its signature. */
export async function publishRelease(
  cloud: Cloud,
  tarball: string,
  signed: SignedRelease,
  bytes?: Buffer,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return httpsJson(
    cloud.url,
    await readFile(cloud.caFile, 'utf8'),
    'PUT',
    `/v1/releases/${signed.version}`,
    bytes ?? (await readFile(tarball)),
    cloud.adminToken,
    { 'posagent-release-signature': signed.signature },
  );
}

/**
 * Unpacks a release into `<installDir>/releases/<version>` and points `current` at it, the way
 * systemd/install.sh lays it out: owned by whoever installs (root), 0755, nothing group- or
 * other-writable.
 */
export async function installRelease(tarball: string, installDir: string, version: string): Promise<void> {
  const tar = await import('tar');
  const dir = join(installDir, 'releases', version);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  await chmod(installDir, 0o755);
  await chmod(join(installDir, 'releases'), 0o755);
  await tar.x({ file: tarball, cwd: dir, strip: 1, preserveOwner: false });
  await run('chmod', ['-R', 'go-w', dir]);
  await rm(join(installDir, 'current'), { force: true });
  await symlink(join('releases', version), join(installDir, 'current'));
}

/** What the installed `current` release answers to `--version`. */
export async function installedVersion(installDir: string): Promise<string> {
  const { stdout } = await run(process.execPath, [
    join(installDir, 'current/dist/bin/posagent.js'),
    '--version',
  ]);
  return stdout.trim();
}

/** The root-side installer and boot guard, as the tests run them (systemd runs the installed copy). */
export const POSAGENT_INSTALLER = join(ROOT, 'dist/bin/posagent-installer.js');

/** The installCommand device setting that runs the privileged installer directly (no systemd, no polkit). */
export function installCommandFor(installDir: string, stateDir: string, releaseKeyFile: string): string {
  return [
    process.execPath,
    POSAGENT_INSTALLER,
    '{step}',
    '--install-dir',
    installDir,
    '--state-dir',
    stateDir,
    '--release-key',
    releaseKeyFile,
  ]
    .map((a) => (a === '{step}' ? a : `'${a.replaceAll("'", "'\\''")}'`))
    .join(' ');
}

/**
 * What systemd does for the installed agent (systemd/posagent.service): before each start the boot
 * guard (`ExecStartPre=+posagent-installer guard`), then `current/…/posagent.js run`; after each
 * exit `posagent-installer stopped` with $SERVICE_RESULT/$EXIT_CODE/$EXIT_STATUS (`ExecStopPost=+`);
 * `Restart=on-failure` (any non-zero exit, 75 included) after `restartMs`; and the start limit
 * (`StartLimitBurst` starts within `StartLimitIntervalSec`), past which it gives up as systemd does.
 */
export interface Supervised {
  /** The running process (the latest start). */
  proc(): Proc;
  /** How many times the agent was started. */
  starts(): number;
  /** Everything every start wrote (logs), oldest first, and the guard's lines. */
  output(): string;
  /** Set when the start limit stopped the restarts (systemd's "start-limit-hit"). */
  gaveUp(): boolean;
  stop(): Promise<void>;
}

export interface SuperviseOptions {
  stateDir: string;
  startLimitBurst?: number;
  startLimitIntervalMs?: number;
  restartMs?: number;
}

async function runGuard(
  step: 'guard' | 'stopped',
  installDir: string,
  stateDir: string,
  env: Record<string, string> = {},
) {
  try {
    const { stderr } = await run(
      process.execPath,
      [POSAGENT_INSTALLER, step, '--install-dir', installDir, '--state-dir', stateDir],
      {
        env: { ...process.env, ...env },
      },
    );
    return stderr;
  } catch (err) {
    return `guard ${step} failed: ${(err as Error).message}\n`;
  }
}

export function supervise(
  installDir: string,
  args: string[],
  env: Record<string, string>,
  o: SuperviseOptions,
): Supervised {
  const burst = o.startLimitBurst ?? 10;
  const intervalMs = o.startLimitIntervalMs ?? 600_000;
  let stopped = false;
  let gaveUp = false;
  const startTimes: number[] = [];
  let previous = '';
  let current: Proc | undefined;
  const launch = async () => {
    const now = Date.now();
    if (startTimes.filter((t) => t > now - intervalMs).length >= burst) {
      gaveUp = true;
      previous += 'supervisor: start limit hit, giving up\n';
      return;
    }
    startTimes.push(now);
    previous += await runGuard('guard', installDir, o.stateDir);
    if (stopped) return;
    const mine = start(join(installDir, 'current/dist/bin/posagent.js'), args, env);
    current = mine;
    void mine.exited.then(async ({ code, signal }) => {
      previous += mine.output() + mine.stderr();
      previous += await runGuard('stopped', installDir, o.stateDir, {
        SERVICE_RESULT: signal ? 'signal' : code === 0 ? 'success' : 'exit-code',
        EXIT_CODE: signal ? 'killed' : 'exited',
        EXIT_STATUS: signal ?? String(code),
      });
      if (!stopped && code !== 0) setTimeout(() => void launch(), o.restartMs ?? 200);
    });
  };
  void launch();
  return {
    proc: () => {
      if (!current) throw new Error('not started yet');
      return current;
    },
    starts: () => startTimes.length,
    output: () => previous + (current && current.child.exitCode === null ? current.output() : ''),
    gaveUp: () => gaveUp,
    async stop() {
      stopped = true;
      if (current && current.child.exitCode === null && current.child.signalCode === null) {
        current.child.kill('SIGTERM');
        await current.exited;
      }
    },
  };
}

/**
 * An enrolled agent run from `<installDir>/current` under `supervise`, set up for updates the way
 * the tests and the demo want them: the release key pinned, a 6-s health window, the installer
 * run directly, quick reconnects, and systemd's start limit (10 starts in 600 s).
 */
export function superviseAgent(
  installDir: string,
  dirs: { flags: string[]; stateDir: string },
  releaseKeyFile: string,
  env: Record<string, string> = {},
): Supervised {
  return supervise(
    installDir,
    [
      'run',
      ...dirs.flags,
      '--settings',
      join(dirs.stateDir, '..', 'agent.json'),
      '--install-dir',
      installDir,
    ],
    {
      ...FAST_RECONNECT,
      POSAGENT_RELEASE_KEY_FILE: releaseKeyFile,
      POSAGENT_UPDATE_HEALTH_WINDOW_SEC: '6',
      POSAGENT_INSTALL_COMMAND: installCommandFor(installDir, dirs.stateDir, releaseKeyFile),
      ...env,
    },
    { stateDir: dirs.stateDir, startLimitBurst: 10, startLimitIntervalMs: 600_000 },
  );
}
