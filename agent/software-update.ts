import { execFile } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, readlink, rename, rm, stat, statfs, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { promisify } from 'node:util';
import { syncDir } from '../enroll/atomic-file.js';
import {
  compareVersions,
  type ReleaseDescriptor,
  releaseManifest,
  type UpdateParams,
} from '../protocol/actions.js';
import type { ActionChange, ActionRow } from './action-store.js';
import { decideAtStart, type UpdateStep } from './update-state.js';

/**
 * The software update, on disk: releases live side by side in `<installDir>/releases/<version>/`
 * and `<installDir>/current` is a symlink to the one that runs (systemd starts
 * `current/dist/bin/posagent.js`). An update downloads (resuming), verifies the sha256 and the
 * Ed25519 signature against the pinned release key *before* unpacking, unpacks beside the running
 * version, checks the new one runs, waits for busy leases, switches the link atomically and
 * restarts. The new version commits once it reaches the cloud within the health window, else it
 * reports `failed` and switches back. The decisions are in update-state.ts.
 */
export class UpdateFailure extends Error {
  override readonly name = 'UpdateFailure';
}

export interface UpdaterDeps {
  installDir: string;
  releaseKeyFile: string;
  /** The version this process runs. */
  running: string;
  healthWindowMs: number;
  maxTrialStarts: number;
  /** Bytes to leave free for the transaction queue (the room the store may still grow into). */
  storeReserveBytes(): Promise<number>;
  /** Fetches the artifact into `file`, resuming; reports progress. */
  download(
    version: string,
    file: string,
    onProgress: (received: number, total: number | null) => void,
  ): Promise<void>;
  /** Records a step (and tells the cloud: processing/completed/failed with the step). */
  report(id: string, change: ActionChange): ActionRow;
  /** Records step data the cloud need not hear about. */
  note(id: string, change: Omit<ActionChange, 'state'>): ActionRow;
  /** Waits until no busy lease is held, reporting why it waits. */
  whenFree(id: string, signal: AbortSignal): Promise<void>;
  /** Ends this process so that the supervisor (systemd) starts what `current` points to. */
  restart(reason: string): void;
  /** False when nothing would start the agent again after `restart` (updates are refused then). */
  supervised: boolean;
  now(): number;
  /** Test hook: SIGKILL at a named point (`update-unpacked`, `update-switched`). */
  crashPoint?(name: string): void;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
}

const run = promisify(execFile);
const MB = 1024 * 1024;

export class SoftwareUpdater {
  private trial: { id: string; timer: NodeJS.Timeout } | null = null;

  constructor(private readonly d: UpdaterDeps) {}

  private get releasesDir(): string {
    return join(this.d.installDir, 'releases');
  }

  private get downloadsDir(): string {
    return join(this.d.installDir, 'downloads');
  }

  private get currentLink(): string {
    return join(this.d.installDir, 'current');
  }

  /** The release `current` points to, or null when the software was not installed that way. */
  async linked(): Promise<string | null> {
    try {
      return basename(await readlink(this.currentLink));
    } catch {
      return null;
    }
  }

