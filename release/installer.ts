import { chmod, lchown, lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { syncDir } from '../files/atomic-file.js';
import { ReleaseDescriptor, releaseManifest } from '../protocol/actions.js';
import { compileValidator, describeIssues } from '../protocol/schema-validation.js';
import { openAgentFile, readAgentJson, type ServiceUser } from './agent-file.js';
import { checkVersionPolicy, signedBy, UpdateFailure, verifyArtifact, versionOf } from './artifact.js';
import {
  type InstallerStep,
  type InstallRequest,
  type InstallResult,
  type Layout,
  linkedRelease,
  paths,
  pointCurrent,
  readJson,
  type StagedRelease,
  type TrialState,
} from './layout.js';
import { writeRootJson } from './owned-file.js';

/**
 * The privileged installer (root; `posagent-update@stage|activate|commit.service`, which the agent
 * may start through polkit and nothing else). It trusts nothing the agent wrote:
 *   stage     reads the agent's request (no links, its own files only), checks the manifest
 *             signature and the version policy against the *root-owned* release key first, copies
 *             the download — streaming, no more than the signed size — into a root-only file,
 *             checks that copy's size and sha256, unpacks it into the root-owned release tree
 *             (read-only to the service), runs its `--version` as the service user, and records
 *             what it verified (`<installDir>/update/staged.json`);
 *   activate  switches to the staged release only — the agent's request is not read again —
 *             after checking its signature and the version policy once more against `current`,
 *             and records the trial for the boot guard;
 *   commit    ends the trial of the release that is current (it reached the cloud).
 * Every step answers in `<installDir>/update/result.json` (root's, world-readable).
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
/** The largest release this installer takes (a release is ~2 MB; this bounds what a bad request can cost). */
const requestCheck = compileValidator(
  Type.Object(
    {
      requestId: Type.String({ minLength: 8, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
      actionId: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' }),
      release: ReleaseDescriptor,
      healthWindowSec: Type.Integer({ minimum: 1, maximum: 86_400 }),
    },
    { additionalProperties: false },
  ),
);

/** The service user: the owner of the state dir (systemd's StateDirectory= makes it so). */
async function serviceUser(l: Layout): Promise<ServiceUser> {
  const s = await stat(l.stateDir);
  return { uid: s.uid, gid: s.gid };
}

async function readRequest(l: Layout, owner: ServiceUser): Promise<InstallRequest> {
  const r = requestCheck.check(await readAgentJson(paths(l).request, owner, MAX_REQUEST_BYTES));
  // The schema holds the size cap (MAX_RELEASE_BYTES, the same one the cloud publishes under).
  if (!r.ok) throw new UpdateFailure(`the install request is invalid: ${describeIssues(r.issues)}`);
  return r.value as InstallRequest;
}

/** Makes a tree root-owned and not writable by group or others (links are never followed). */
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
  async run(step: InstallerStep): Promise<number> {
    const p = paths(this.l);
    let requestId: string | null = null;
    let version = '';
    try {
      await mkdir(p.rootUpdate, { recursive: true, mode: 0o755 });
      const owner = await serviceUser(this.l);
      if (step === 'stage') {
        const req = await readRequest(this.l, owner);
        ({ requestId } = req);
        version = req.release.version;
        await this.stage(req, owner);
      } else if (step === 'activate') {
        const staged = await this.staged();
        ({ requestId } = staged);
        version = staged.release.version;
        await this.activate(staged);
      } else {
        version = await this.commit();
      }
      await this.answer({ step, ok: true, requestId, version, at: new Date(this.o.now()).toISOString() });
      return 0;
    } catch (err) {
      const error =
        err instanceof UpdateFailure ? err.message : `installer failed: ${(err as Error).message}`;
      this.o.log(`${step}: ${error}`);
      await this.answer({
        step,
        ok: false,
        requestId,
        version,
        error,
        at: new Date(this.o.now()).toISOString(),
      }).catch((e: Error) => this.o.log(`could not record the result: ${e.message}`));
      return 1;
    }
  }

  private answer(result: InstallResult): Promise<void> {
    return writeRootJson(paths(this.l).result, result);
  }

  private async releaseKey(): Promise<string> {
    return readFile(this.o.releaseKeyFile, 'utf8').catch(() => {
      throw new UpdateFailure(`no release key at ${this.o.releaseKeyFile}; updates cannot be verified`);
    });
  }

  /** The signature over the manifest and the version policy: cheap, and before anything is read or written. */
  private async checkRelease(release: StagedRelease['release'], key: string): Promise<string> {
    if (!signedBy(releaseManifest(release), release.signature, key))
      throw new UpdateFailure(
        `the signature of ${release.version} is not valid for the pinned release key: refused`,
      );
    const running = await linkedRelease(this.l);
    if (!running) throw new UpdateFailure(`no current release under ${this.l.installDir}`);
    if (checkVersionPolicy(running, release, key) === 'same')
      throw new UpdateFailure(`version ${release.version} is already the current release`);
    return running;
  }

  /** Verify (with root's key), copy, unpack beside the running release, check it runs. */
  private async stage(req: InstallRequest, owner: ServiceUser): Promise<void> {
    const p = paths(this.l);
    const v = req.release.version;
    const key = await this.releaseKey();
    const running = await this.checkRelease(req.release, key);
    await mkdir(p.releases, { recursive: true, mode: 0o755 });
    // The agent can still change its download: copy it — no more than the signed size — into a
    // root-only file, and check that copy.
    const copy = p.copy(v);
    await rm(copy, { force: true });
    await this.copyDownload(p.artifact(v), copy, req.release.size, owner);
    const staging = p.staging(v);
    try {
      await verifyArtifact(copy, req.release, key);
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging, { mode: 0o755 });
      const tar = await import('tar');
      await tar.x({ file: copy, cwd: staging, strip: 1, preserveOwner: false });
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
    const staged: StagedRelease = { ...req, from: running };
    await writeRootJson(p.staged, staged);
    this.o.log(`staged ${v} beside ${running}`);
  }

  private async copyDownload(from: string, to: string, size: number, owner: ServiceUser): Promise<void> {
    const src = await openAgentFile(from, owner, size);
    const dst = await open(to, 'wx', 0o600);
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (let pos = 0; pos < src.size; ) {
        const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, src.size - pos), pos);
        if (bytesRead === 0) break;
        await dst.write(buf, 0, bytesRead);
        pos += bytesRead;
      }
      await dst.sync();
    } finally {
      await src.close();
      await dst.close();
    }
  }

  private async staged(): Promise<StagedRelease> {
    const staged = await readJson<StagedRelease>(paths(this.l).staged);
    if (!staged) throw new UpdateFailure('no release is staged (run the stage step first)');
    return staged;
  }

  /** Record the trial for the boot guard, then switch `current` to the staged release. */
  private async activate(staged: StagedRelease): Promise<void> {
    const p = paths(this.l);
    const v = staged.release.version;
    const from = await this.checkRelease(staged.release, await this.releaseKey());
    if (from !== staged.from)
      throw new UpdateFailure(
        `${v} was staged over ${staged.from}, but ${from} is current now: stage it again`,
      );
    const pkg = JSON.parse(await readFile(join(p.release(v), 'package.json'), 'utf8').catch(() => '{}')) as {
      version?: string;
    };
    if (pkg.version !== v) throw new UpdateFailure(`release ${v} is not staged (run the stage step first)`);
    const trial: TrialState = {
      actionId: staged.actionId,
      from,
      to: v,
      starts: 0,
      maxStarts: this.o.maxTrialStarts,
      healthWindowMs: staged.healthWindowSec * 1000,
      deadline: null,
    };
    await writeRootJson(p.trial, trial);
    await pointCurrent(this.l, v);
    await rm(p.staged, { force: true });
    this.o.log(`current -> ${v} (from ${from}); on trial for ${staged.healthWindowSec} s`);
  }

  /** The release on trial reached the cloud: its trial is over (the guard will not roll it back). */
  private async commit(): Promise<string> {
    const p = paths(this.l);
    const trial = await readJson<TrialState>(p.trial);
    const current = await linkedRelease(this.l);
    if (!trial) throw new UpdateFailure('no release is on trial');
    if (current !== trial.to)
      throw new UpdateFailure(`${trial.to} is on trial but ${current ?? 'nothing'} is current`);
    await rm(p.trial, { force: true });
    await syncDir(this.l.installDir);
    this.o.log(`${trial.to} committed; trial over`);
    return trial.to;
  }
}
