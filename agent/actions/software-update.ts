import { randomUUID } from 'node:crypto';
import { mkdir, readFile, rm, statfs } from 'node:fs/promises';
import type { ReleaseDescriptor, UpdateParams } from '../../protocol/actions.js';
import { checkVersionPolicy, UpdateFailure, verifyArtifact } from '../../release/artifact.js';
import {
  type CommitMarker,
  type GuardResult,
  type InstallerStep,
  type InstallRequest,
  type InstallResult,
  type Layout,
  linkedRelease,
  paths,
  readJson,
  type TrialState,
  writeJson,
} from '../../release/layout.js';
import type { ActionChange, ActionRow } from './action-store.js';
import { decideAtStart, type UpdateStep } from './update-state.js';

export { UpdateFailure, verifyArtifact };

/**
 * The software update, as the unprivileged agent does it. Releases live side by side in
 * `<installDir>/releases/<version>/` (root-owned, read-only to the service) and
 * `<installDir>/current` is the one systemd starts. The agent downloads into its state dir
 * (resuming), verifies size, sha256, the Ed25519 signature and the version policy (a downgrade
 * only with the release key's downgrade signature) *before* anything is unpacked, then asks the
 * privileged installer (`installCommand`, through polkit) to stage the release — which checks it
 * all again with the root-owned key — waits for busy leases, asks it to switch, and restarts. The
 * new version commits once it reaches the cloud within its health window; if it cannot start or
 * never gets there, the boot guard (root, before each start) rolls it back and the previous
 * version reports why. The decisions at start are in update-state.ts.
 */
export interface UpdaterDeps {
  installDir: string;
  stateDir: string;
  releaseKeyFile: string;
  /** The version this process runs. */
  running: string;
  healthWindowMs: number;
  /** Bytes to leave free for the transaction queue (the room the store may still grow into). */
  storeReserveBytes(): Promise<number>;
  /** Fetches the artifact into `file`, resuming, never more than `maxBytes` (the signed size); reports progress. */
  download(
    version: string,
    file: string,
    onProgress: (received: number, total: number | null) => void,
    maxBytes: number,
  ): Promise<void>;
  /** Runs a step of the privileged installer (`stage`, `activate`, `commit`); resolves when it returned. */
  runInstaller(step: InstallerStep): Promise<void>;
  /** Records a step (and tells the cloud: processing/completed/failed with the step). */
  report(id: string, change: ActionChange): ActionRow;
  /** Records step data the cloud need not hear about. */
  note(id: string, change: Omit<ActionChange, 'state'>): ActionRow;
  /** Waits for the maintenance window (unless `now`) and until no busy lease is held, reporting why it waits. */
  whenAllowed(id: string, signal: AbortSignal, now: boolean): Promise<void>;
  /** Ends this process so that the supervisor (systemd) starts what `current` points to. */
  restart(reason: string): void;
  /** False when nothing would start the agent again after `restart` (updates are refused then). */
  supervised: boolean;
  /** The release on trial proved itself (committed): what was kept for its rollback may go. */
  onCommitted?(): Promise<void>;
  now(): number;
  /** Test hook: SIGKILL at a named point (`update-unpacked`, `update-switched`). */
  crashPoint?(name: string): void;
  log: {
    info(obj: object, msg: string): void;
    warn(obj: object, msg: string): void;
    error(obj: object, msg: string): void;
  };
}

const MB = 1024 * 1024;

export class SoftwareUpdater {
  private trial: { id: string; timer: NodeJS.Timeout } | null = null;

  constructor(private readonly d: UpdaterDeps) {}

  private get layout(): Layout {
    return { installDir: this.d.installDir, stateDir: this.d.stateDir };
  }

  private get files() {
    return paths(this.layout);
  }

  /** The release `current` points to, or null when the software was not installed that way. */
  linked(): Promise<string | null> {
    return linkedRelease(this.layout);
  }

