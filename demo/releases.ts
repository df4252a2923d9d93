import { execFile } from 'node:child_process';
import { cp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Cloud, httpsJson, POSAGENT_CLOUD, type Proc, ROOT, start, tempDir } from './local-fleet.js';

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
}

export async function signRelease(tarball: string, key: ReleaseKey): Promise<SignedRelease> {
  const p = start(POSAGENT_CLOUD, ['release-sign', tarball, '--key', key.privateKeyFile]);
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

/** Unpacks a release into `<installDir>/releases/<version>` and points `current` at it. */
export async function installRelease(tarball: string, installDir: string, version: string): Promise<void> {
  const tar = await import('tar');
  const dir = join(installDir, 'releases', version);
  await mkdir(dir, { recursive: true });
  await tar.x({ file: tarball, cwd: dir, strip: 1 });
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

/**
 * What systemd does for the installed agent (`Restart=on-failure` on `current/…/posagent.js run`):
 * starts the release `current` points to and starts it again when it exits asking for a restart
 * (exit 75, after an update or a rollback). Stops supervising on any other exit.
 */
export interface Supervised {
  /** The running process (the latest start). */
  proc(): Proc;
  /** How many times the agent was started. */
  starts(): number;
  /** Everything every start wrote (logs), oldest first. */
  output(): string;
  stop(): Promise<void>;
}

export function supervise(installDir: string, args: string[], env: Record<string, string>): Supervised {
  let stopped = false;
  let count = 0;
  let previous = '';
  let current: Proc;
  const launch = () => {
    count++;
    current = start(join(installDir, 'current/dist/bin/posagent.js'), args, env);
    const mine = current;
    void mine.exited.then(({ code }) => {
      previous += mine.output();
      if (!stopped && code === 75) launch();
    });
  };
  launch();
  return {
    proc: () => current,
    starts: () => count,
    output: () => previous + (current.child.exitCode === null ? current.output() : ''),
    async stop() {
      stopped = true;
      if (current.child.exitCode === null && current.child.signalCode === null) {
        current.child.kill('SIGTERM');
        await current.exited;
      }
    },
  };
}
