import { randomUUID } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import { SemVer } from '../../protocol/actions.js';
import { DisplayName, IsoTime, isoTimeMs } from '../../protocol/formats.js';
import { isRefusal, Refusal } from '../../protocol/refusal.js';
import { compileValidator } from '../../protocol/schema-validation.js';
import type { ActionService } from '../actions/action-service.js';
import { parseBody } from '../body-validation.js';
import { checkCursor, type ListOf, listPage, MAX_LIMIT } from '../list-page.js';
import { Pacer } from '../pacer.js';
import { unixSeconds, unixSecondsOrNull } from '../rest-time.js';
import type {
  CloudStore,
  DeploymentRow,
  DeploymentTargetRow,
  DeploymentTargetState,
  Page,
  TerminalRow,
} from '../store/store-types.js';
import { startSweep } from '../sweep.js';
import {
  budgetNow,
  type DeploymentRules,
  decide,
  emptyCounts,
  type GroupCounts,
  type GroupSpec,
  planGroups,
} from './deployment-plan.js';
import { type DeploymentEvent, nextDeploymentState } from './deployment-state.js';

/**
 * Deployments (issue 24): a release rolled out to a target of terminals in groups, through the
 * same update action an operator queues by hand (so it goes through maintenance windows, busy
 * leases, the boot guard and the routing to the gateway that holds each link). What to do next is
 * deployment-plan.ts; this file keeps it in the store and carries it out.
 *
 * Safe with several gateways: the ticks run on the leader (its pacer paces the fleet), the first
 * look on the gateway that took the POST; a tick holds the deployment's row for its transaction (PostgreSQL
 * `FOR UPDATE`), claims the terminals it asks (queued → processing, only from queued), and asks
 * them after the commit; a gateway that dies between the two leaves `processing` without an action,
 * which the next tick gives back to the queue after a minute. A terminal's end comes from its
 * update action's (`action.finished`, on whichever gateway heard it).
 */
const Id = Type.String({ minLength: 1, maxLength: 64 });
const CreateDeploymentBody = Type.Object(
  {
    name: Type.Optional(DisplayName),
    release: SemVer,
    target: Type.Object(
      {
        organizationId: Type.Optional(Id),
        locationIds: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: 1000, uniqueItems: true })),
        terminalIds: Type.Optional(Type.Array(Id, { minItems: 1, maxItems: 2000, uniqueItems: true })),
        filter: Type.Optional(
          Type.Object(
            {
              softwareVersion: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
              model: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
            },
            { additionalProperties: false },
          ),
        ),
      },
      { additionalProperties: false },
    ),
    groups: Type.Optional(
      Type.Array(
        Type.Union([
          Type.Object(
            { percent: Type.Integer({ minimum: 1, maximum: 100 }) },
            { additionalProperties: false },
          ),
          Type.Object(
            { count: Type.Integer({ minimum: 1, maximum: 1_000_000 }) },
            { additionalProperties: false },
          ),
        ]),
        { minItems: 1, maxItems: 10 },
      ),
    ),
    advanceWhen: Type.Optional(
      Type.Object(
        { successPercent: Type.Integer({ minimum: 0, maximum: 100 }) },
        { additionalProperties: false },
      ),
    ),
    stopWhen: Type.Optional(
      Type.Object(
        {
          failurePercent: Type.Optional(Type.Integer({ minimum: 1, maximum: 100 })),
          failures: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
          minFinished: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
        },
        { additionalProperties: false },
      ),
    ),
    maxPerMinute: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000 })),
    /** Switch at once instead of in each terminal's maintenance window. */
    now: Type.Optional(Type.Boolean()),
    startAt: Type.Optional(IsoTime),
  },
  { additionalProperties: false },
);
const createBody = compileValidator(CreateDeploymentBody);

export const DEFAULT_RULES: DeploymentRules = {
  advanceWhen: { successPercent: 90 },
  stopWhen: { failurePercent: 20 },
  maxPerMinute: 60,
};

/** A processing terminal without its action this long after it was claimed was left by a crash: ask it again. */
const STRANDED_MS = 60_000;
/** How often the service looks at its deployments. */
export const TICK_MS = 1000;