  /** Runs (or resumes) an update up to the restart into the new version. Failures are reported, not thrown. */
  async run(row: ActionRow, signal: AbortSignal): Promise<void> {
    const { release } = row.params as UpdateParams;
    const from = this.d.running;
    const to = release.version;
    try {
      const key = await readFile(this.d.releaseKeyFile, 'utf8').catch(() => {
        throw new UpdateFailure(
          `no release key pinned at ${this.d.releaseKeyFile}; updates cannot be verified`,
        );
      });
      if (checkVersionPolicy(from, release, key) === 'same') {
        this.d.report(row.id, {
          state: 'completed',
          step: 'committed',
          reason: `version ${to} is already running`,
        });
        return;
      }
      if (!this.d.supervised)
        throw new UpdateFailure('this agent runs without a supervisor to restart it (run it under systemd)');
      if ((await this.linked()) === null)
        throw new UpdateFailure(
          `the software is not installed under ${this.d.installDir} (no "current" link); install it with systemd/install.sh`,
        );
      await mkdir(this.files.update, { recursive: true, mode: 0o700 });
      await this.checkSpace(release);

      const file = this.files.artifact(to);
      this.d.report(row.id, { step: 'downloading', percent: 0, reason: null, detail: { from, to } });
      let lastPercent = 0;
      await this.d.download(
        to,
        file,
        (received) => {
          const percent = Math.min(100, Math.floor((received / release.size) * 100));
          if (percent >= lastPercent + 10) {
            lastPercent = percent;
            this.d.report(row.id, { step: 'downloading', percent });
          }
        },
        release.size,
      );

      this.d.report(row.id, { step: 'verifying', percent: null });
      await verifyArtifact(file, release, key).catch(async (err) => {
        await rm(file, { force: true }); // a bad download is fetched again from scratch next time
        throw err;
      });

      this.d.report(row.id, { step: 'installing' });
      const request: InstallRequest = {
        requestId: randomUUID().replaceAll('-', ''),
        actionId: row.id,
        release,
        healthWindowSec: Math.max(1, Math.round(this.d.healthWindowMs / 1000)),
      };
      await writeJson(this.files.request, request, 0o600);
      await this.install('stage', to, request.requestId);
      this.d.crashPoint?.('update-unpacked');

      await this.d.whenAllowed(row.id, signal, (row.params as UpdateParams).now === true);
      this.d.report(row.id, { step: 'switching', reason: null, detail: { from, to } });
      await this.install('activate', to, request.requestId);
      this.d.crashPoint?.('update-switched');
      await rm(file, { force: true });
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

  /** One installer step; its own account (root's result.json, naming this request) says why it failed. */
  private async install(step: InstallerStep, version: string, requestId: string | null): Promise<void> {
    let ran: Error | null = null;
    try {
      await this.d.runInstaller(step);
    } catch (err) {
      ran = err as Error;
    }
    const result = await readJson<InstallResult>(this.files.result).catch(() => null);
    const ours =
      result?.step === step &&
      result.version === version &&
      (requestId === null || result.requestId === requestId);
    if (ours && result.ok && !ran) return;
    throw new UpdateFailure(
      ours && result.error
        ? result.error
        : `the installer (${step}) failed${ran ? `: ${ran.message}` : ' without saying why'}`,
    );
  }

  /**
   * What to do with an update found in the store at start. Returns true when the pipeline should
   * run again (nothing was switched yet).
   */
  async atStart(row: ActionRow): Promise<boolean> {
    const { release } = row.params as UpdateParams;
    const detail = row.detail as { from?: string; to?: string };
    const from = detail.from ?? this.d.running;
    const to = detail.to ?? release.version;
    // Notes from root (the guard, the installer): unreadable ones are logged and taken as absent.
    const note = <T>(file: string) =>
      readJson<T>(file).catch((err: Error) => {
        this.d.log.warn({ file, err: err.message }, 'cannot read an update note; taken as absent');
        return null;
      });
    const guard = await note<GuardResult>(this.files.guardResult);
    const trial = await note<TrialState>(this.files.trial);
    const decision = decideAtStart({
      step: row.step as UpdateStep | null,
      running: this.d.running,
      from,
      to,
      linked: await this.linked(),
      guardReason: guard?.actionId === row.id ? guard.reason : null,
      guardKept: guard?.actionId === row.id && guard.kept === true,
      deadlineMs: trial?.actionId === row.id ? trial.deadline : null,
      healthWindowMs: this.d.healthWindowMs,
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
          timer: setTimeout(() => this.endTrial(to), decision.remainingMs),
        };
        this.trial.timer.unref();
        return false;
      case 'end_trial':
        this.endTrial(to);
        return false;
      case 'report_kept':
        this.d.report(row.id, {
          state: 'failed',
          step: 'rollback_refused',
          reason: decision.reason,
          percent: null,
        });
        this.d.log.error({ from, to, reason: decision.reason }, 'update failed and could not be rolled back');
        return false;
      case 'report_failed':
        this.d.report(row.id, {
          state: 'failed',
          step: 'rolled_back',
          reason: decision.reason,
          percent: null,
        });
        this.d.log.error(
          { from, to, reason: decision.reason },
          'update failed and was rolled back; running the previous version',
        );
        return false;
      case 'nothing':
        return false;
    }
  }

  /** The window is over without the cloud: end, and let the boot guard roll this release back. */
  private endTrial(to: string): void {
    this.trial = null;
    this.d.log.error(
      { version: to },
      'did not reach the cloud within the health window; restarting so that the boot guard rolls back',
    );
    this.d.restart(`health window of ${to} over`);
  }

  /** The link came up: a version on trial has proved itself; commit it (the guard forgets the trial). */
  async onOnline(): Promise<void> {
    const t = this.trial;
    if (!t) return;
    this.trial = null;
    clearTimeout(t.timer);
    const marker: CommitMarker = {
      actionId: t.id,
      version: this.d.running,
      at: new Date(this.d.now()).toISOString(),
    };
    await writeJson(this.files.committed, marker, 0o644);
    const row = this.d.report(t.id, { state: 'completed', step: 'committed', reason: null });
    this.d.log.info(
      { version: this.d.running, previous: (row.detail as { from?: string }).from },
      'update committed',
    );
    await this.d
      .onCommitted?.()
      .catch((err: Error) =>
        this.d.log.warn({ err: err.message }, 'could not remove what was kept for a rollback'),
      );
    // End the trial now (root's step); should it fail, the guard reads the marker at the next start.
    await this.install('commit', this.d.running, null).catch((err: Error) =>
      this.d.log.warn(
        { err: err.message },
        'the installer could not end the trial; the boot guard will at the next start',
      ),
    );
  }

  stop(): void {
    if (this.trial) clearTimeout(this.trial.timer);
  }

  private async checkSpace(release: ReleaseDescriptor): Promise<void> {
    // The download (state dir), its unpacked tree (install dir, a few times its size) and the
    // queue's room to grow.
    const free = async (dir: string) => {
      const fs = await statfs(dir);
      return fs.bavail * fs.bsize;
    };
    const reserve = await this.d.storeReserveBytes();
    const [state, install] = [await free(this.d.stateDir), await free(this.d.installDir)];
    const need = release.size * 2 + reserve;
    const needInstall = release.size * 5;
    if (state < need || install < needInstall)
      throw new UpdateFailure(
        `not enough disk space for ${release.version}: ${Math.ceil(need / MB)} MB needed for the download (${Math.ceil(reserve / MB)} MB of it kept for the transaction queue), ${Math.floor(state / MB)} MB free; ${Math.ceil(needInstall / MB)} MB for the release, ${Math.floor(install / MB)} MB free`,
      );
  }
}
