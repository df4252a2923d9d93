import { mkdir, rm, stat } from 'node:fs/promises';
import { readAgentJson } from './agent-file.js';
import { decideGuard } from './guard-decision.js';
import {
  type CommitMarker,
  type GuardResult,
  type Layout,
  linkedRelease,
  paths,
  pointCurrent,
  type ReleaseSchema,
  readJson,
  type StoreSchemaNote,
  type TrialState,
} from './layout.js';
import { writeRootJson } from './owned-file.js';

/**
 * The boot guard: root, outside every release (systemd runs it as `ExecStartPre=+` before each
 * start of posagent.service, and `ExecStopPost=+` after each stop). Before a start it counts the
 * starts of a release on trial and rolls it back — `current` to the previous release, the bad one
 * removed, the reason left (root's, world-readable) for the previous version to report — when it
 * keeps failing to start or outlives its health window without reaching the cloud. The decision
 * is guard-decision.ts. It reads the agent's commit marker only while a trial is open, and only as
 * a plain file of the agent's (agent-file.ts). It never fails the start itself: whatever goes wrong
 * here is logged and the service starts.
 */
export interface GuardOptions {
  layout: Layout;
  now(): number;
  log(message: string): void;
}

async function commitMarker(o: GuardOptions): Promise<CommitMarker | null> {
  const owner = await stat(o.layout.stateDir).catch(() => null);
  if (!owner) return null;
  try {
    const m = (await readAgentJson(paths(o.layout).committed, owner, 4096)) as Partial<CommitMarker>;
    return typeof m.actionId === 'string' && typeof m.version === 'string' ? (m as CommitMarker) : null;
  } catch {
    return null; // absent, or not a plain file of the agent's: no commit
  }
}

/** The store as the agent left it (its own plain file), null when absent or not the agent's. */
async function storeSchema(o: GuardOptions): Promise<StoreSchemaNote | null> {
  const owner = await stat(o.layout.stateDir).catch(() => null);
  if (!owner) return null;
  try {
    const n = (await readAgentJson(paths(o.layout).storeSchema, owner, 4096)) as Partial<StoreSchemaNote>;
    const int = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
    if (!int(n.version) || !int(n.oldestReader) || typeof n.salesSinceSnapshot !== 'boolean') return null;
    const s = n.snapshot;
    const snapshot =
      s && typeof s.file === 'string' && /^[\w.-]+$/.test(s.file) && int(s.version) && int(s.oldestReader)
        ? s
        : null;
    return { ...(n as StoreSchemaNote), snapshot };
  } catch {
    return null;
  }
}

/** The store schema a release knows (root's file in its tree), null when it does not say (older releases). */
async function releaseSchema(o: GuardOptions, version: string): Promise<number | null> {
  const r = await readJson<ReleaseSchema>(paths(o.layout).releaseSchema(version)).catch(() => null);
  return r && Number.isSafeInteger(r.agentStore) ? r.agentStore : null;
}

export async function guardBeforeStart(o: GuardOptions): Promise<void> {
  const p = paths(o.layout);
  const trial = await readJson<TrialState>(p.trial);
  if (!trial) return;
  const decision = decideGuard({
    trial,
    linked: await linkedRelease(o.layout),
    committed: await commitMarker(o),
    nowMs: o.now(),
    store: await storeSchema(o),
    fromSchema: await releaseSchema(o, trial.from),
  });
  switch (decision.do) {
    case 'start':
      return;
    case 'forget':
      o.log(`trial over: ${decision.why}`);
      await rm(p.trial, { force: true });
      return;
    case 'count':
      await writeRootJson(p.trial, { ...trial, starts: decision.starts, deadline: decision.deadline });
      o.log(
        `starting ${trial.to} on trial: start ${decision.starts} of ${trial.maxStarts}, window until ${new Date(decision.deadline).toISOString()}`,
      );
      return;
    case 'keep': {
      // The previous release could not open the store: no rollback, and no trial to decide again.
      o.log(`keeping ${trial.to}: ${decision.reason}`);
      await leaveResult(o, trial, decision.reason, { kept: true });
      await rm(p.trial, { force: true });
      return;
    }
    case 'rollback': {
      o.log(`rolling back ${trial.to} to ${trial.from}: ${decision.reason}`);
      // The reason first, for the previous version to report; then the switch; then the cleanup.
      const left = await leaveResult(
        o,
        trial,
        decision.reason,
        decision.restoreStore ? { restoreStore: decision.restoreStore } : {},
      );
      // Without the note the previous release would not put the snapshot back, and could not open the store.
      if (decision.restoreStore && !left) {
        o.log(`not rolling back ${trial.to}: the previous release could not be told to restore the store`);
        return;
      }
      await pointCurrent(o.layout, trial.from);
      await rm(p.release(trial.to), { recursive: true, force: true });
      await rm(p.trial, { force: true });
      return;
    }
  }
}

/** The guard's result for the agent (root's file, world-readable); false when it could not be written. */
async function leaveResult(
  o: GuardOptions,
  trial: TrialState,
  reason: string,
  extra: Pick<GuardResult, 'kept' | 'restoreStore'>,
): Promise<boolean> {
  const p = paths(o.layout);
  const result: GuardResult = {
    actionId: trial.actionId,
    from: trial.from,
    to: trial.to,
    reason,
    at: new Date(o.now()).toISOString(),
    ...extra,
  };
  try {
    await mkdir(p.rootUpdate, { recursive: true, mode: 0o755 });
    await writeRootJson(p.guardResult, result);
    return true;
  } catch (err) {
    o.log(`could not leave the guard's reason for the agent: ${(err as Error).message}`);
    return false;
  }
}

/** After a stop: how it ended (systemd's $SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS), for the rollback reason. */
export async function guardAfterStop(o: GuardOptions, ended: string): Promise<void> {
  const p = paths(o.layout);
  const trial = await readJson<TrialState>(p.trial);
  if (!trial || !ended) return;
  await writeRootJson(p.trial, { ...trial, lastExit: ended.slice(0, 200) });
}