  /** Runs (or resumes) an update up to the restart into the new version. Failures are reported, not thrown. */
  async run(row: ActionRow, signal: AbortSignal): Promise<void> {
    const { release, allowDowngrade } = row.params as UpdateParams;
    const from = this.d.running;
    const to = release.version;
    try {
      const order = compareVersions(to, from);
      if (order === 0) {
        this.d.report(row.id, {
          state: 'completed',
          step: 'committed',
          reason: `version ${to} is already running`,
        });
        return;
      }
      if (order < 0 && !allowDowngrade)
        throw new UpdateFailure(
          `downgrade from ${from} to ${to} refused (the action does not allow downgrades)`,
        );
      if (!this.d.supervised)
        throw new UpdateFailure('this agent runs without a supervisor to restart it (run it under systemd)');
      if ((await this.linked()) === null)
        throw new UpdateFailure(
          `the software is not installed under ${this.d.installDir} (no "current" link); install it with systemd/install.sh`,
        );
      const key = await readFile(this.d.releaseKeyFile, 'utf8').catch(() => {
        throw new UpdateFailure(
          `no release key pinned at ${this.d.releaseKeyFile}; updates cannot be verified`,
        );
      });
      await mkdir(this.downloadsDir, { recursive: true, mode: 0o750 });
      await mkdir(this.releasesDir, { recursive: true, mode: 0o755 });
      await this.checkSpace(release);

      const file = join(this.downloadsDir, `${to}.tgz`);
      this.d.report(row.id, { step: 'downloading', percent: 0, reason: null, detail: { from, to } });
      let lastPercent = 0;
      await this.d.download(to, file, (received) => {
        const percent = Math.min(100, Math.floor((received / release.size) * 100));
        if (percent >= lastPercent + 10) {
          lastPercent = percent;
          this.d.report(row.id, { step: 'downloading', percent });
        }
      });

      this.d.report(row.id, { step: 'verifying', percent: null });
      await verifyArtifact(file, release, key).catch(async (err) => {
        await rm(file, { force: true }); // a bad download is fetched again from scratch next time
        throw err;
      });

      this.d.report(row.id, { step: 'installing' });
      const dir = join(this.releasesDir, to);
      const staging = join(this.releasesDir, `.${to}.unpacking`);
      await rm(staging, { recursive: true, force: true });
      await mkdir(staging, { recursive: true });
      const tar = await import('tar');
      await tar.x({ file, cwd: staging, strip: 1 });
      const reported = await versionOf(staging);
      if (reported !== to)
        throw new UpdateFailure(`the unpacked release says it is ${reported || 'nothing'}, not ${to}`);
      await rm(dir, { recursive: true, force: true });
      await rename(staging, dir);
      await syncDir(this.releasesDir);
      this.d.crashPoint?.('update-unpacked');

      await this.d.whenFree(row.id, signal);
      const deadline = this.d.now() + this.d.healthWindowMs;
      this.d.report(row.id, { step: 'switching', reason: null, detail: { deadline, trialStarts: 0 } });
      await this.point(to);
      this.d.crashPoint?.('update-switched');
      this.d.report(row.id, { step: 'trial' });
      this.d.log.warn({ from, to }, 'software updated; restarting into the new version');
      this.d.restart(`update to ${to}`);
    } catch (err) {
      if (signal.aborted) return; // stopping: the step in the store says where to resume
      const reason =
        err instanceof UpdateFailure ? err.message : `update to ${to} failed: ${(err as Error).message}`;
      this.d.log.error({ from, to, reason }, 'software update failed; the running version is unchanged');
      this.d.report(row.id, { state: 'failed', reason, percent: null });
    }
  }

  /**
   * What to do with an update found in the store at start. Returns true when the pipeline should
   * run again (nothing was switched yet).
   */
  async atStart(row: ActionRow): Promise<boolean> {
    const { release } = row.params as UpdateParams;
    const detail = row.detail as { from?: string; to?: string; deadline?: number; trialStarts?: number };
    const from = detail.from ?? this.d.running;
    const to = detail.to ?? release.version;
    const inTrial = (row.step === 'switching' || row.step === 'trial') && this.d.running === to;
    const trialStarts = (detail.trialStarts ?? 0) + (inTrial ? 1 : 0);
    if (inTrial) this.d.note(row.id, { detail: { trialStarts } });
    const decision = decideAtStart({
      step: row.step as UpdateStep | null,
      running: this.d.running,
      from,
      to,
      linked: await this.linked(),
      trialStarts,
      maxTrialStarts: this.d.maxTrialStarts,
      deadlineMs: detail.deadline ?? null,
      nowMs: this.d.now(),
    });
    this.d.log.info({ actionId: row.id, step: row.step, from, to, decision }, 'update found at start');
    switch (decision.do) {
      case 'resume':
        return true;
      case 'restart':
        this.d.restart(`finishing the switch to ${to}`);
        return false;
      case 'trial':
        this.d.note(row.id, { step: 'trial' });
        this.trial = {
          id: row.id,
          timer: setTimeout(
            () =>
              void this.rollback(
                row.id,
                from,
                `version ${to} did not reach the cloud within its health window`,
              ),
            decision.remainingMs,
          ),
        };
        this.trial.timer.unref();
        return false;
      case 'rollback':
        await this.rollback(row.id, from, decision.reason);
        return false;
      case 'rolled_back':
        this.d.note(row.id, { step: 'rolled_back' });
        await rm(join(this.releasesDir, to), { recursive: true, force: true });
        this.d.log.warn({ from, to }, 'update rolled back; running the previous version');
        return false;
      case 'nothing':
        return false;
    }
  }

