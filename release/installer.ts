import { constants } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { syncDir } from '../enroll/atomic-file.js';
import { ReleaseDescriptor, SemVer } from '../protocol/actions.js';
import { compileValidator, describeIssues } from '../protocol/schema-validation.js';
import { checkVersionPolicy, UpdateFailure, verifyArtifact, versionOf } from './artifact.js';
import {
  type InstallRequest,
  type InstallResult,
  type Layout,
  linkedRelease,
  paths,
  pointCurrent,
  type TrialState,
} from './layout.js';
import { writeOwnedJson } from './owned-file.js';

/**
 * The privileged installer (root; `posagent-update@stage.service` / `@activate.service`, which the
 * agent may start through polkit and nothing else). It trusts nothing the agent wrote: it copies
 * the artifact the agent downloaded into a root-only file, checks size, sha256, the Ed25519
 * signature and the version policy against the *root-owned* release key, unpacks into the
 * root-owned release tree (read-only to the service), runs the new release's `--version` as the
 * service user, and — at `activate` — records the trial for the boot guard and switches
 * `current`. It answers in `<stateDir>/update/result.json`.
 */
export interface InstallerOptions {
  layout: Layout;
  releaseKeyFile: string;
  /** The node binary releases run under (the unit's). */
  nodePath: string;
  maxTrialStarts: number;
  now(): number;
  log(message: string): void;
}

const MAX_REQUEST_BYTES = 64 * 1024;
const requestCheck = compileValidator(
  Type.Object(
    {
      actionId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
      release: ReleaseDescriptor,
      healthWindowSec: Type.Integer({ minimum: 1, maximum: 86_400 }),
    },
    { additionalProperties: false },
  ),
);
const semverCheck = compileValidator(SemVer);

/** The service user: the owner of the state dir (systemd's StateDirectory= makes it so). */
async function serviceUser(l: Layout): Promise<{ uid: number; gid: number }> {
  const s = await stat(l.stateDir);
  return { uid: s.uid, gid: s.gid };
}

/**
 * The agent's update dir must be a real directory of the service user's — not a link the agent
 * planted to make root read or write somewhere else.
 */
export async function checkAgentDir(dir: string, owner: { uid: number }): Promise<void> {
  const s = await lstat(dir).catch(() => null);
  if (!s || s.isSymbolicLink() || !s.isDirectory())
    throw new UpdateFailure(`${dir} is not a directory (a link or nothing): refused`);
  if (process.getuid?.() === 0 && s.uid !== owner.uid && s.uid !== 0)
    throw new UpdateFailure(`${dir} is not owned by the service user: refused`);
}

/** A regular file the service user owns, read without following a link (the agent could plant one). */
async function readAgentFile(file: string, maxBytes: number, owner: { uid: number }): Promise<Buffer> {
  const fh = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW).catch(
    (err: NodeJS.ErrnoException) => {
      throw new UpdateFailure(
        err.code === 'ENOENT'
          ? `${file} does not exist`
          : `${file} cannot be opened (${err.code}): not a plain file`,
      );
    },
  );
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw new UpdateFailure(`${file} is not a regular file`);
    if (process.getuid?.() === 0 && s.uid !== owner.uid && s.uid !== 0)
      throw new UpdateFailure(`${file} is not owned by the service user`);
    if (s.size > maxBytes) throw new UpdateFailure(`${file} is larger than ${maxBytes} bytes`);
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}

async function readRequest(l: Layout, owner: { uid: number }): Promise<InstallRequest> {
  const text = (await readAgentFile(paths(l).request, MAX_REQUEST_BYTES, owner)).toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UpdateFailure('the install request is not JSON'); // never echo what was read
  }
  const r = requestCheck.check(value);
  if (!r.ok) throw new UpdateFailure(`the install request is invalid: ${describeIssues(r.issues)}`);
  if (!semverCheck.check(r.value.release.version).ok) throw new UpdateFailure('bad version');
  return r.value as InstallRequest;
}

/** Makes a tree root-owned and not writable by group or others. */
async function lockDown(dir: string): Promise<void> {
  const root = process.getuid?.() === 0;
  const walk = async (p: string): Promise<void> => {
    const s = await lstat(p);
    if (root) await lchown(p, 0, 0).catch(() => {});
    if (s.isSymbolicLink()) return;
    await chmod(p, s.mode & 0o755);
    if (s.isDirectory()) for (const e of await readdir(p)) await walk(join(p, e));
  };
  await walk(dir);
}

export class Installer {
  constructor(private readonly o: InstallerOptions) {}

  private get l(): Layout {
    return this.o.layout;
  }

