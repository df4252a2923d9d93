import { rm, stat } from 'node:fs/promises';
import { decideGuard } from './guard-decision.js';
import {
  type CommitMarker,
  type GuardResult,
  type Layout,
  linkedRelease,
  paths,
  pointCurrent,
  readJson,
  type TrialState,
} from './layout.js';
import { writeOwnedJson } from './owned-file.js';

/**
 * The boot guard: root, outside every release (systemd runs it as `ExecStartPre=+` before each
 * start of posagent.service, and `ExecStopPost=+` after each stop). Before a start it counts the
 * starts of a release on trial and rolls it back — `current` to the previous release, the bad one
 * removed, the reason left for the previous version to report — when it keeps failing to start or
 * outlives its health window without reaching the cloud. The decision is guard-decision.ts.
 * It never fails the start itself: whatever goes wrong here is logged and the service starts.
 */
export interface GuardOptions {
  layout: Layout;
  now(): number;
  log(message: string): void;
}

async function owner(l: Layout): Promise<{ uid: number; gid: number }> {
  const s = await stat(l.stateDir).catch(() => null);
  return s ? { uid: s.uid, gid: s.gid } : { uid: 0, gid: 0 };
}

export async function guardBeforeStart(o: GuardOptions): Promise<void> {
  const p = paths(o.layout);
  const trial = await readJson<TrialState>(p.trial);
  const committed = await readJson<CommitMarker>(p.committed);
  const decision = decideGuard({ trial, linked: await linkedRelease(o.layout), committed, nowMs: o.now() });
  switch (decision.do) {
    case 'start':
      return;
    case 'forget':
      o.log(`trial over: ${decision.why}`);
      await rm(p.trial, { force: true });
      return;
    case 'count':
      await writeOwnedJson(
        p.trial,
        { ...trial!, starts: decision.starts, deadline: decision.deadline },
        { uid: 0, gid: 0 },
      );
      o.log(
        `starting ${trial!.to} on trial: start ${decision.starts} of ${trial!.maxStarts}, window until ${new Date(decision.deadline).toISOString()}`,
      );
      return;
    case 'rollback': {
      const t = trial!;
      o.log(`rolling back ${t.to} to ${t.from}: ${decision.reason}`);
      // The reason first, for the previous version to report; then the switch; then the cleanup.
      const result: GuardResult = {
        actionId: t.actionId,
        from: t.from,
        to: t.to,
        reason: decision.reason,
        at: new Date(o.now()).toISOString(),
      };
      await writeOwnedJson(p.guardResult, result, await owner(o.layout)).catch((err: Error) =>
        o.log(`could not leave the rollback reason for the agent: ${err.message}`),
      );
      await pointCurrent(o.layout, t.from);
      await rm(p.release(t.to), { recursive: true, force: true });
      await rm(p.trial, { force: true });
      return;
    }
  }
}

/** After a stop: how it ended (systemd's $SERVICE_RESULT, $EXIT_CODE, $EXIT_STATUS), for the rollback reason. */
export async function guardAfterStop(o: GuardOptions, ended: string): Promise<void> {
  const p = paths(o.layout);
  const trial = await readJson<TrialState>(p.trial);
  if (!trial || !ended) return;
  await writeOwnedJson(p.trial, { ...trial, lastExit: ended.slice(0, 200) }, { uid: 0, gid: 0 });
}