  /** The link came up: a version on trial has proved itself; commit it and prune old releases. */
  async onOnline(): Promise<void> {
    const t = this.trial;
    if (!t) return;
    this.trial = null;
    clearTimeout(t.timer);
    const row = this.d.report(t.id, { state: 'completed', step: 'committed', reason: null });
    const { from } = row.detail as { from: string };
    this.d.log.info({ version: this.d.running, previous: from }, 'update committed');
    await this.prune([this.d.running, from]);
  }

  stop(): void {
    if (this.trial) clearTimeout(this.trial.timer);
  }

  /** Reports failed first (so a bad release cannot loop unseen), then points back to `from` and restarts. */
  private async rollback(id: string, from: string, reason: string): Promise<void> {
    this.trial = null;
    const row = this.d.report(id, { state: 'failed', step: 'rolling_back', reason, percent: null });
    this.d.log.error({ from, to: (row.detail as { to?: string }).to, reason }, 'update failed; rolling back');
    await this.point(from);
    this.d.restart(`rollback to ${from}`);
  }

  /** Points `current` at a release: a new link beside it, renamed over it (atomic), the directory synced. */
  private async point(version: string): Promise<void> {
    const next = `${this.currentLink}.next`;
    await rm(next, { force: true });
    await symlink(join('releases', version), next);
    await rename(next, this.currentLink);
    await syncDir(this.d.installDir);
  }

  private async checkSpace(release: ReleaseDescriptor): Promise<void> {
    const fs = await statfs(this.d.installDir);
    const free = fs.bavail * fs.bsize;
    // The artifact, its unpacked tree (a few times its size) and the queue's room to grow.
    const reserve = await this.d.storeReserveBytes();
    const need = release.size * 6 + reserve;
    if (free < need)
      throw new UpdateFailure(
        `not enough disk space for ${release.version}: ${Math.ceil(need / MB)} MB needed (${Math.ceil(reserve / MB)} MB of it kept for the transaction queue), ${Math.floor(free / MB)} MB free`,
      );
  }

  private async prune(keep: string[]): Promise<void> {
    const installed = await readdir(this.releasesDir).catch(() => [] as string[]);
    for (const v of installed) {
      if (keep.includes(v)) continue;
      await rm(join(this.releasesDir, v), { recursive: true, force: true });
      this.d.log.info({ version: v }, 'old release removed');
    }
    await rm(this.downloadsDir, { recursive: true, force: true });
  }
}

/** Checks size, sha256 and the Ed25519 signature over the release manifest; throws UpdateFailure naming what is wrong. */
export async function verifyArtifact(
  file: string,
  release: ReleaseDescriptor,
  publicKeyPem: string,
): Promise<void> {
  const { size } = await stat(file);
  if (size !== release.size)
    throw new UpdateFailure(`artifact is ${size} bytes, the release says ${release.size}: refused`);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  const sha256 = hash.digest('hex');
  if (sha256 !== release.sha256)
    throw new UpdateFailure(
      `artifact sha256 ${sha256} does not match the release's ${release.sha256}: refused`,
    );
  let ok = false;
  try {
    ok = verify(
      null,
      Buffer.from(releaseManifest(release)),
      createPublicKey(publicKeyPem),
      Buffer.from(release.signature, 'base64'),
    );
  } catch {
    ok = false;
  }
  if (!ok)
    throw new UpdateFailure(
      `the signature of ${release.version} is not valid for the pinned release key: refused`,
    );
}

/** What an unpacked release answers to `--version` ('' when it does not run). */
async function versionOf(dir: string): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, [join(dir, 'dist/bin/posagent.js'), '--version'], {
      timeout: 30_000,
    });
    return stdout.trim();
  } catch {
    return '';
  }
}
