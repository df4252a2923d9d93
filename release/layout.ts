import { readFile, readlink, rename, rm, symlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { syncDir, writeFileAtomic } from '../files/atomic-file.js';
import type { ReleaseDescriptor } from '../protocol/actions.js';

/**
 * The files through which the agent (unprivileged), the installer and the boot guard (root) work
 * on a software update. The agent writes only its state dir; root writes only the release tree —
 * never a file in a directory the agent controls — and reads the agent's files without following
 * links (agent-file.ts).
 *
 *   <installDir>/releases/<version>/      root: the releases, read-only to the service
 *   <installDir>/current -> releases/<v>   root: what systemd starts
 *   <installDir>/trial.json                root: a switched release on trial (the boot guard's)
 *   <installDir>/update/staged.json        root: the release stage verified (activate switches only to it)
 *   <installDir>/update/result.json        root → agent: what the last installer step did, or why not
 *   <installDir>/update/guard-result.json  root → agent: the guard rolled a release back, and why
 *   <stateDir>/update/<version>.tgz        agent: the downloaded artifact
 *   <stateDir>/update/request.json         agent → installer: what to stage (every claim re-checked)
 *   <stateDir>/update/committed.json       agent → guard: the release on trial reached the cloud
 *   <stateDir>/store-schema.json           agent → guard: the store's schema, who may open it, its snapshot
 *   <release>/dist/bin/store-schema.json   the release's: the store schema its software knows
 */
export interface Layout {
  installDir: string;
  stateDir: string;
}

export const paths = (l: Layout) => {
  const update = join(l.stateDir, 'update');
  const rootUpdate = join(l.installDir, 'update');
  return {
    releases: join(l.installDir, 'releases'),
    release: (v: string) => join(l.installDir, 'releases', v),
    staging: (v: string) => join(l.installDir, 'releases', `.${v}.unpacking`),
    copy: (v: string) => join(l.installDir, 'releases', `.${v}.tgz`),
    current: join(l.installDir, 'current'),
    trial: join(l.installDir, 'trial.json'),
    rootUpdate,
    staged: join(rootUpdate, 'staged.json'),
    result: join(rootUpdate, 'result.json'),
    guardResult: join(rootUpdate, 'guard-result.json'),
    update,
    artifact: (v: string) => join(update, `${v}.tgz`),
    request: join(update, 'request.json'),
    committed: join(update, 'committed.json'),
    storeSchema: join(l.stateDir, 'store-schema.json'),
    releaseSchema: (v: string) => join(l.installDir, 'releases', v, 'dist', 'bin', 'store-schema.json'),
  };
};

/** Agent → installer. */
export interface InstallRequest {
  /** Random, per request: the installer's result names it, so an old result is never taken for a new one. */
  requestId: string;
  actionId: string;
  release: ReleaseDescriptor;
  /** How long the new release has to reach the cloud once it is switched to. */
  healthWindowSec: number;
}

export type InstallerStep = 'stage' | 'activate' | 'commit';

/** What stage verified and unpacked (root's); activate switches to this and nothing else. */
export interface StagedRelease extends InstallRequest {
  /** The release that was current when it was staged. */
  from: string;
}

/** Installer → agent. */
export interface InstallResult {
  step: InstallerStep;
  ok: boolean;
  requestId: string | null;
  version: string;
  error?: string;
  at: string;
}

/** Root's record of a release on trial (written by the installer at the switch, read by the guard at each start). */
export interface TrialState {
  actionId: string;
  from: string;
  to: string;
  /** Starts of `to` so far (counted by the guard before each). */
  starts: number;
  maxStarts: number;
  healthWindowMs: number;
  /** When the health window ends (ms since epoch): set by the guard at the first start of `to`. */
  deadline: number | null;
  /** How the last start ended (systemd's $SERVICE_RESULT / $EXIT_STATUS), for the reason. */
  lastExit?: string;
}

/** Guard → agent. */
export interface GuardResult {
  actionId: string;
  from: string;
  to: string;
  reason: string;
  at: string;
  /**
   * The previous release cannot open the store the new one migrated, but the store's snapshot from
   * before that migration it can, and no sale was taken since: the previous release puts the
   * snapshot back (its own file, in its own state dir) before it opens the store.
   */
  restoreStore?: { snapshot: string; migratedTo: number };
  /** The rollback was refused (the previous release could not open the store): `to` stays. */
  kept?: true;
}

/** Agent → guard (`<stateDir>/store-schema.json`): the store as the running release left it. */
export interface StoreSchemaNote {
  /** The store's schema version, and the lowest schema whose software may open it. */
  version: number;
  oldestReader: number;
  /** A copy of the store taken before a migration older software cannot live with (a file name in the state dir). */
  snapshot: { file: string; version: number; oldestReader: number; takenAt: string } | null;
  /** A sale was accepted after the snapshot: putting the snapshot back would lose it. */
  salesSinceSnapshot: boolean;
}

/** The release's (`dist/bin/store-schema.json`): the agent store schema its software knows. */
export interface ReleaseSchema {
  agentStore: number;
}

/** Agent → guard. */
export interface CommitMarker {
  actionId: string;
  version: string;
  at: string;
}

export async function readJson<T>(file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (err instanceof SyntaxError) return null; // torn or foreign: as good as absent
    throw err;
  }
}

export function writeJson(file: string, value: unknown, mode = 0o644): Promise<void> {
  return writeFileAtomic(file, `${JSON.stringify(value, null, 2)}\n`, mode);
}

export async function removeFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

/** The release `current` points to, or null when the software was not installed that way. */
export async function linkedRelease(l: Layout): Promise<string | null> {
  try {
    return basename(await readlink(paths(l).current));
  } catch {
    return null;
  }
}

/** Points `current` at a release: a new link beside it, renamed over it (atomic), the directory synced. */
export async function pointCurrent(l: Layout, version: string): Promise<void> {
  const current = paths(l).current;
  const next = `${current}.next`;
  await rm(next, { force: true });
  await symlink(join('releases', version), next);
  await rename(next, current);
  await syncDir(l.installDir);
}