export interface DeploymentView {
  id: string;
  object: 'deployment';
  name: string;
  release: string;
  target: unknown;
  state: DeploymentRow['state'];
  reason: string | null;
  groups: ({ index: number; size: number; started: boolean } & GroupCounts)[];
  totals: GroupCounts;
  advanceWhen: DeploymentRules['advanceWhen'];
  stopWhen: DeploymentRules['stopWhen'];
  maxPerMinute: number;
  now: boolean;
  /** Unix seconds. */
  startAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface DeploymentTargetView {
  object: 'deployment_target';
  terminalId: string;
  group: number;
  state: DeploymentTargetState;
  actionId: string | null;
  reason: string | null;
  /** Unix seconds. */
  updatedAt: number;
}

/** The webhook events a deployment's changes are told as. */
export const DEPLOYMENT_WEBHOOKS = [
  'deployment.started',
  'deployment.group_started',
  'deployment.paused',
  'deployment.resumed',
  'deployment.completed',
  'deployment.stopped',
  'deployment.cancelled',
] as const;
export type DeploymentWebhook = (typeof DEPLOYMENT_WEBHOOKS)[number];

export interface DeploymentServiceOptions {
  store: CloudStore;
  actions: Pick<ActionService, 'create'>;
  /** Writes a `deployment.*` webhook event (inside the caller's transaction). */
  emit(type: DeploymentWebhook, data: DeploymentView): Promise<void>;
  now(): number;
  random(): number;
  log: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void };
  /**
   * Update starts paced (cloud/pacer.ts): at most maxPerMinute / 60 a second, each gap jittered,
   * never a burst of a tick's share. `false`: a tick's share starts at once, one after the other
   * (tests that step a clock).
   */
  paced?: boolean;
}

interface Ask {
  t: DeploymentTargetRow;
  release: string;
  switchNow: boolean;
}

export class DeploymentService {
  private timer: NodeJS.Timeout | undefined;
  /** Each running deployment's paced update starts (this gateway's: the one whose tick claimed them). */
  private readonly pacers = new Map<string, Pacer<Ask>>();

  constructor(private readonly o: DeploymentServiceOptions) {}

  /** Looks at the deployments every TICK_MS (a look that fails is logged; the next one runs). */
  start(): void {
    this.timer = startSweep(
      () => this.tick(),
      TICK_MS,
      (err) => this.o.log.warn({ err: err.message }, 'deployment tick failed'),
    );
  }

  stop(): void {
    clearInterval(this.timer);
    for (const p of this.pacers.values()) p.stop();
    this.pacers.clear();
  }

  private pacerFor(id: string, maxPerMinute: number): Pacer<Ask> {
    let p = this.pacers.get(id);
    if (!p) {
      p = new Pacer<Ask>({
        perSecond: maxPerMinute / 60,
        run: (a) => this.askOne(a.t, a.release, a.switchNow),
        onError: (terminalId, err) =>
          this.o.log.warn(
            { deploymentId: id, terminalId, err: err.message },
            "a deployment's update not asked; the terminal is queued again after a minute",
          ),
        now: this.o.now,
        random: this.o.random,
      });
      this.pacers.set(id, p);
    }
    return p;
  }

  private get table() {
    return this.o.store.deployments;
  }

  async create(body: unknown): Promise<DeploymentView> {
    const b = parseBody(createBody, body, 'invalid_deployment');
    const startAt = b.startAt ? isoTimeMs(b.startAt) : null;
    if (b.startAt && startAt === null)
      throw new Refusal(
        'invalid_deployment',
        `startAt (${b.startAt}) is not a real time (ISO 8601 UTC, e.g. 2027-01-05T02:00:00Z)`,
      );
    const chosen = (['organizationId', 'locationIds', 'terminalIds'] as const).filter(
      (k) => b.target[k] !== undefined,
    );
    if (chosen.length > 1)
      throw new Refusal(
        'invalid_deployment',
        `target takes one of organizationId, locationIds, terminalIds, not ${chosen.join(' and ')}`,
      );
    if (chosen.length === 0 && !b.target.filter)
      throw new Refusal(
        'invalid_deployment',
        'target needs organizationId, locationIds, terminalIds or a filter',
      );
    if (!(await this.o.store.releases.get(b.release)))
      throw new Refusal(
        'release_not_found',
        `no release ${b.release}; publish it with PUT /v1/releases/${b.release}`,
      );
    const now = this.o.now();
    const terminals = await this.resolve(b.target);
    if (terminals.length === 0)
      throw new Refusal('invalid_deployment', 'the target names no active terminal');
    const id = `dep_${randomUUID().replaceAll('-', '').slice(0, 24)}`;
    const specs: GroupSpec[] = b.groups ?? [{ percent: 100 }];
    const groups = planGroups(
      id,
      terminals.map((t) => t.id),
      specs,
    );
    const rules: DeploymentRules = {
      advanceWhen: b.advanceWhen ?? DEFAULT_RULES.advanceWhen,
      stopWhen: b.stopWhen ?? DEFAULT_RULES.stopWhen,
      maxPerMinute: b.maxPerMinute ?? DEFAULT_RULES.maxPerMinute,
    };
    const row: DeploymentRow = {
      id,
      name: b.name ?? `${b.release} to ${terminals.length} terminals`,
      releaseVersion: b.release,
      target: JSON.stringify(b.target),
      groups: JSON.stringify(specs),
      rules: JSON.stringify(rules),
      state: 'scheduled',
      reason: null,
      startedGroups: 0,
      groupCount: groups.length,
      now: b.now === true,
      startAt,
      createdAt: now,
      updatedAt: now,
    };
    await this.o.store.transaction(() =>
      this.table.insert(
        row,
        groups.flatMap((members, groupIndex) => members.map((terminalId) => ({ terminalId, groupIndex }))),
      ),
    );
    this.o.log.info(
      { deploymentId: id, release: b.release, terminals: terminals.length, groups: groups.length },
      'deployment created',
    );
    await this.tickOne(id);
    return this.get(id);
  }

