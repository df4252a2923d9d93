import type { StoreSchemaNote, TrialState } from './layout.js';

/**
 * The boot guard's decision before each start of the service — pure, so every case is a test.
 * It runs as root outside the release (systemd ExecStartPre=+), so a release that cannot start,
 * or that never reaches the cloud, is rolled back without its help.
 *
 *   no trial                                        → start as is
 *   trial, `current` no longer the release on trial → forget the trial (rolled back or switched by hand)
 *   trial, the agent committed it                   → forget the trial: it proved itself
 *   trial, starts so far ≥ maxStarts                → roll back (it keeps failing to start)
 *   trial, health window over (it opens at the first start) → roll back (it never reached the cloud)
 *   otherwise                                       → count this start, start it
 *
 * A rollback across a store migration (issue 24): the previous release must be able to open the
 * store the one on trial left.
 *   it can (the store's oldest reader ≤ the schema it knows, or either is unknown) → roll back
 *   it cannot, but the snapshot from before the migration it can, no sale since    → roll back, and
 *                                                       the previous release puts the snapshot back
 *   it cannot                                        → keep: the trial ends, the release stays, the
 *                                                       reason is left for it to report (no flip-flop)
 */
export type GuardDecision =
  | { do: 'start' }
  | { do: 'forget'; why: string }
  | { do: 'count'; starts: number; deadline: number }
  | { do: 'rollback'; reason: string; restoreStore?: { snapshot: string; migratedTo: number } }
  | { do: 'keep'; reason: string };

export interface GuardFacts {
  trial: TrialState | null;
  /** The release `current` points to. */
  linked: string | null;
  /** The version the agent marked committed, if any. */
  committed: { actionId: string; version: string } | null;
  nowMs: number;
  /** The store as the release on trial left it (the agent's store-schema.json), null when it says nothing. */
  store?: StoreSchemaNote | null;
  /** The store schema the previous release knows (its dist/bin/store-schema.json), null when it does not say. */
  fromSchema?: number | null;
}

export function decideGuard(f: GuardFacts): GuardDecision {
  const t = f.trial;
  if (!t) return { do: 'start' };
  if (f.linked !== t.to) return { do: 'forget', why: `current is ${f.linked ?? 'unset'}, not ${t.to}` };
  if (f.committed && f.committed.actionId === t.actionId && f.committed.version === t.to)
    return { do: 'forget', why: `${t.to} was committed` };
  const exit = t.lastExit ? ` (last start ended: ${t.lastExit})` : '';
  if (t.starts >= t.maxStarts)
    return rollbackIfItCan(
      f,
      t,
      `version ${t.to} failed to start: ${t.starts} starts without reaching the cloud${exit}`,
    );
  if (t.deadline !== null && f.nowMs > t.deadline)
    return rollbackIfItCan(f, t, `version ${t.to} did not reach the cloud within its health window${exit}`);
  // The window opens at the first start, not at the switch: a terminal switched off right after
  // the switch still gives the new release its full window.
  return { do: 'count', starts: t.starts + 1, deadline: t.deadline ?? f.nowMs + t.healthWindowMs };
}

function rollbackIfItCan(f: GuardFacts, t: TrialState, why: string): GuardDecision {
  const rolledBack = `${why}; the boot guard rolled back to ${t.from}`;
  const store = f.store ?? null;
  const known = f.fromSchema ?? null;
  if (!store || known === null || store.oldestReader <= known) return { do: 'rollback', reason: rolledBack };
  const snap = store.snapshot;
  if (snap && !store.salesSinceSnapshot && snap.oldestReader <= known)
    return {
      do: 'rollback',
      reason: `${rolledBack}, and the store back to its snapshot from before the migration to schema ${store.version}`,
      restoreStore: { snapshot: snap.file, migratedTo: store.version },
    };
  const because = !snap
    ? 'there is no snapshot from before the migration'
    : store.salesSinceSnapshot
      ? 'sales were taken since the snapshot from before the migration, which putting it back would lose'
      : `its snapshot needs schema ${snap.oldestReader} too`;
  return {
    do: 'keep',
    reason: `${why}; the boot guard refused to roll back to ${t.from}: the store was migrated to schema ${store.version}, which only software of schema ${store.oldestReader} or later can open (${t.from} knows ${known}), and ${because}; ${t.to} stays`,
  };
}