  /** Runs one step and records its outcome for the agent; resolves to the process exit code. */
  async run(step: 'stage' | 'activate'): Promise<number> {
    const owner = await serviceUser(this.l);
    let version = '';
    try {
      await checkAgentDir(paths(this.l).update, owner);
    } catch (err) {
      this.o.log(`${step}: ${(err as Error).message}`);
      return 1; // nowhere safe to answer in
    }
    try {
      const req = await readRequest(this.l, owner);
      version = req.release.version;
      if (step === 'stage') await this.stage(req, owner);
      else await this.activate(req);
      await this.answer(owner, { step, ok: true, version, at: new Date(this.o.now()).toISOString() });
      return 0;
    } catch (err) {
      const error =
        err instanceof UpdateFailure ? err.message : `installer failed: ${(err as Error).message}`;
      this.o.log(`${step}: ${error}`);
      await this.answer(owner, {
        step,
        ok: false,
        version,
        error,
        at: new Date(this.o.now()).toISOString(),
      }).catch(() => {});
      return 1;
    }
  }

  private answer(owner: { uid: number; gid: number }, result: InstallResult): Promise<void> {
    return writeOwnedJson(paths(this.l).result, result, owner);
  }

  private async releaseKey(): Promise<string> {
    return readFile(this.o.releaseKeyFile, 'utf8').catch(() => {
      throw new UpdateFailure(`no release key at ${this.o.releaseKeyFile}; updates cannot be verified`);
    });
  }

  /** Verify (again, with root's key), unpack beside the running release, check it runs. */
  private async stage(req: InstallRequest, owner: { uid: number; gid: number }): Promise<void> {
    const p = paths(this.l);
    const v = req.release.version;
    const key = await this.releaseKey();
    const running = await linkedRelease(this.l);
    if (!running) throw new UpdateFailure(`no current release under ${this.l.installDir}`);
    if (checkVersionPolicy(running, req.release, key) === 'same')
      throw new UpdateFailure(`version ${v} is already the current release`);
    await mkdir(p.releases, { recursive: true, mode: 0o755 });
    // The agent can still change its download: copy it to a root-only file and check that copy.
    const copy = join(p.releases, `.${v}.tgz`);
    await rm(copy, { force: true });
    const bytes = await readAgentFile(p.artifact(v), req.release.size + 1, owner);
    const fh = await open(copy, 'wx', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.sync();
    } finally {
      await fh.close();
    }
    const staging = p.staging(v);
    try {
      await verifyArtifact(copy, req.release, key);
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging, { mode: 0o755 });
      const tar = await import('tar');
      await tar.x({ file: copy, cwd: staging, strip: 1, preserveOwner: false, noMtime: false });
      await lockDown(staging);
      const reported = await versionOf(staging, this.o.nodePath, owner);
      if (reported !== v)
        throw new UpdateFailure(
          `the unpacked release says it is ${reported || 'nothing (it does not run)'}, not ${v}`,
        );
      await rm(p.release(v), { recursive: true, force: true });
      await rename(staging, p.release(v));
      await syncDir(p.releases);
    } finally {
      await rm(copy, { force: true });
      await rm(staging, { recursive: true, force: true });
    }
    // Keep the running release and the new one; nothing older.
    for (const name of await readdir(p.releases)) {
      if (name === running || name === v) continue;
      await rm(join(p.releases, name), { recursive: true, force: true });
      this.o.log(`removed old release ${name}`);
    }
    this.o.log(`staged ${v} beside ${running}`);
  }

  /** Record the trial for the boot guard, then switch `current` to the staged release. */
  private async activate(req: InstallRequest): Promise<void> {
    const p = paths(this.l);
    const v = req.release.version;
    const pkg = JSON.parse(await readFile(join(p.release(v), 'package.json'), 'utf8').catch(() => '{}')) as {
      version?: string;
    };
    if (pkg.version !== v) throw new UpdateFailure(`release ${v} is not staged (run the stage step first)`);
    const from = await linkedRelease(this.l);
    if (!from) throw new UpdateFailure(`no current release under ${this.l.installDir}`);
    if (from === v) throw new UpdateFailure(`version ${v} is already the current release`);
    const trial: TrialState = {
      actionId: req.actionId,
      from,
      to: v,
      starts: 0,
      maxStarts: this.o.maxTrialStarts,
      healthWindowMs: req.healthWindowSec * 1000,
      deadline: null,
    };
    await writeOwnedJson(p.trial, trial, { uid: 0, gid: 0 });
    await pointCurrent(this.l, v);
    this.o.log(`current -> ${v} (from ${from}); on trial for ${req.healthWindowSec} s`);
  }
}