  async get(id: string): Promise<DeploymentView> {
    const d = await this.table.get(id);
    if (!d) throw new Refusal('not_found', `no deployment ${id}`);
    return this.view(d);
  }

  async list(page: Page): Promise<ListOf<DeploymentView>> {
    await checkCursor(page, async (id) => (await this.table.get(id)) !== undefined);
    return listPage(
      page,
      (p) => this.table.list(p),
      (d) => this.view(d),
    );
  }

  /** The terminals of a deployment, in group order; `starting_after` is a terminal id. */
  async targets(id: string, query: URLSearchParams): Promise<ListOf<DeploymentTargetView>> {
    await this.get(id);
    const raw = query.get('limit');
    const limit = raw === null ? 100 : Number(raw);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      throw new Refusal('invalid_request', `limit must be an integer from 1 to ${MAX_LIMIT}`);
    const afterId = query.get('starting_after');
    let after: { groupIndex: number; terminalId: string } | null = null;
    if (afterId !== null) {
      const at = (await this.table.targets(id, { after: null, limit: 1_000_000 })).find(
        (t) => t.terminalId === afterId,
      );
      if (!at)
        throw new Refusal(
          'invalid_request',
          `starting_after ${afterId} is not a terminal of this deployment`,
        );
      after = { groupIndex: at.groupIndex, terminalId: at.terminalId };
    }
    const rows = await this.table.targets(id, { after, limit: limit + 1 });
    return {
      object: 'list',
      data: rows.slice(0, limit).map(targetView),
      has_more: rows.length > limit,
    };
  }

  pause(id: string): Promise<DeploymentView> {
    return this.move(id, 'pause', 'deployment.paused', null);
  }

  resume(id: string): Promise<DeploymentView> {
    return this.move(id, 'resume', 'deployment.resumed', null);
  }

  cancel(id: string): Promise<DeploymentView> {
    return this.move(id, 'cancel', 'deployment.cancelled', 'cancelled by the operator');
  }

  /** An operator's move: refused (409) when the state does not take it. */
  private async move(
    id: string,
    event: DeploymentEvent,
    hook: 'deployment.paused' | 'deployment.resumed' | 'deployment.cancelled',
    reason: string | null,
  ): Promise<DeploymentView> {
    await this.o.store.transaction(async () => {
      const d = await this.table.lock(id);
      if (!d) throw new Refusal('not_found', `no deployment ${id}`);
      const next = nextDeploymentState(d.state, event);
      if (next === null) throw new Refusal('invalid_state', `a ${d.state} deployment cannot ${event}`);
      await this.change(d, next, reason ?? d.reason, d.startedGroups, hook);
      if (event === 'cancel') await this.table.skipQueued(id, 'the deployment was cancelled', this.o.now());
    });
    return this.get(id);
  }

  /**
   * Every scheduled, running or paused deployment, one at a time — on one gateway of several (the
   * leader, as for the status sweep): its pacer then holds the fleet's rate, not one rate per gateway.
   */
  async tick(): Promise<void> {
    if (!(await this.o.store.gateways.lead())) return;
    for (const d of await this.table.active()) await this.tickOne(d.id);
  }

