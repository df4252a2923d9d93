import { describe, expect, it } from 'vitest';
import { DeploymentService, type DeploymentView } from '../../../cloud/deployments/deployment-service.js';
import { WebhookTargets } from '../../../cloud/webhooks/webhook-targets.js';
import { Webhooks } from '../../../cloud/webhooks/webhooks.js';
import { cloudRig, refusalOf } from '../cloud-rig.js';

/**
 * Issue 24: the deployment service over the real store, the real action service and the real
 * webhook outbox, in-process (no agents: the terminals' answers are given to the action service as
 * a gateway would hand them over). The clock is the test's; each `tick` is what the timer runs.
 */
async function rig(n = 20) {
  const r = await cloudRig();
  await r.store.locations.insert({
    id: 'loc_1',
    name: 'Shop',
    createdAt: 1,
    organizationId: 'org_default',
    active: true,
    timezone: null,
    address: null,
  });
  for (let i = 0; i < n; i++)
    await r.store.terminals.insert({
      id: `term_${String(i).padStart(2, '0')}`,
      name: `Till ${i}`,
      locationId: 'loc_1',
      model: null,
      serialNumber: null,
      softwareVersion: '1.0.0',
      createdAt: 1000 + i,
      certFingerprint: `fp${i}`,
      certSerial: `sn${i}`,
      certNotAfter: 9e15,
    });
  await r.store.releases.insert({
    version: '1.1.0',
    sha256: 'a'.repeat(64),
    size: 1,
    signature: 'c2ln',
    file: 'x',
    createdAt: 1,
  });
  const webhooks = new Webhooks({
    store: r.store,
    now: () => r.clock.ms,
    retryBaseMs: 1000,
    maxAttempts: 3,
    timeoutMs: 1000,
    targets: new WebhookTargets(true),
    log: r.log,
  });
  const hook = (await webhooks.createEndpoint({
    url: 'https://127.0.0.1:9/hook',
    events: ['deployment.*'],
  })) as { id: string };
  const deployments = new DeploymentService({
    store: r.store,
    actions: r.actions,
    emit: (type, data) => webhooks.emit(type, data),
    now: () => r.clock.ms,
    random: () => 0.5,
    log: r.log,
    // Steps the clock tick by tick: each tick's starts at once, not paced in real time.
    paced: false,
  });
  r.bus.on('action.finished', (e) => deployments.actionFinished(e.actionId, e.status, e.reason));
  /** The terminal answers its update action (as the gateway hands the status to the action service). */
  const answer = async (terminalId: string, status: 'completed' | 'failed', reason: string | null = null) => {
    const a = (await r.actions.list(terminalId)).data.find(
      (x) => x.type === 'update' && x.status !== 'completed' && x.status !== 'failed',
    );
    if (!a) throw new Error(`no open update for ${terminalId}`);
    await r.actions.statusReported(terminalId, {
      actionId: a.id,
      status,
      reason,
      step: status === 'completed' ? 'committed' : 'rolled_back',
      percent: null,
      at: new Date(r.clock.ms).toISOString(),
    });
  };
  const targets = async (id: string) =>
    (await deployments.targets(id, new URLSearchParams('limit=100'))).data;
  const inState = async (id: string, state: string, group?: number) =>
    (await targets(id))
      .filter((t) => t.state === state && (group === undefined || t.group === group))
      .map((t) => t.terminalId);
  const hooks = async () => (await r.store.webhooks.deliveries(hook.id)).map((d) => d.type);
  return { ...r, deployments, answer, targets, inState, hooks };
}

const body = (extra: Record<string, unknown> = {}) => ({
  release: '1.1.0',
  target: { locationIds: ['loc_1'] },
  groups: [{ count: 5 }, { percent: 100 }],
  advanceWhen: { successPercent: 80 },
  stopWhen: { failurePercent: 50, minFinished: 5 },
  maxPerMinute: 600,
  ...extra,
});

