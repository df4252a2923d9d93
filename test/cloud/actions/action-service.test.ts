import { describe, expect, it } from 'vitest';
import { rsaCsr } from '../../support/csrs.js';
import { cloudRig, refusalOf } from '../cloud-rig.js';

async function withTerminal() {
  const rig = await cloudRig();
  const loc = await rig.fleet.createLocation({ name: 'Shop' });
  const { code } = await rig.enrollment.createEnrollmentCode({ locationId: loc.id, terminalName: 'Till' });
  const { terminalId } = await rig.enrollment.enroll({ method: 'code', code, csr: rsaCsr().csr }, '10.0.0.1');
  return { ...rig, terminalId };
}

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('ActionService in-process (cloud/actions/action-service.ts)', () => {
  it('bad actions are refused with a code, and none is stored', async () => {
    const rig = await withTerminal();
    expect((await refusalOf(async () => await rig.actions.create('term_nope', { type: 'lock' }))).code).toBe(
      'not_found',
    );
    expect(
      (await refusalOf(async () => await rig.actions.create(rig.terminalId, { type: 'explode' }))).code,
    ).toBe('invalid_action');
    expect(
      (await refusalOf(async () => await rig.actions.create(rig.terminalId, { type: 'update' }))).code,
    ).toBe('invalid_action');
    expect(
      (
        await refusalOf(
          async () =>
            await rig.actions.create(rig.terminalId, { type: 'update', params: { version: '9.9.9' } }),
        )
      ).code,
    ).toBe('release_not_found');
    expect((await rig.actions.list(rig.terminalId)).data).toEqual([]);
  });

  it('queued: action.queued is said after the answer; lock completes → the terminal is locked and action.finished said once', async () => {
    const rig = await withTerminal();
    const a = await rig.actions.create(rig.terminalId, { type: 'lock' });
    expect(a).toMatchObject({ object: 'terminal_action', type: 'lock', status: 'queued' });
    expect(rig.events.some((e) => e.name === 'action.queued')).toBe(false);
    await nextTick();
    expect(rig.events.at(-1)).toEqual({ name: 'action.queued', payload: { terminalId: rig.terminalId } });
    expect((await rig.actions.pending(rig.terminalId)).map((p) => p.actionId)).toEqual([a.id]);
    await rig.actions.delivered(rig.terminalId, a.id, {
      status: 'completed',
      reason: null,
      step: null,
      percent: null,
    });
    // A late status after the final one is ignored (statuses only move forward).
    await rig.actions.statusReported(rig.terminalId, {
      actionId: a.id,
      at: new Date(rig.clock.ms).toISOString(),
      status: 'processing',
      reason: null,
      step: null,
      percent: null,
    });
    expect((await rig.actions.get(rig.terminalId, a.id)).status).toBe('completed');
    expect(await rig.actions.locked(rig.terminalId)).toBe(true);
    expect(rig.events.filter((e) => e.name === 'action.finished')).toHaveLength(1);
  });

  it('an action never delivered fails as expired at its time (the sweep), with the reason', async () => {
    const rig = await withTerminal();
    const a = await rig.actions.create(rig.terminalId, { type: 'reboot', ttlSeconds: 60 });
    rig.clock.ms += 60_000;
    expect(await rig.actions.pending(rig.terminalId)).toEqual([]);
    await rig.actions.sweep();
    expect(await rig.actions.get(rig.terminalId, a.id)).toMatchObject({
      status: 'failed',
      deliveredAt: null,
    });
    expect((await rig.actions.get(rig.terminalId, a.id)).reason).toMatch(
      /^expired: the terminal did not connect before /,
    );
    expect(rig.events.filter((e) => e.name === 'action.finished')).toHaveLength(1);
  });

  it('another terminal’s action is not found', async () => {
    const rig = await withTerminal();
    const a = await rig.actions.create(rig.terminalId, { type: 'unlock' });
    expect((await refusalOf(async () => await rig.actions.get('term_other', a.id))).code).toBe(
      'action_not_found',
    );
  });
});