  /** A terminal's update action ended: its place in its deployment follows (in the action's transaction). */
  async actionFinished(
    actionId: string,
    status: 'completed' | 'failed',
    reason: string | null,
  ): Promise<void> {
    const t = await this.table.byAction(actionId);
    if (t?.state !== 'processing') return;
    // Never delivered (the terminal stayed away): not the release's failure.
    const offline = status === 'failed' && reason !== null && reason.startsWith('expired');
    const state: DeploymentTargetState =
      status === 'completed' ? 'completed' : offline ? 'skipped' : 'failed';
    await this.table.moveTarget(t.deploymentId, t.terminalId, 'processing', { state, reason }, this.o.now());
  }

  private async tickOne(id: string): Promise<void> {
    const now = this.o.now();
    const ask: DeploymentTargetRow[] = [];
    let pacer: Pacer<Ask> | undefined;
    let release = '';
    let switchNow = false;
    await this.o.store.transaction(async () => {
      let d = await this.table.lock(id);
      if (!d) return;
      release = d.releaseVersion;
      switchNow = d.now;
      if (d.state === 'scheduled') {
        if (d.startAt !== null && d.startAt > now) return;
        await this.change(d, 'running', null, 1, 'deployment.started');
        d = { ...d, state: 'running', startedGroups: 1 }; // and its first group is asked in this same look
      }
      if (d.state !== 'running') return;
      for (const t of await this.table.stranded(id, now - STRANDED_MS))
        await this.table.moveTarget(id, t.terminalId, 'processing', { state: 'queued', askedAt: null }, now);
      const rules = JSON.parse(d.rules) as DeploymentRules;
      const groups = await this.groupCounts(d);
      // The minute's budget, and this tick's share of it: paced, as many as the pacer starts
      // before the next tick (less what still waits in it); unpaced, a jittered share.
      pacer = this.o.paced === false ? undefined : this.pacerFor(id, rules.maxPerMinute);
      const share = (rules.maxPerMinute * TICK_MS) / 60_000;
      const perTick = pacer
        ? Math.max(0, Math.ceil(share) - pacer.pending)
        : Math.max(1, Math.round(share * (0.5 + this.o.random())));
      const budget = budgetNow(await this.table.askedSince(id, now - 60_000), rules.maxPerMinute, perTick);
      const decision = decide({ state: d.state, startedGroups: d.startedGroups, groups, rules, budget });
      switch (decision.do) {
        case 'wait':
          return;
        case 'ask':
          for (const t of await this.table.queued(id, d.startedGroups, decision.count))
            if (
              await this.table.moveTarget(
                id,
                t.terminalId,
                'queued',
                { state: 'processing', askedAt: now },
                now,
              )
            )
              ask.push(t);
          return;
        case 'advance':
          await this.change(d, 'running', null, decision.group + 1, 'deployment.group_started');
          return;
        case 'stop':
          await this.change(d, 'stopped', decision.reason, d.startedGroups, 'deployment.stopped');
          await this.table.skipQueued(id, 'the deployment stopped', now);
          this.o.log.warn({ deploymentId: id, reason: decision.reason }, 'deployment stopped');
          return;
        case 'finish':
          await this.change(d, 'completed', null, d.startedGroups, 'deployment.completed');
          return;
      }
    });
    // After the commit: each claimed terminal's update action (delivered to its gateway by the router).
    if (pacer) for (const t of ask) pacer.add(t.terminalId, { t, release, switchNow });
    else for (const t of ask) await this.askOne(t, release, switchNow);
  }

  private async askOne(t: DeploymentTargetRow, release: string, switchNow: boolean): Promise<void> {
    const now = this.o.now();
    const skip = (reason: string) =>
      this.table.moveTarget(t.deploymentId, t.terminalId, 'processing', { state: 'skipped', reason }, now);
    // Paced: the deployment may have changed since its tick claimed the terminal.
    const d = await this.table.get(t.deploymentId);
    if (d?.state === 'paused')
      return void (await this.table.moveTarget(
        t.deploymentId,
        t.terminalId,
        'processing',
        { state: 'queued', askedAt: null },
        now,
      ));
    if (d?.state !== 'running') return void (await skip(`the deployment was ${d?.state ?? 'removed'}`));
    const terminal = await this.o.store.terminals.get(t.terminalId);
    if (!terminal || terminal.deactivatedAt !== null) return void (await skip('the terminal is deactivated'));
    if (terminal.softwareVersion === release)
      return void (await skip(`the terminal runs ${release} already`));
    try {
      const action = await this.o.actions.create(t.terminalId, {
        type: 'update',
        params: { version: release, ...(switchNow ? { now: true } : {}) },
      });
      await this.table.moveTarget(
        t.deploymentId,
        t.terminalId,
        'processing',
        { state: 'processing', actionId: action.id },
        now,
      );
    } catch (err) {
      if (!isRefusal(err)) throw err;
      await this.table.moveTarget(
        t.deploymentId,
        t.terminalId,
        'processing',
        { state: 'failed', reason: `the update could not be queued: ${err.message} (${err.code})` },
        now,
      );
    }
  }