describe('the deployment service', () => {
  it('group 2 starts only once group 1 reaches its success share; then it completes', async () => {
    const r = await rig();
    const d: DeploymentView = await r.deployments.create(body());
    expect(d).toMatchObject({
      state: 'running',
      groups: [
        { index: 0, size: 5, started: true, processing: 5 },
        { index: 1, size: 15, started: false, queued: 15 },
      ],
    });
    const first = await r.inState(d.id, 'processing', 0);
    for (const t of first.slice(0, 3)) await r.answer(t, 'completed');
    await r.deployments.tick();
    expect((await r.deployments.get(d.id)).groups[1]).toMatchObject({ started: false, queued: 15 }); // 60 %
    await r.answer(first[3]!, 'completed');
    await r.deployments.tick(); // 80 %: group 2 starts
    await r.deployments.tick(); // and is asked (10 a look at 600 a minute)
    const v = await r.deployments.get(d.id);
    expect(v.groups[1]).toMatchObject({ started: true, processing: 10, queued: 5 });
    await r.answer(first[4]!, 'completed');
    await r.deployments.tick();
    for (const t of await r.inState(d.id, 'processing')) await r.answer(t, 'completed');
    await r.deployments.tick();
    for (const t of await r.inState(d.id, 'processing')) await r.answer(t, 'completed');
    await r.deployments.tick();
    expect(await r.deployments.get(d.id)).toMatchObject({ state: 'completed', totals: { completed: 20 } });
    expect(await r.hooks()).toEqual([
      'deployment.started',
      'deployment.group_started',
      'deployment.completed',
    ]);
  });

  it('failures past stopWhen stop it: no new update actions, the rest skipped with the reason', async () => {
    const r = await rig();
    const d = await r.deployments.create(body({ stopWhen: { failurePercent: 30, minFinished: 5 } }));
    const first = await r.inState(d.id, 'processing', 0);
    for (const t of first.slice(0, 3)) await r.answer(t, 'completed');
    for (const t of first.slice(3))
      await r.answer(t, 'failed', 'version 1.1.0 failed to start; the boot guard rolled back to 1.0.0');
    await r.deployments.tick();
    const v = await r.deployments.get(d.id);
    expect(v).toMatchObject({
      state: 'stopped',
      reason: '2 of 5 terminals finished failed the update (40 %, stopWhen.failurePercent 30)',
    });
    expect(v.groups[1]).toMatchObject({ started: false, skipped: 15, queued: 0 });
    const untouched = await r.inState(d.id, 'skipped', 1);
    for (const t of untouched) expect((await r.actions.list(t)).data).toEqual([]);
    await r.deployments.tick();
    expect((await r.deployments.get(d.id)).state).toBe('stopped');
    expect(await r.hooks()).toEqual(['deployment.started', 'deployment.stopped']);
  });

  it('pause holds new asks, resume goes on, cancel skips the rest; a move the state does not take is 409 with both names', async () => {
    const r = await rig();
    const d = await r.deployments.create(
      body({ groups: [{ count: 2 }, { percent: 100 }], advanceWhen: { successPercent: 50 } }),
    );
    for (const t of await r.inState(d.id, 'processing')) await r.answer(t, 'completed');
    expect((await r.deployments.pause(d.id)).state).toBe('paused');
    await r.deployments.tick();
    await r.deployments.tick();
    expect((await r.deployments.get(d.id)).groups[1]).toMatchObject({ started: false, queued: 18 });
    expect((await refusalOf(() => r.deployments.pause(d.id))).message).toBe(
      'a paused deployment cannot pause',
    );
    await r.deployments.resume(d.id);
    await r.deployments.tick();
    await r.deployments.tick();
    const asked = (await r.deployments.get(d.id)).groups[1]!.processing;
    expect(asked).toBe(10);
    const c = await r.deployments.cancel(d.id);
    expect(c).toMatchObject({
      state: 'cancelled',
      reason: 'cancelled by the operator',
      groups: [{}, { skipped: 8, processing: 10 }],
    });
    // Terminals mid-update finish; nothing new is asked.
    for (const t of await r.inState(d.id, 'processing')) await r.answer(t, 'completed');
    await r.deployments.tick();
    expect((await r.deployments.get(d.id)).totals).toMatchObject({
      completed: 12,
      skipped: 8,
      queued: 0,
      processing: 0,
    });
    const refused = await refusalOf(() => r.deployments.resume(d.id));
    expect([refused.code, refused.message]).toEqual([
      'invalid_state',
      'a cancelled deployment cannot resume',
    ]);
    expect(await r.hooks()).toEqual([
      'deployment.started',
      'deployment.paused',
      'deployment.resumed',
      'deployment.group_started',
      'deployment.cancelled',
    ]);
  });

  it('the rate: never more than maxPerMinute asked in a minute, a share of it per look', async () => {
    const r = await rig();
    const d = await r.deployments.create(body({ groups: [{ percent: 100 }], maxPerMinute: 6 }));
    for (let i = 0; i < 10; i++) await r.deployments.tick();
    expect((await r.deployments.get(d.id)).totals.processing).toBe(6);
    r.clock.ms += 61_000;
    await r.deployments.tick();
    expect((await r.deployments.get(d.id)).totals.processing).toBe(7);
  });

  it('a terminal claimed but never asked (a gateway died between the two) is asked again after a minute', async () => {
    const r = await rig(3);
    const d = await r.deployments.create(body({ groups: [{ percent: 100 }], maxPerMinute: 1 }));
    const [t] = await r.inState(d.id, 'processing');
    // The claim without its action, as a crash would leave it.
    const other = (await r.inState(d.id, 'queued'))[0]!;
    await r.store.deployments.moveTarget(
      d.id,
      other,
      'queued',
      { state: 'processing', askedAt: r.clock.ms },
      r.clock.ms,
    );
    r.clock.ms += 61_000;
    await r.deployments.tick();
    const rows = await r.targets(d.id);
    expect(rows.find((x) => x.terminalId === other)).toMatchObject({ state: 'processing' });
    expect((await r.actions.list(other)).data).toHaveLength(1);
    expect(t).toBeDefined();
  });

  it('bad bodies are refused by name and store nothing', async () => {
    const r = await rig(2);
    const cases: [Record<string, unknown>, string][] = [
      [{ target: {} }, 'target needs organizationId, locationIds, terminalIds or a filter'],
      [
        { target: { organizationId: 'org_default', locationIds: ['loc_1'] } },
        'target takes one of organizationId, locationIds, terminalIds, not organizationId and locationIds',
      ],
      [{ release: '9.9.9' }, 'no release 9.9.9; publish it with PUT /v1/releases/9.9.9'],
      [{ target: { terminalIds: ['term_nope'] } }, 'no terminal term_nope'],
      [{ target: { filter: { model: 'none-such' } } }, 'the target names no active terminal'],
      [{ groups: [] }, '/groups'],
    ];
    for (const [extra, message] of cases)
      expect((await refusalOf(() => r.deployments.create(body(extra)))).message).toContain(message);
    expect((await r.deployments.list({ after: null, limit: 10 })).data).toEqual([]);
    expect((await refusalOf(() => r.deployments.get('dep_nope'))).code).toBe('not_found');
  });
});
