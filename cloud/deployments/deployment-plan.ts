import { createHash } from 'node:crypto';
import type { DeploymentState, TargetState } from './deployment-state.js';

/**
 * What a deployment does next (issue 24), pure: its groups, when a group may start, when it stops,
 * and how fast update actions may be created. The service (deployment-service.ts) feeds it the
 * counts from the store and carries out what it answers.
 */
export type GroupSpec = { percent: number } | { count: number };

export interface DeploymentRules {
  /** A group starts once the one before it has this share of its terminals completed (skipped ones left out). */
  advanceWhen: { successPercent: number };
  /**
   * The deployment stops at this many failures, or at this share of failures among the terminals
   * finished so far — judged once `minFinished` have finished (default 10, or every terminal of a
   * smaller deployment: AWS IoT Jobs' minimum executed things), so that one early failure of two
   * does not stop a fleet.
   */
  stopWhen: { failures?: number; failurePercent?: number; minFinished?: number };
  /** Update actions created per minute, at most (spread, never in a burst). */
  maxPerMinute: number;
}

/**
 * The terminals in a stable, shuffled order (sha256 of deployment id and terminal id: the same on
 * every tick and every gateway, and no store or model gets the first group by its ids), cut into the
 * groups asked for; the last group takes what is left; an empty group is dropped.
 */
export function planGroups(
  deploymentId: string,
  terminalIds: readonly string[],
  groups: readonly GroupSpec[],
): string[][] {
  const order = [...terminalIds]
    .map((id) => ({ id, key: createHash('sha256').update(`${deploymentId}\n${id}`).digest('hex') }))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map((x) => x.id);
  const out: string[][] = [];
  let at = 0;
  groups.forEach((g, i) => {
    const last = i === groups.length - 1;
    const size = last
      ? order.length - at
      : 'count' in g
        ? g.count
        : Math.ceil((order.length * g.percent) / 100);
    const members = order.slice(at, at + Math.max(0, size));
    at += members.length;
    if (members.length > 0) out.push(members);
  });
  return out;
}

/** A group's counts, by target state. */
export type GroupCounts = Record<TargetState, number>;

export const emptyCounts = (): GroupCounts => ({
  queued: 0,
  processing: 0,
  completed: 0,
  failed: 0,
  skipped: 0,
});

export type PlanDecision =
  | { do: 'wait' }
  /** Create update actions for up to `count` queued terminals of the groups started so far. */
  | { do: 'ask'; count: number }
  /** The next group may start (it is `group`, 0-based). */
  | { do: 'advance'; group: number }
  | { do: 'stop'; reason: string }
  | { do: 'finish' };

export interface PlanFacts {
  state: DeploymentState;
  /** Groups started so far (the first starts with the deployment). */
  startedGroups: number;
  groups: readonly GroupCounts[];
  rules: DeploymentRules;
  /** Update actions this deployment may still create in the current minute (the rate's budget). */
  budget: number;
}

/** The share in percent, of a group's terminals that count (not skipped), that completed. */
export function successPercent(g: GroupCounts): number {
  const counted = g.queued + g.processing + g.completed + g.failed;
  return counted === 0 ? 100 : (g.completed * 100) / counted;
}

export function decide(f: PlanFacts): PlanDecision {
  if (f.state !== 'running') return { do: 'wait' };
  const sum = f.groups.reduce(
    (s, g) => ({
      queued: s.queued + g.queued,
      processing: s.processing + g.processing,
      completed: s.completed + g.completed,
      failed: s.failed + g.failed,
      skipped: s.skipped + g.skipped,
    }),
    emptyCounts(),
  );
  const finished = sum.completed + sum.failed;
  const total = sum.queued + sum.processing + finished;
  const { failures, failurePercent } = f.rules.stopWhen;
  const minFinished = Math.min(f.rules.stopWhen.minFinished ?? 10, total);
  if (failures !== undefined && sum.failed >= failures)
    return {
      do: 'stop',
      reason: `${sum.failed} terminals failed the update (stopWhen.failures ${failures})`,
    };
  if (
    failurePercent !== undefined &&
    finished > 0 &&
    finished >= minFinished &&
    (sum.failed * 100) / finished >= failurePercent
  )
    return {
      do: 'stop',
      reason: `${sum.failed} of ${finished} terminals finished failed the update (${Math.round((sum.failed * 100) / finished)} %, stopWhen.failurePercent ${failurePercent})`,
    };
  const started = f.groups.slice(0, f.startedGroups);
  const queuedInStarted = started.reduce((n, g) => n + g.queued, 0);
  if (queuedInStarted > 0)
    return f.budget > 0 ? { do: 'ask', count: Math.min(f.budget, queuedInStarted) } : { do: 'wait' };
  const current = started[started.length - 1];
  const open = current ? current.processing : 0;
  if (f.startedGroups < f.groups.length) {
    // The group before the next one must reach its success share; terminals still updating count as not yet.
    if (current && successPercent(current) < f.rules.advanceWhen.successPercent) {
      if (open > 0) return { do: 'wait' };
      // Every terminal of the group finished, and too few succeeded: the next group never starts.
      return {
        do: 'stop',
        reason: `group ${f.startedGroups} finished with ${Math.round(successPercent(current))} % completed, below advanceWhen.successPercent ${f.rules.advanceWhen.successPercent}`,
      };
    }
    return { do: 'advance', group: f.startedGroups };
  }
  return open > 0 || started.some((g) => g.processing > 0) ? { do: 'wait' } : { do: 'finish' };
}

/**
 * The rate: no more than `maxPerMinute` update actions asked in any minute, and at most `perTick`
 * in one look (the service jitters it), so a group never starts as one burst and a fleet's
 * updates do not line up.
 */
export function budgetNow(askedInLastMinute: number, maxPerMinute: number, perTick: number): number {
  return Math.max(0, Math.min(perTick, maxPerMinute - askedInLastMinute));
}