  private async change(
    d: DeploymentRow,
    state: DeploymentRow['state'],
    reason: string | null,
    startedGroups: number,
    hook: DeploymentWebhook,
  ): Promise<void> {
    const updatedAt = this.o.now();
    await this.table.update(d.id, { state, reason, startedGroups, updatedAt });
    // Ended: what its pacer still holds is let run (each is skipped with the reason), then it goes.
    const pacer = this.pacers.get(d.id);
    if (pacer && (state === 'completed' || state === 'stopped' || state === 'cancelled')) {
      this.pacers.delete(d.id);
      void pacer.idle().then(() => pacer.stop());
    }
    // Written with the change (the webhook outbox is in the same transaction).
    await this.o.emit(hook, await this.view({ ...d, state, reason, startedGroups, updatedAt }));
    this.o.log.info({ deploymentId: d.id, state, startedGroups, reason }, hook);
  }

  private async groupCounts(d: DeploymentRow): Promise<GroupCounts[]> {
    const groups = Array.from({ length: d.groupCount }, emptyCounts);
    for (const c of await this.table.counts(d.id)) {
      const g = groups[c.groupIndex];
      if (g) g[c.state] += c.n;
    }
    return groups;
  }

  private async view(d: DeploymentRow): Promise<DeploymentView> {
    const rules = JSON.parse(d.rules) as DeploymentRules;
    const counts = await this.groupCounts(d);
    const totals = emptyCounts();
    for (const g of counts) for (const k of Object.keys(totals) as DeploymentTargetState[]) totals[k] += g[k];
    return {
      id: d.id,
      object: 'deployment',
      name: d.name,
      release: d.releaseVersion,
      target: JSON.parse(d.target) as unknown,
      state: d.state,
      reason: d.reason,
      groups: counts.map((g, index) => ({
        index,
        size: g.queued + g.processing + g.completed + g.failed + g.skipped,
        started: index < d.startedGroups,
        ...g,
      })),
      totals,
      advanceWhen: rules.advanceWhen,
      stopWhen: rules.stopWhen,
      maxPerMinute: rules.maxPerMinute,
      now: d.now,
      startAt: unixSecondsOrNull(d.startAt),
      createdAt: unixSeconds(d.createdAt),
      updatedAt: unixSeconds(d.updatedAt),
    };
  }

  /** The active terminals the target names. */
  private async resolve(target: {
    organizationId?: string | undefined;
    locationIds?: string[] | undefined;
    terminalIds?: string[] | undefined;
    filter?: { softwareVersion?: string | undefined; model?: string | undefined } | undefined;
  }): Promise<TerminalRow[]> {
    const s = this.o.store;
    let rows: TerminalRow[];
    if (target.terminalIds) {
      rows = [];
      for (const id of target.terminalIds) {
        const t = await s.terminals.get(id);
        if (!t) throw new Refusal('invalid_deployment', `no terminal ${id}`);
        rows.push(t);
      }
    } else if (target.locationIds) {
      rows = [];
      for (const id of target.locationIds) {
        if (!(await s.locations.get(id))) throw new Refusal('invalid_deployment', `no location ${id}`);
        rows.push(...(await s.terminals.at(id)));
      }
    } else if (target.organizationId) {
      if (!(await s.organizations.get(target.organizationId)))
        throw new Refusal('invalid_deployment', `no organization ${target.organizationId}`);
      rows = [];
      for (let after: string | null = null; ; ) {
        const page: TerminalRow[] = await s.terminals.page(
          { organizationId: target.organizationId },
          { after, limit: 500 },
        );
        rows.push(...page);
        if (page.length < 500) break;
        after = page[page.length - 1]!.id;
      }
    } else rows = await s.terminals.list(null);
    const f = target.filter;
    return rows.filter(
      (t) =>
        t.deactivatedAt === null &&
        (f?.softwareVersion === undefined || t.softwareVersion === f.softwareVersion) &&
        (f?.model === undefined || t.model === f.model),
    );
  }
}

function targetView(t: DeploymentTargetRow): DeploymentTargetView {
  return {
    object: 'deployment_target',
    terminalId: t.terminalId,
    group: t.groupIndex,
    state: t.state,
    actionId: t.actionId,
    reason: t.reason,
    updatedAt: unixSeconds(t.updatedAt),
  };
}
